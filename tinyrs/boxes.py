"""Boxes as Qwen2-VL writes them: `[[x1, y1, x2, y2]]`, integers in a 0..1000 frame.

Evaluation files keep ground truth in absolute pixels `[x1, y1, x2, y2]`; predictions are
rescaled by width/1000 and height/1000, as the released evaluation code does.
"""
from __future__ import annotations

import re

NORM = 1000
# Model output: double brackets, four integers (what the released harness parses).
MODEL_BOX = re.compile(r"\[\[\s*(-?\d+)[,\s]+(-?\d+)[,\s]+(-?\d+)[,\s]+(-?\d+)\s*\]\]")
# Evaluation-file ground truth: single brackets, numbers in pixels.
PIXEL_BOX = re.compile(r"\[\s*(-?\d+(?:\.\d+)?)[,\s]+(-?\d+(?:\.\d+)?)[,\s]+(-?\d+(?:\.\d+)?)[,\s]+(-?\d+(?:\.\d+)?)\s*\]")


def format_box(box) -> str:
    """[x1, y1, x2, y2] in 0..1000 -> '[[x1, y1, x2, y2]]'."""
    return "[[{}, {}, {}, {}]]".format(*(int(round(v)) for v in box))


def parse_box(text: str) -> list[int] | None:
    """The first `[[x1, y1, x2, y2]]` in `text`, or None."""
    m = MODEL_BOX.search(text or "")
    return [int(v) for v in m.groups()] if m else None


# The released harness's readers of a model's box (eval/src/evaluation/lm_prediction_call.py): for a TinyRS
# model, the first `[[x1, y1, x2, y2]]` of plain digits with nothing inside the brackets but separators;
# for a Qwen2-VL-Instruct model, the answer's numbers when there are exactly four (x1000 when all are <= 1).
RELEASED_BOX = re.compile(r"\[\[(\d+)[,\s]+(\d+)[,\s]+(\d+)[,\s]+(\d+)\]\]")
NUMBER = re.compile(r"\d+(?:\.\d+)?")
# Qwen2-VL's own grounding output (special tokens decoded away): (x1,y1),(x2,y2) on 0..1000.
QWEN2VL_BOX = re.compile(r"\(\s*(\d+(?:\.\d+)?)\s*,\s*(\d+(?:\.\d+)?)\s*\)\s*,?\s*\(\s*(\d+(?:\.\d+)?)\s*,\s*(\d+(?:\.\d+)?)\s*\)")


def released_box(text: str) -> list[int] | None:
    """A TinyRS model's box as the released harness reads it (stricter than `parse_box`: no signs, no spaces
    inside the brackets); None where it finds none (it then drops the answer)."""
    m = RELEASED_BOX.search(text or "")
    return [int(v) for v in m.groups()] if m else None


def four_numbers_box(text: str) -> list[float] | None:
    """A Qwen2-VL-Instruct answer's box as the released harness reads it: the numbers of the answer when there
    are exactly four (scaled by 1000 when all are in 0..1), else None (it then drops the answer)."""
    nums = [float(v) for v in NUMBER.findall(text or "")]
    if len(nums) != 4:
        return None
    return [v * NORM for v in nums] if all(0 <= v <= 1 for v in nums) else nums


def qwen2vl_box(text: str) -> list[float] | None:
    """The first box in Qwen2-VL's own output format `(x1,y1),(x2,y2)` (0..1000), else None."""
    m = QWEN2VL_BOX.search(text or "")
    return [float(v) for v in m.groups()] if m else None


def parse_pixel_box(text) -> list[float] | None:
    """A ground-truth pixel box, written '[x1, y1, x2, y2]' (or given as a list)."""
    if isinstance(text, (list, tuple)) and len(text) == 4:
        return [float(v) for v in text]
    m = PIXEL_BOX.search(str(text))
    return [float(v) for v in m.groups()] if m else None


def to_pixels(box, width: int, height: int) -> list[float]:
    x1, y1, x2, y2 = box
    return [x1 * width / NORM, y1 * height / NORM, x2 * width / NORM, y2 * height / NORM]


def to_normalized(box, width: int, height: int) -> list[int]:
    x1, y1, x2, y2 = box
    return [round(x1 * NORM / width), round(y1 * NORM / height), round(x2 * NORM / width), round(y2 * NORM / height)]


def iou(a, b) -> float:
    """Intersection over union of two [x1, y1, x2, y2] boxes in the same frame. A box whose corners are
    not in that order (x2 <= x1 or y2 <= y1: reversed or zero-area) overlaps nothing and scores 0, as in
    the released harness's IoU: `[[x2, y2, x1, y1]]` is a malformed answer, not the box written backwards."""
    if not (a[2] > a[0] and a[3] > a[1] and b[2] > b[0] and b[3] > b[1]):
        return 0.0
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union)
