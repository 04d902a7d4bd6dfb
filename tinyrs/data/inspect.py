"""Looking at a build from its files: scenes, examples per task, the disjointness check."""
from __future__ import annotations

import hashlib
from pathlib import Path

from ..evaluation.benchmarks import ALL_EVAL_FILES
from .vhm import (answer_text, human_text, read_json_list, read_jsonl, resolve_eval_image, resolve_train_image,
                  split_tag, task_of)

TRAIN_SPLITS = ["pretrain.json", "instruct.json", "rl.json"]


def load_scenes(build_dir: str | Path) -> list[dict]:
    """The world's ground truth for every image of a toy build (scenes.jsonl)."""
    return read_jsonl(Path(build_dir) / "scenes.jsonl")


def examples_by_task(build_dir: str | Path, file: str = "instruct.json") -> list[dict]:
    """The first entry of each task tag, as rows for a table."""
    seen, rows = set(), []
    for e in read_json_list(Path(build_dir) / file):
        task = task_of(e)
        if task in seen:
            continue
        seen.add(task)
        rows.append({"task": task, "source": e.get("source_dataset", ""), "image": e["image"],
                     "question": split_tag(human_text(e))[1], "answer": answer_text(e)})
    return sorted(rows, key=lambda r: r["task"])


def _sha1(path: Path) -> str:
    return hashlib.sha1(path.read_bytes()).hexdigest()


def verify_disjoint(build_dir: str | Path, image_root: str | Path | None = None, eval_root: str | Path | None = None,
                    content: bool = True) -> dict:
    """Checked from the files, not assumed: VHM-RL vs VHM-Instruct share no image (by resolved file, links
    followed, and, with `content`, by SHA-1 of the bytes; equal file names are counted too, for information),
    and no training image is an evaluation image."""
    build_dir = Path(build_dir)
    image_root = Path(image_root) if image_root else build_dir / "images"
    eval_root = Path(eval_root) if eval_root else build_dir / "eval"
    files = {}
    for name in TRAIN_SPLITS:
        if (build_dir / name).exists():
            files[name] = {resolve_train_image(e, image_root).resolve() for e in read_json_list(build_dir / name)}
    evals = set()
    for name in ALL_EVAL_FILES:
        p = eval_root / name
        if p.exists():
            evals |= {resolve_eval_image(e, p).resolve() for e in read_json_list(p)}
    inst, rl = files.get("instruct.json", set()), files.get("rl.json", set())
    train = set().union(*files.values()) if files else set()
    report = {
        "rl_vs_instruct": {"shared_names": len({p.name for p in inst} & {p.name for p in rl}),
                           "shared_files": len(inst & rl)},
        "train_vs_eval": {"shared_files": len(train & evals)},
        "images": {"train": len(train), "eval": len(evals)},
    }
    if content:
        hashes = {p: _sha1(p) for p in train | evals if p.exists()}
        h = lambda ps: {hashes[p] for p in ps if p in hashes}  # noqa: E731
        report["rl_vs_instruct"]["shared_content"] = len(h(inst) & h(rl))
        report["train_vs_eval"]["shared_content"] = len(h(train) & h(evals))
    # Equal file names are only reported: two sources may both have a 0001.jpg that are different images.
    report["disjoint"] = all(v == 0 for k in ("rl_vs_instruct", "train_vs_eval") for n, v in report[k].items()
                             if n != "shared_names")
    return report
