"""Is the toy world learnable? A tiny Qwen2-VL, trained from scratch with TRL's SFTTrainer for
about two minutes on toy classification, is scored on the held-out toy classification benchmarks.

This is the foundation's sanity check: if a model cannot learn the world's scene classes from
its images, no later stage can mean anything on the toy profile."""
from __future__ import annotations

import time
from pathlib import Path

from .config import load_config
from .data.build import build_toy
from .data.hf import to_sft_dataset
from .data.vhm import read_json_list, write_json
from .evaluation.benchmarks import BENCHMARKS
from .evaluation.run import answer_benchmark
from .evaluation.scoring import strict_match
from .model import create_toy_checkpoint, load_model, load_processor
from .train.callbacks import JsonlMetrics, TimeBudget
from .train.sft import sft_config, train_sft
from .world import World

CLS_FILES = [b.file for b in BENCHMARKS if b.group == "CLS"]


def _accuracy(model, processor, data_root, progress) -> dict[str, float]:
    scores = {}
    for f in CLS_FILES:
        rows = answer_benchmark(model, processor, data_root, f, max_new_tokens=8, batch_size=32, progress=progress)
        scores[f] = sum(strict_match(r["prediction"], r["answer"]) for r in rows) / len(rows)
    return scores


def classification_learnability(out_dir: str | Path, images: int = 3000, max_steps: int = 600,
                                seconds: float = 150, eval_n: int = 120, seed: int = 0, workers: int = 2,
                                progress: bool = True) -> dict:
    """Build a classification-only toy set, train from scratch, score before and after.

    Returns (and writes to <out_dir>/learnability.json) accuracy per benchmark, chance level
    (1 / number of classes offered), steps and seconds trained."""
    out_dir = Path(out_dir)
    evals = {f: {"source": src, "task": "CLS", "n": eval_n} for f, src in
             zip(CLS_FILES, ["AID", "METER-ML", "NWPU-RESISC45", "SIRI-WHU", "WHU-RS19"])}
    cfg = load_config("toy", "data", [f"seed={seed}", "pretrain.images=0", f"instruct.entries={images}",
                                      "instruct.mix={CLS: 1.0}", "rl.entries=0", f"workers={workers}"])
    cfg["eval"] = evals
    data = out_dir / "data"
    build_toy(cfg, data, progress=progress)
    ckpt = create_toy_checkpoint(out_dir / "init", data, load_config("toy", "model"), seed=seed)
    processor, model = load_processor(ckpt), load_model(ckpt)
    before = _accuracy(model, processor, data / "eval", progress)
    dataset = to_sft_dataset(read_json_list(data / "instruct.json"), data / "images")
    args = sft_config(out_dir / "run", learning_rate=1e-3, max_steps=max_steps, warmup_steps=0.05,
                      weight_decay=0.0, logging_steps=25, seed=seed, disable_tqdm=not progress)
    t0 = time.time()
    trainer = train_sft(model, processor, dataset, args,
                        callbacks=[JsonlMetrics(out_dir / "metrics.jsonl"), TimeBudget(seconds)])
    train_seconds = time.time() - t0
    after = _accuracy(trainer.model, processor, data / "eval", progress)
    sources = World(seed, cfg["sources"]).sources
    chance = {f: 1 / len(sources[evals[f]["source"]].class_names) for f in CLS_FILES}
    result = {"train_images": images, "steps": trainer.state.global_step, "train_seconds": round(train_seconds, 1),
              "accuracy_before": before, "accuracy_after": after, "chance": chance,
              "mean_after": sum(after.values()) / len(after), "mean_chance": sum(chance.values()) / len(chance)}
    write_json(out_dir / "learnability.json", result)
    return result
