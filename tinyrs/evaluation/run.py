"""Running a model over one benchmark file: the prompts and the prediction rows every caller shares
(quick scores after a stage, `tinyrs eval`, the probes, the evaluation benchmark)."""
from __future__ import annotations

from pathlib import Path

from ..data.images import ImageLoadError, load_rgb
from ..data.vhm import CORRUPT_IMAGE, DataError, answer_text, human_text, read_eval_file, resolve_eval_image
from .benchmarks import BY_FILE, user_prompt
from .generate import generate


def benchmark_entries(data_root: str | Path, file: str, limit: int | None = None) -> tuple[Path, list[dict]]:
    """(path, entries) of one evaluation file, the first `limit` entries when given."""
    from ..data.build import check_build_finished

    path = Path(data_root) / file
    check_build_finished(path.absolute().parent.parent)  # a toy build's eval/: its questions and images must match
    entries, _ = read_eval_file(path, check_images="exists", progress=False)
    return path, entries[:limit] if limit else entries


def benchmark_prompt(entry: dict, file: str, system: str | None = None, suffix: str = "",
                     ask: str = "tinyrs") -> list[dict]:
    """The chat messages for one question, asked as the released harness asks (tag, image first; `ask`:
    benchmarks.ASKING); `suffix` is added after the question (e.g. the GRPO think instruction)."""
    return user_prompt(human_text(entry) + suffix, BY_FILE[file].tag, system, ask)


THINK_PROMPTS = ("system", "instruction")


def think_prompting(think: str | None) -> tuple[str | None, str]:
    """(system prompt, question suffix) for asking a model: None, a plain model; "system", the released
    harness's reasoning system prompt; "instruction", the GRPO think instruction after the question."""
    from ..prompts import REASONING_SYSTEM, THINK_INSTRUCTION

    if think not in (None, *THINK_PROMPTS):
        raise ValueError(f"think must be None or one of {THINK_PROMPTS}, not {think!r}")
    system = REASONING_SYSTEM if think == "system" else None
    return system, (f"\n{THINK_INSTRUCTION}" if think == "instruction" else "")


def benchmark_images(entries: list[dict], path: Path, indices: list[int] | None = None) -> list[list]:
    """Each entry's image, as a one-image list; `indices`: the entries' places in the file at `path` (default: from
    0), so that an unreadable image is reported as that file's entry."""
    images = []
    for index, entry in zip(indices or range(len(entries)), entries):
        try:
            images.append([load_rgb(resolve_eval_image(entry, path))])
        except ImageLoadError as e:
            raise DataError(path, index, str(e), CORRUPT_IMAGE) from e
    return images


def prediction_row(index: int, entry: dict, prediction: str) -> dict:
    """What is kept of one answer: enough to score it again without the files (size for grounding,
    type for LHRS-Bench)."""
    row = {"index": index, "image": entry["image"], "question": human_text(entry), "answer": answer_text(entry),
           "prediction": prediction}
    for key in ("size", "type", "image_path"):
        if key in entry:
            row[key] = entry[key]
    return row


def answer_benchmark(model, processor, data_root: str | Path, file: str, limit: int | None = None,
                     max_new_tokens: int = 64, batch_size: int = 16, system: str | None = None,
                     progress: bool = True) -> list[dict]:
    """Predictions for the questions of one benchmark, as `prediction_row`s."""
    path, entries = benchmark_entries(data_root, file, limit)
    prompts = [benchmark_prompt(e, file, system) for e in entries]
    preds = generate(model, processor, prompts, benchmark_images(entries, path), batch_size=batch_size,
                     max_new_tokens=max_new_tokens, progress=progress)
    return [prediction_row(i, e, p) for i, (e, p) in enumerate(zip(entries, preds))]


def quick_scores(model, processor, data_root: str | Path, files: list[str] | None = None, limit: int | None = 60,
                 system: str | None = None, max_new_tokens: int = 64, progress: bool = False) -> dict[str, float]:
    """Strict scores on the toy benchmarks: accuracy (normalised exact match; grounding: IoU >= 0.5),
    plus the mean grounding IoU. A quick look after a stage (notebook 04); `tinyrs eval` is the full protocol."""
    from .benchmarks import EVAL_FILES
    from .scoring import score_rows

    out = {}
    for f in files or EVAL_FILES:
        rows = answer_benchmark(model, processor, data_root, f, limit=limit, system=system,
                                max_new_tokens=max_new_tokens, progress=progress)
        s = score_rows(rows, BY_FILE[f].metric, "strict")
        out[f] = s["score"]
        if "mean_iou" in s:
            out["mean_iou"] = s["mean_iou"]
    return out
