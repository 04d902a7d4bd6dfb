"""Running a model over one benchmark file."""
from __future__ import annotations

from pathlib import Path

from ..data.images import load_rgb
from ..data.vhm import answer_text, human_text, read_eval_file, resolve_eval_image
from .benchmarks import BY_FILE, user_prompt
from .generate import generate


def answer_benchmark(model, processor, data_root: str | Path, file: str, limit: int | None = None,
                     max_new_tokens: int = 64, batch_size: int = 16, system: str | None = None,
                     progress: bool = True) -> list[dict]:
    """Predictions for the questions of one benchmark: [{image, question, answer, prediction}]."""
    bench = BY_FILE[file]
    path = Path(data_root) / file
    entries, _ = read_eval_file(path, check_images="exists", progress=False)
    entries = entries[:limit] if limit else entries
    prompts = [user_prompt(human_text(e), bench.tag, system) for e in entries]
    images = [[load_rgb(resolve_eval_image(e, path))] for e in entries]
    preds = generate(model, processor, prompts, images, batch_size=batch_size, max_new_tokens=max_new_tokens,
                     progress=progress)
    return [{"image": e["image"], "question": human_text(e), "answer": answer_text(e), "prediction": p}
            for e, p in zip(entries, preds)]


def quick_scores(model, processor, data_root: str | Path, files: list[str] | None = None, limit: int | None = 60,
                 system: str | None = None, max_new_tokens: int = 64, progress: bool = False) -> dict[str, float]:
    """Strict scores on the toy benchmarks: accuracy (normalised exact match; grounding: IoU >= 0.5),
    plus the mean grounding IoU. A quick look during training; `tinyrs eval` is the full protocol."""
    from .benchmarks import EVAL_FILES
    from .scoring import grounding_iou, strict_match

    out = {}
    for f in files or EVAL_FILES:
        rows = answer_benchmark(model, processor, data_root, f, limit=limit, system=system,
                                max_new_tokens=max_new_tokens, progress=progress)
        if BY_FILE[f].tag == "VG":
            entries, _ = read_eval_file(Path(data_root) / f, check_images="none", progress=False)
            ious = [grounding_iou(r["prediction"], r["answer"], e["size"]) or 0.0 for r, e in zip(rows, entries)]
            out[f] = sum(i >= 0.5 for i in ious) / len(ious)
            out["mean_iou"] = sum(ious) / len(ious)
        else:
            out[f] = sum(strict_match(r["prediction"], r["answer"]) for r in rows) / len(rows)
    return out
