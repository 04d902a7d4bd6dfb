"""GRPO rewards (the paper's Section III): a format reward and an accuracy reward, summed.

All are TRL reward functions: `f(prompts, completions, **columns) -> list[float | None]`, where the
dataset's extra columns (`answer_type`, `solution`, `question`, `image_path`) arrive as lists.
None means "no reward for this completion" (a failed judge call): TRL leaves it out of the sum
instead of counting it as 0. No reward function raises on any completion text.

Accuracy by answer type:
- closed: 1 if the <answer> text, lower-cased with dots removed, equals the truth (the released rule);
- grounding: IoU of the predicted and true `[[x1, y1, x2, y2]]` boxes (0..1000 frame);
- open: the LLM judge's 0..10 grade / 10.
Variants of Table III (for grounding and open answers): continuous (as above); binary (1 if IoU >= 0.5
or judge >= 0.7, else 0); quantized (1 at >= 0.7, linear from 0 at 0.4 to 1 at 0.7, 0 below 0.4).
`grounding="released"` reproduces the released code's defect: the box is compared with itself, so
any well-ordered box scores 1.0.
"""
from __future__ import annotations

import re
from typing import Callable

from .boxes import iou, parse_box

FORMAT = re.compile(r"<reasoning>.*?</reasoning>\s*<answer>.*?</answer>", re.S)
ANSWER = re.compile(r"<answer>(.*?)</answer>", re.S)
INTEGER = re.compile(r"\d+")
CLOSED, GROUNDING, OPEN = "closed", "grounding", "open"
VARIANTS = ("continuous", "binary", "quantized")
GROUNDING_REWARDS = ("intended", "released")  # released: the released code's defect (any well-ordered box scores 1)


def completion_text(completion) -> str:
    """TRL passes conversational completions as [{'role': 'assistant', 'content': ...}]; content may be
    a string or a list of parts."""
    if isinstance(completion, str):
        return completion
    try:
        content = completion[0]["content"]
    except (IndexError, KeyError, TypeError):
        return ""
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return content if isinstance(content, str) else ""


def answer_part(text: str) -> str:
    """The text inside <answer>...</answer>, or the whole text when there is none."""
    m = ANSWER.search(text or "")
    return (m.group(1) if m else text or "").strip()


# --- format --------------------------------------------------------------------------------------

def format_reward(completions, **kwargs) -> list[float]:
    """1.0 when the completion is <reasoning>...</reasoning> <answer>...</answer> from its start."""
    return [1.0 if FORMAT.match(completion_text(c)) else 0.0 for c in completions]


# --- accuracy pieces -------------------------------------------------------------------------------

def closed_score(prediction: str, truth: str) -> float:
    clean = lambda s: str(s).strip().lower().replace(".", "").strip()  # noqa: E731
    return 1.0 if clean(prediction) == clean(truth) else 0.0


def predicted_box(answer: str) -> list[int] | None:
    """`[[x1, y1, x2, y2]]`, else the first four integers of the answer (as the released parser reads)."""
    box = parse_box(answer)
    if box is not None:
        return box
    nums = [int(n) for n in INTEGER.findall(answer or "")[:4]]
    return nums if len(nums) == 4 else None


def grounding_score(answer: str, truth: str, released: bool = False) -> float:
    """IoU of the predicted and the true box (0 when either cannot be read).
    released=True: the released code's defect, the predicted box against itself."""
    pred = predicted_box(answer)
    if pred is None:
        return 0.0
    if released:
        x1, y1, x2, y2 = pred  # their IoU does not reorder corners: only a well-ordered box overlaps itself
        return 1.0 if x2 > x1 and y2 > y1 else 0.0
    true = predicted_box(truth)
    return iou(pred, true) if true is not None else 0.0


def shape_score(score: float, variant: str, binary_threshold: float) -> float:
    """Table III's reward variants applied to a score in [0, 1]."""
    score = min(1.0, max(0.0, float(score)))
    if variant == "continuous":
        return score
    if variant == "binary":
        return 1.0 if score >= binary_threshold else 0.0
    if variant == "quantized":
        return 1.0 if score >= 0.7 else 0.0 if score < 0.4 else (score - 0.4) / 0.3
    raise ValueError(f"unknown reward variant {variant!r}; use one of {VARIANTS}")


# --- the accuracy reward, configured ----------------------------------------------------------------

def make_accuracy_reward(variant: str = "continuous", grounding: str = "intended", judge=None) -> Callable:
    """An accuracy reward for TRL. `judge.score(question, answer, image) -> float | None` grades open answers."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown reward variant {variant!r}; use one of {VARIANTS}")
    if grounding not in GROUNDING_REWARDS:
        raise ValueError(f"grounding reward must be one of {GROUNDING_REWARDS}, not {grounding!r}")

    def accuracy_reward(completions, answer_type, solution, question=None, image_path=None, **kwargs):
        out: list[float | None] = []
        for i, c in enumerate(completions):
            answer = answer_part(completion_text(c))
            kind = answer_type[i]
            if kind == GROUNDING:
                out.append(shape_score(grounding_score(answer, solution[i], grounding == "released"), variant, 0.5))
            elif kind == OPEN:
                score = None
                if judge is not None and answer:
                    score = judge.score(question[i] if question else "", answer, image_path[i] if image_path else None)
                elif not answer:
                    score = 0.0  # nothing to grade
                out.append(None if score is None else shape_score(score, variant, 0.7))
            else:
                out.append(closed_score(answer, solution[i]))
        return out

    accuracy_reward.__name__ = f"accuracy_{variant}" + ("_released_grounding" if grounding == "released" else "")
    return accuracy_reward


REGISTRY = {"format": lambda **kw: format_reward, "accuracy": make_accuracy_reward}


def make_rewards(names: list[str], **accuracy_kwargs) -> list[Callable]:
    """Reward functions by name, in order (the paper: ['format', 'accuracy'], equal weights)."""
    unknown = [n for n in names if n not in REGISTRY]
    if unknown:
        raise ValueError(f"unknown reward(s) {unknown}; known: {sorted(REGISTRY)}")
    return [REGISTRY[n](**accuracy_kwargs) if n == "accuracy" else REGISTRY[n]() for n in names]
