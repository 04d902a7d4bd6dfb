"""The toy base model: a tiny Qwen2-VL made a generalist the way Qwen2-VL-Instruct is, by instruction
tuning on a generic domain (tinyrs.world.generic), before it sees any remote sensing.

`tinyrs train base` writes runs/base/<run-id>/ like any stage: the generated generic data (VHM
JSON + images), the tokenizer (byte-level BPE with Qwen2-VL's special tokens, trained on the
generic text and the toy build's text), the checkpoint and the run record. A finished base run
with the same recipe and build text is reused: the base is made once.
"""
from __future__ import annotations

import resource
import time
from pathlib import Path

import numpy as np

from .. import paths
from ..config import ConfigError, load_config
from ..data.vhm import make_entry, read_json_list, read_jsonl, write_json
from ..model import build_toy_model, image_processor, make_processor, save_checkpoint, toy_corpus, train_tokenizer
from ..prompts import THINK_INSTRUCTION
from ..world.generic import generic_samples
from .callbacks import RunClock
from .recipes import trainer_config
from .runs import finished_run, mark_complete, write_run_record


def write_generic_data(out: Path, n: int, seed: int, think_fraction: float) -> list[dict]:
    """The generic instruction data in VHM's layout: out/generic.json, images under out/images/generic/."""
    (out / "images" / "generic").mkdir(parents=True, exist_ok=True)
    entries = []
    for i, (img, q, a) in enumerate(generic_samples(n, seed, think_fraction)):
        name = f"generic_{i:06d}.png"
        img.save(out / "images" / "generic" / name)
        entries.append(make_entry(name, "generic", q, a, None, f"generic-{i:06d}"))
    write_json(out / "generic.json", entries)
    return entries


def reasoning_corpus(build_dir: Path, n: int = 600) -> list[str]:
    """Reasoning text as the toy teacher writes it, so the tokenizer knows stage C's words."""
    from ..world.grading import SceneIndex
    from ..world.reasoning import cot_caption

    if not (build_dir / "qa_meta.jsonl").exists():
        return []
    scenes = SceneIndex(build_dir)
    texts = []
    for row in read_jsonl(build_dir / "qa_meta.jsonl")[:n]:
        scene = scenes.get(row["path"])
        if scene is not None:
            texts.append(cot_caption(scene, row["qa_type"], "", "", row["evidence"], row["id"]))
    return texts


def run_base(recipe: dict, runs_root=None, resume: bool = False, reuse: bool = True, progress: bool = True,
             mark_latest: bool = True) -> Path:
    from .stage import _shared_run_dir, build_trainer, cache_key, resume_point, reused, world_size

    if world_size() > 1:  # every rank would write the same generic data and run record
        raise ConfigError("the toy base trains in one process (about a minute on 2 cores): run `tinyrs train base` "
                          "without torchrun or accelerate launch")
    build_dir = Path(recipe.get("data_dir") or paths.data_dir("toy"))
    text_files = {n: str(build_dir / n) for n in ("pretrain.json", "instruct.json", "rl.json") if (build_dir / n).exists()}
    if not text_files:
        raise FileNotFoundError(f"the toy base model's tokenizer learns from a toy build; none in {build_dir} "
                                "(run `tinyrs data build` first)")
    model_cfg = load_config(recipe.get("model", "toy"), "model")
    key = cache_key(recipe, text_files, None, {"model": model_cfg})
    if reuse and not resume and (cached := finished_run("base", key, runs_root)):
        return reused("base", cached, mark_latest, "same recipe, model sizes, build text, code and library versions")
    run, resume = _shared_run_dir("base", runs_root, resume, key=key if reuse else None)
    seed = int(recipe.get("seed", 0))
    g = recipe["generic"]
    generic_dir = run / "generic"
    if (generic_dir / "generic.json").exists():
        entries = read_json_list(generic_dir / "generic.json")
    else:
        entries = write_generic_data(generic_dir, int(g["samples"]), int(g.get("seed", 1)), float(g.get("think_fraction", 0.25)))
    args = trainer_config("base", run / "trainer", dict(recipe.get("trainer") or {}), seed=seed, disable_tqdm=not progress)
    write_run_record(run, "base", recipe, text_files, None, seed,
                     {"cache_key": key, "train_entries": len(entries), "data_dir": str(build_dir)}, resume,
                     trainer_args=args)
    t0 = time.time()
    corpus = toy_corpus(build_dir, extra=[t["value"].replace("<image>", "") for e in entries for t in e["conversations"]]
                        + reasoning_corpus(build_dir) + [THINK_INSTRUCTION] * 20)
    tokenizer = train_tokenizer(corpus, int(model_cfg["tokenizer"]["vocab_size"]))
    processor = make_processor(tokenizer, image_processor(int(model_cfg["image"]["min_pixels"]),
                                                          int(model_cfg["image"]["max_pixels"])))
    np.random.seed(seed)
    model = build_toy_model(tokenizer, model_cfg["text"], model_cfg["vision"], seed=seed)
    trainer = build_trainer({**recipe, "kind": "sft"}, model, processor, args, entries, generic_dir / "images", None,
                            build_dir, run)
    trainer.add_callback(clock := RunClock(t0))
    trainer.train(resume_from_checkpoint=resume_point(run) if resume else None)
    save_checkpoint(trainer.model, processor, run / "checkpoint")
    mark_complete(run, {"steps": trainer.state.global_step, "seconds": clock.seconds(),
                        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)},
                  latest=mark_latest)
    return run
