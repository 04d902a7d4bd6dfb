"""Scoring predictions. `strict`: normalised exact match; every sample counts."""
from __future__ import annotations

import re


def extract_answer(prediction: str) -> str:
    """The final answer of a prediction: the text after </reasoning>, inside <answer> if present."""
    text = prediction or ""
    if "</reasoning>" in text:
        text = text.split("</reasoning>", 1)[1]
    m = re.search(r"<answer>(.*?)(</answer>|$)", text, re.S)
    return (m.group(1) if m else text).strip()


def normalize(text: str) -> str:
    """Lower-case, collapse white space, drop a trailing full stop."""
    return re.sub(r"\s+", " ", (text or "").strip().lower()).rstrip(".").strip()


def strict_match(prediction: str, truth: str) -> bool:
    """Exact match of normalised answers; an empty answer is wrong."""
    pred = normalize(extract_answer(prediction))
    return bool(pred) and pred == normalize(truth)


def grounding_iou(prediction: str, truth: str, size_hw) -> float | None:
    """IoU of a predicted `[[x1, y1, x2, y2]]` (0..1000) with a pixel truth box in an image of
    size [h, w]; None when the prediction has no box."""
    from ..boxes import iou, parse_box, parse_pixel_box, to_pixels

    box = parse_box(extract_answer(prediction))
    if box is None:
        return None
    h, w = size_hw
    return iou(to_pixels(box, w, h), parse_pixel_box(truth))
