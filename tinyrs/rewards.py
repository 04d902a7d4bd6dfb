"""GRPO rewards (the paper's Section III): a format reward and an accuracy reward, summed.

All are TRL reward functions: `f(prompts, completions, **columns) -> list[float | None]`, where the
dataset's extra columns (`answer_type`, `solution`, `question`, `image_path`) arrive as lists.
None means "no score" (a failed judge call). TRL leaves a completion out of its group's baseline, with
advantage 0, only when *every* reward function returns None for it; where one still scores, the None
counts as 0 (TRL sums with nansum). So when a judgement fails, `make_rewards` has the format reward
return None for that completion too: a judge outage never becomes a low reward. No reward function
raises on any completion text.

Accuracy by answer type:
- closed: 1 if the <answer> text, lower-cased with dots removed, equals the truth (the released rule);
- grounding: IoU of the predicted and true `[[x1, y1, x2, y2]]` boxes (0..1000 frame);
- open: the LLM judge's 0..10 grade / 10.
Variants of Table III (for grounding and open answers): continuous (as above); binary (1 if IoU >= 0.5
or judge >= 0.7, else 0); quantized (1 at >= 0.7, linear from 0 at 0.4 to 1 at 0.7, 0 below 0.4).
`grounding="released"` reproduces the released code's defect: the box is compared with itself, so
any well-ordered box scores 1.0. `judge_failure="released"` reproduces its second: a failed judge call
reuses the grade of the batch's previous judged answer, and crashes when there is none yet (a reply
without a number grades 0 there, and an empty answer is sent to the judge like any other).
"""
from __future__ import annotations

import re
from typing import Callable

from .boxes import iou, parse_box
from .llm import UNPARSABLE, judge_map

FORMAT = re.compile(r"<reasoning>.*?</reasoning>\s*<answer>.*?</answer>", re.S)
ANSWER = re.compile(r"<answer>(.*?)</answer>", re.S)
INTEGER = re.compile(r"\d+")
CLOSED, GROUNDING, OPEN = "closed", "grounding", "open"
VARIANTS = ("continuous", "binary", "quantized")
GROUNDING_REWARDS = ("intended", "released")  # released: the released code's defect (any well-ordered box scores 1)
JUDGE_FAILURES = ("skip", "released")  # skip: the completion left out (see above); released: the previous grade reused


class ReleasedJudgeCrash(RuntimeError):
    """What `judge_failure="released"` does where the released code crashes: no earlier grade to reuse."""


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


def first_four_integers(text: str) -> list[int] | None:
    """The text's first four integers (signs dropped), as the released reward reads a box; None with fewer."""
    nums = [int(n) for n in INTEGER.findall(text or "")[:4]]
    return nums if len(nums) == 4 else None


def predicted_box(answer: str) -> list[int] | None:
    """`[[x1, y1, x2, y2]]`, else the first four integers of the answer (as the released parser reads)."""
    box = parse_box(answer)
    return box if box is not None else first_four_integers(answer)


def grounding_score(answer: str, truth: str, released: bool = False) -> float:
    """IoU of the predicted and the true box (0 when either cannot be read).
    released=True: the released code's defect, the predicted box against itself, read as it reads it: the
    answer's first four integers (0 with fewer, or when the truth has no number at all)."""
    if released:
        box = first_four_integers(answer)
        if box is None or not INTEGER.search(str(truth)):
            return 0.0
        x1, y1, x2, y2 = box  # their IoU does not reorder corners: only a well-ordered box overlaps itself
        return 1.0 if x2 > x1 and y2 > y1 else 0.0
    pred = predicted_box(answer)
    if pred is None:
        return 0.0
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


# --- the judge's grades, shared by a batch's reward functions ---------------------------------------

class BatchJudgements:
    """The judge's grades of one batch's open-ended answers, asked once per completion and read by every
    reward function of the batch (the format reward needs to know which judgements failed). `released`: as
    the released code asks, an empty answer is sent to the judge too (else it scores 0 without a call), and
    a reply without a number grades 0 at once (else it is asked again, then fails)."""

    def __init__(self, judge, released: bool = False):
        self.judge, self.released = judge, released
        self._batch, self._grades = None, {}

    def _grade(self, question: str, answer: str, image) -> float | None:
        if self.released and hasattr(self.judge, "judgement"):  # an LLM judge says why it failed
            value, why = self.judge.judgement(question, answer, image, retry_unparsable=False)
            return 0.0 if why == UNPARSABLE else value
        return self.judge.score(question, answer, image)

    def grades(self, completions, answer_type, question=None, image_path=None) -> dict[int, float | None]:
        """{row: grade 0..1 or None (failed)} for the batch's open-ended rows with an answer to grade (released:
        every open-ended row)."""
        texts = [answer_part(completion_text(c)) for c in completions]
        batch = (tuple(texts), tuple(answer_type), tuple(question or ()), tuple(map(str, image_path or ())))
        if batch != self._batch:
            rows = [i for i, t in enumerate(texts) if answer_type[i] == OPEN and (t or self.released)]
            grade = lambda i: self._grade(question[i] if question else "", texts[i],  # noqa: E731
                                          image_path[i] if image_path else None)
            # an LLM judge's calls go out together, not one after another while every rank's GPU waits
            self._batch, self._grades = batch, dict(zip(rows, judge_map(self.judge, grade, rows)))
        return self._grades


def unscorable_format_reward(judgements: BatchJudgements) -> Callable:
    """The format reward, None where the completion's judgement failed (so TRL leaves the completion out)."""
    def format_reward_(completions, answer_type, question=None, image_path=None, **kwargs):
        failed = {i for i, g in judgements.grades(completions, answer_type, question, image_path).items() if g is None}
        return [None if i in failed else v for i, v in enumerate(format_reward(completions))]

    format_reward_.__name__ = format_reward.__name__  # the same metric name as the plain format reward
    return format_reward_


# --- the accuracy reward, configured ----------------------------------------------------------------

def make_accuracy_reward(variant: str = "continuous", grounding: str = "intended", judge=None,
                         judge_failure: str = "skip") -> Callable:
    """An accuracy reward for TRL. `judge.score(question, answer, image) -> float | None` grades open answers
    (or pass the `BatchJudgements` the batch's other reward functions share)."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown reward variant {variant!r}; use one of {VARIANTS}")
    if grounding not in GROUNDING_REWARDS:
        raise ValueError(f"grounding reward must be one of {GROUNDING_REWARDS}, not {grounding!r}")
    if judge_failure not in JUDGE_FAILURES:
        raise ValueError(f"judge failure handling must be one of {JUDGE_FAILURES}, not {judge_failure!r}")
    judgements = judge if isinstance(judge, BatchJudgements) or judge is None else \
        BatchJudgements(judge, released=judge_failure == "released")

    def accuracy_reward(completions, answer_type, solution, question=None, image_path=None, **kwargs):
        grades = judgements.grades(completions, answer_type, question, image_path) if judgements else {}
        out: list[float | None] = []
        judged = failed = 0
        last_grade = None  # the released code's leftover variable: the previous judged answer's grade
        for i, c in enumerate(completions):
            answer = answer_part(completion_text(c))
            kind = answer_type[i]
            if kind == GROUNDING:
                out.append(shape_score(grounding_score(answer, solution[i], grounding == "released"), variant, 0.5))
            elif kind == OPEN:
                # not judged: an empty answer scores 0 (nothing to grade), any other None (no judge to ask)
                score = grades[i] if i in grades else None if answer else 0.0
                judged, failed = judged + (i in grades), failed + (i in grades and score is None)
                if i in grades and judge_failure == "released":
                    if score is None:
                        if last_grade is None:
                            raise ReleasedJudgeCrash(
                                f"judge_failure=released: the judge failed on completion {i} of the batch with no "
                                "earlier grade to reuse; the released code crashes here (judge_failure: skip leaves "
                                "the completion out instead)")
                        score = last_grade
                    last_grade = score
                out.append(None if score is None else shape_score(score, variant, 0.7))
            else:
                out.append(closed_score(answer, solution[i]))
        if judged and "log_metric" in kwargs:  # TRL's hook: averaged over the step's batches and processes
            kwargs["log_metric"]("judge/failed_fraction", failed / judged)
        return out

    accuracy_reward.__name__ = (f"accuracy_{variant}" + ("_released_grounding" if grounding == "released" else "")
                                + ("_released_judge" if judge_failure == "released" else ""))
    return accuracy_reward


REGISTRY = {"format": lambda **kw: format_reward, "accuracy": make_accuracy_reward}


def make_rewards(names: list[str], **accuracy_kwargs) -> list[Callable]:
    """Reward functions by name, in order (the paper: ['format', 'accuracy'], equal weights). With a judge,
    they share its grades, and (judge_failure "skip") a completion whose judgement failed gets None from
    every function, so TRL leaves it out instead of counting its accuracy as 0."""
    unknown = [n for n in names if n not in REGISTRY]
    if unknown:
        raise ValueError(f"unknown reward(s) {unknown}; known: {sorted(REGISTRY)}")
    judge = accuracy_kwargs.get("judge")
    if judge is None or "accuracy" not in names:
        return [REGISTRY[n](**accuracy_kwargs) if n == "accuracy" else REGISTRY[n]() for n in names]
    released = accuracy_kwargs.get("judge_failure", "skip") == "released"  # the released code scores every row
    judgements = BatchJudgements(judge, released)
    return [make_accuracy_reward(**{**accuracy_kwargs, "judge": judgements}) if n == "accuracy"
            else format_reward if released else unscorable_format_reward(judgements) for n in names]
