"""RSVQA's own question records -> the evaluation files of Table I.

RSVQA (LR: Sentinel-2, HR: aerial) ships its questions as records
`{"question", "answer", "image", "question_id", "type", ...}` with `type` in comp / presence / count /
rural_urban. Table I uses the comparison and presence questions of both, and LR's rural/urban ones
(counting is not among the 12 benchmarks). This writes them as the released harness reads them:
`RSVQA_<LR|HR>-<comp|presence|rural_urban>_RSVQA.json`, one entry per question,
`{"image", "image_path", "question_id", "conversations": [human "<image>\\n<question>", gpt "<answer>"]}`,
with `image_path` pointing at the folder of the RSVQA images (so nothing is copied).
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path

from ..data.vhm import DataError, read_json_list, write_json

TABLE_I_TYPES = {"LR": ("comp", "presence", "rural_urban"), "HR": ("comp", "presence")}
REQUIRED = ("question", "answer", "image", "type")


def record_problem(r: dict) -> str | None:
    """What is wrong with one record's values (a list where one answer belongs, a blank question), or None."""
    for key, kinds in (("type", (str,)), ("question", (str,)), ("image", (str, int)),
                       ("answer", (str, int, float, bool))):
        if not isinstance(r[key], kinds):
            return f"'{key}' must be {' or '.join(k.__name__ for k in kinds)}, not {type(r[key]).__name__} {r[key]!r}"
    if not r["question"].strip() or not str(r["answer"]).strip():
        return "a blank question or answer"
    return None


IMAGE_SUFFIXES = ("", ".tif", ".tiff", ".png", ".jpg", ".jpeg")  # RSVQA names images by a number: 7 -> 7.tif


def image_file_name(image, image_dir: Path) -> str | None:
    """The file in `image_dir` a record's image names (as given, or its number with an image suffix), or None."""
    for suffix in IMAGE_SUFFIXES:
        if (image_dir / f"{image}{suffix}").is_file():
            return f"{image}{suffix}"
    return None


def eval_file_name(resolution: str, qtype: str) -> str:
    return f"RSVQA_{resolution}-{qtype}_RSVQA.json"


def convert_rsvqa(records_path: str | Path, image_dir: str | Path, out_dir: str | Path,
                  resolution: str = "LR", limit_per_type: int | None = None) -> dict:
    """Write the Table I evaluation files of one RSVQA split; returns counts per written file and per
    skipped type. A record without a required field stops with `<file>: entry <i>: <problem>`."""
    resolution = resolution.upper()
    if resolution not in TABLE_I_TYPES:
        raise ValueError(f"resolution must be LR or HR, not {resolution!r}")
    records_path = Path(records_path)
    if not Path(image_dir).is_dir():
        raise DataError(image_dir, None, "the RSVQA image folder does not exist")
    records = read_json_list(records_path)
    by_type: dict[str, list[dict]] = {t: [] for t in TABLE_I_TYPES[resolution]}
    skipped = Counter()
    for i, r in enumerate(records):  # every record's fields first, then the images of those kept
        if not isinstance(r, dict):
            raise DataError(records_path, i, f"expected an object, got {type(r).__name__}")
        missing = [k for k in REQUIRED if k not in r or r[k] in (None, "")]
        if missing:
            raise DataError(records_path, i, f"missing {', '.join(missing)}")
        problem = record_problem(r)
        if problem:
            raise DataError(records_path, i, problem)
    for i, r in enumerate(records):
        if r["type"] not in by_type:
            skipped[str(r["type"])] += 1
            continue
        if limit_per_type is not None and len(by_type[r["type"]]) >= limit_per_type:
            continue
        image = image_file_name(r["image"], Path(image_dir))
        if image is None:
            tried = ", ".join(f"{r['image']}{suffix}" for suffix in IMAGE_SUFFIXES)
            raise DataError(records_path, i, f"image {r['image']!r} is not in {image_dir} (looked for {tried})")
        entry = {"image": image, "image_path": str(Path(image_dir).resolve()),
                 "conversations": [{"from": "human", "value": f"<image>\n{str(r['question']).strip()}"},
                                   {"from": "gpt", "value": str(r["answer"]).strip()}]}
        if "question_id" in r:
            entry["question_id"] = r["question_id"]
        by_type[r["type"]].append(entry)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = {}
    for qtype, entries in by_type.items():
        if entries:
            name = eval_file_name(resolution, qtype)
            write_json(out_dir / name, entries)
            written[name] = len(entries)
    return {"written": written, "skipped_types": dict(skipped), "records": len(records)}
