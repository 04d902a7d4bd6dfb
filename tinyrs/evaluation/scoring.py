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
