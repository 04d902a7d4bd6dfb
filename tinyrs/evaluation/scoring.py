"""Scoring predictions in two modes, reported side by side.

- `compat`: the released harness's rules exactly (eval/python_script/evaluation/rs_evaluation.py).
  Answer: the text after `</reasoning>` (when `<reasoning>` opened it), inside `<answer>` if present;
  spaces removed; cut at the first `.`, then at the first `,`; stripped and lower-cased; correct when it
  is a SUBSTRING of the truth (so an empty prediction is correct, and "residential" counts for "dense
  residential"). LHRS-Bench (rule "choice"): cut at the first `.` only, spaces and dots removed from
  both sides, not stripped. Grounding: Acc@0.5 with unparsable predictions dropped from the denominator.
- `strict`: empty or unparsable answers are wrong; normalised answers must match exactly (lower case,
  white space collapsed, a trailing full stop dropped, plus the explicit `SYNONYMS` map); every sample
  stays in the denominator.

Grounding truth is in pixels, predictions in 0..1000, rescaled by the image's `size` = [h, w].
Box sizes for the small / medium / large split follow the truth box's pixel area (<= 32^2, <= 96^2, else).
How a box is read depends on how the model was asked (`ask`, see benchmarks.ASKING): a TinyRS model
writes `[[x1, y1, x2, y2]]`; a Qwen2-VL-Instruct model its own `(x1,y1),(x2,y2)`, which the released
harness reads as "the answer's numbers, when there are exactly four".
"""
from __future__ import annotations

import hashlib
import json
import re
from collections import Counter, defaultdict

from ..data.vhm import DataError

MODES = ("strict", "compat")
SMALL, MEDIUM = 32 ** 2, 96 ** 2

# Answers that strict scoring accepts for a truth beyond exact equality. Empty on purpose: the toy
# benchmarks ask in the vocabulary of their own answers. Add pairs here (truth -> accepted answers),
# never in the scorer, so every accepted synonym is visible in one place.
SYNONYMS: dict[str, set[str]] = {}


def released_answer_text(prediction: str) -> str:
    """The released harness's cut of a prediction, as it writes it: after the first `</reasoning>` that
    follows a `<reasoning>` (the whole text when the reasoning never closes), then inside `<answer>`."""
    text = str(prediction or "")
    if "<reasoning>" in text:
        parts = text.split("<reasoning>")[1].split("</reasoning>")
        if len(parts) > 1:
            text = parts[1]
    if "<answer>" in text:
        text = text.split("<answer>")[1].split("</answer>")[0]
    return text


def extract_answer(prediction: str, mode: str = "compat") -> str:
    """The final answer of a prediction: the text after </reasoning>, inside <answer> if present. In
    strict mode an output cut off inside its reasoning (`<reasoning>` never closed) has no answer: a
    box or word it mentions while reasoning is not what it answered."""
    text = prediction or ""
    if mode == "compat":
        return released_answer_text(text).strip()
    if "<reasoning>" in text and "</reasoning>" not in text:
        return ""
    if "</reasoning>" in text:
        text = text.split("</reasoning>", 1)[1]
    m = re.search(r"<answer>(.*?)(</answer>|$)", text, re.S)
    return (m.group(1) if m else text).strip()


# --- closed answers -----------------------------------------------------------------------------------

def normalize(text: str) -> str:
    """Lower-case, collapse white space, drop a trailing full stop."""
    return re.sub(r"\s+", " ", (text or "").strip().lower()).rstrip(".").strip()


def strict_match(prediction: str, truth: str, synonyms: dict[str, set[str]] | None = None) -> bool:
    """Exact match of normalised answers (or an accepted synonym); an empty answer is wrong."""
    pred, true = normalize(extract_answer(prediction, "strict")), normalize(truth)
    accepted = {true} | {normalize(s) for s in (SYNONYMS if synonyms is None else synonyms).get(true, ())}
    return bool(pred) and pred in accepted


def compat_answer(prediction: str, rule: str = "short") -> str:
    """The released harness's reading of an answer. "short" (classification, VQA): spaces removed, cut at
    '.' then ',', stripped, lower-cased. "choice" (LHRS-Bench): cut at '.', spaces and dots removed,
    lower-cased (not stripped: an answer on a line of its own does not match)."""
    text = released_answer_text(prediction)
    if rule == "choice":
        return text.split(".")[0].replace(" ", "").replace(".", "").lower()
    return text.replace(" ", "").split(".")[0].split(",")[0].strip().lower()


def compat_match(prediction: str, truth: str, rule: str = "short") -> bool:
    """The released rule: correct when the prediction is a substring of the truth (read alike)."""
    truth = str(truth).replace(" ", "")
    truth = truth.replace(".", "").lower() if rule == "choice" else truth.strip().lower()
    return compat_answer(prediction, rule) in truth


def commonest_answer_share(truths: list[str]) -> float | None:
    """The strict score of always giving the commonest (normalised) truth of these questions: what an answer
    prior alone gets. A closed benchmark's score means something only above it (the toy's yes/no questions
    are 50-70% "no")."""
    counts = Counter(normalize(t) for t in truths)
    return counts.most_common(1)[0][1] / len(truths) if truths else None


# --- grounding ------------------------------------------------------------------------------------------

def read_box(prediction: str, mode: str = "compat", ask: str = "tinyrs") -> list[float] | None:
    """The predicted box (0..1000) of an answer, None if it has none. compat reads as the released harness
    does; strict reads a TinyRS model's `[[x1, y1, x2, y2]]` (signs and spaces allowed, as a box is
    still a box), and a Qwen2-VL-Instruct model's own `(x1,y1),(x2,y2)`, else its four numbers."""
    from ..boxes import four_numbers_box, parse_box, qwen2vl_box, released_box

    text = extract_answer(prediction, mode)
    if ask == "qwen2vl-instruct":
        return four_numbers_box(text) if mode == "compat" else qwen2vl_box(text) or four_numbers_box(text)
    return released_box(text) if mode == "compat" else parse_box(text)


def predicted_pixel_box(prediction: str, size_hw, mode: str = "compat", ask: str = "tinyrs") -> list[float] | None:
    """The predicted box (0..1000) in pixels of an image of size [h, w]; None if absent."""
    from ..boxes import to_pixels

    box = read_box(prediction, mode, ask)
    if box is None:
        return None
    h, w = size_hw
    return to_pixels(box, w, h)


def grounding_iou(prediction: str, truth: str, size_hw, mode: str = "compat", ask: str = "tinyrs") -> float | None:
    """IoU of a predicted box (0..1000) with a pixel truth box; None when the prediction has no box."""
    from ..boxes import iou, parse_pixel_box

    pred = predicted_pixel_box(prediction, size_hw, mode, ask)
    return None if pred is None else iou(pred, parse_pixel_box(truth))


def size_bucket(truth: str) -> str:
    """small / medium / large by the truth box's pixel area, as the released harness splits (an area of
    exactly 32^2 is small)."""
    from ..boxes import parse_pixel_box

    x1, y1, x2, y2 = parse_pixel_box(truth)
    area = max(0, x2 - x1) * max(0, y2 - y1)
    return "small" if area <= SMALL else "medium" if area <= MEDIUM else "large"


# --- one benchmark ----------------------------------------------------------------------------------------

def verdicts(rows: list[dict], disagree: int = 3, agree: int = 2) -> list[dict]:
    """Example answers with each mode's verdict: up to `disagree` where strict and compat differ, then
    `agree` where they concur (for showing what the two protocols count differently)."""
    judged = [{"question": r["question"].replace("<image>", "").strip(), "truth": r["answer"],
               "answer": extract_answer(r["prediction"]), "strict": strict_match(r["prediction"], r["answer"]),
               "compat": compat_match(r["prediction"], r["answer"])} for r in rows]
    return ([j for j in judged if j["strict"] != j["compat"]][:disagree]
            + [j for j in judged if j["strict"] == j["compat"]][:agree])


def _rate(hits: list[bool]) -> float | None:
    return sum(hits) / len(hits) if hits else None


def outcomes(hits: list[bool | None]) -> str:
    """Each question's outcome in question order, one character each: 1 right, 0 wrong, - not counted (compat
    grounding drops an unparsable box). Two models asked the same questions are compared question by
    question from these (`report.tables.paired_se`)."""
    return "".join("-" if h is None else "1" if h else "0" for h in hits)


def questions_digest(rows: list[dict]) -> str:
    """A short digest of the questions scored, in order (image, its byte size, question, truth): outcomes are
    paired only between models asked the same questions about the same images."""
    text = json.dumps([[r.get("image"), r.get("image_bytes"), r.get("question"), r.get("answer")] for r in rows],
                      ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def score_rows(rows: list[dict], metric: str, mode: str, grades: list[float | None] | None = None,
               rule: str = "short", ask: str = "tinyrs") -> dict:
    """Score one benchmark's predictions. rows: {prediction, answer, [size], [type]}. `rule`: how compat
    reads a closed answer (the benchmark's, see `compat_answer`); `ask`: how the model was asked (boxes).

    accuracy: {"score", "n" (samples), "counted" (in the denominator), "outcomes" (per question, see
    `outcomes`), "questions" (their digest)} and, when rows carry a `type` (LHRS-Bench), "by_type".
    acc@0.5: the same plus "by_size" and "mean_iou". judge: the mean of the
    judge's `grades` (0..1, one per row, None for a failed judgement) with the count of failures; the
    same in both modes."""
    if mode not in MODES:
        raise ValueError(f"unknown scoring mode {mode!r}; use one of {MODES}")
    if metric == "acc@0.5":
        return _score_grounding(rows, mode, ask)
    if metric == "judge":
        if grades is None:
            return {"score": None, "n": len(rows), "counted": 0, "failed": None, "note": "no judge given"}
        ok = [g for g in grades if g is not None]
        return {"score": sum(ok) / len(ok) if ok else None, "n": len(rows), "counted": len(ok),
                "failed": len(rows) - len(ok)}
    if mode == "strict":
        hits = [strict_match(r["prediction"], r["answer"]) for r in rows]
    else:
        hits = [compat_match(r["prediction"], r["answer"], rule) for r in rows]
    out = {"score": _rate(hits), "n": len(rows), "counted": len(rows),
           "commonest_answer": commonest_answer_share([r["answer"] for r in rows]),
           "outcomes": outcomes(hits), "questions": questions_digest(rows)}
    if any(r.get("type") for r in rows):
        by_type = defaultdict(list)
        for r, h in zip(rows, hits):
            for t in r.get("type") or ["?"]:
                by_type[str(t)].append(h)
        out["by_type"] = {t: _rate(v) for t, v in sorted(by_type.items(), key=lambda kv: (len(kv[0]), kv[0]))}
    return out


def _score_grounding(rows: list[dict], mode: str, ask: str) -> dict:
    each, ious, buckets, unparsed = [], [], defaultdict(list), 0  # each: a question's hit, None when dropped
    for r in rows:
        if "size" not in r:
            raise DataError(r.get("image", "?"), None, "a grounding prediction row without the image size [h, w]")
        i = grounding_iou(r["prediction"], r["answer"], r["size"], mode, ask)
        ious.append(i or 0.0)
        unparsed += i is None
        if i is None and mode == "compat":
            each.append(None)
            continue  # the released harness drops what it cannot parse
        hit = (i or 0.0) >= 0.5
        each.append(hit)
        buckets[size_bucket(r["answer"])].append(hit)
    hits = [h for h in each if h is not None]
    return {"score": _rate(hits), "n": len(rows), "counted": len(hits), "unparsed": unparsed,
            "mean_iou": sum(ious) / len(ious) if ious else None,
            "by_size": {b: _rate(buckets[b]) for b in ("small", "medium", "large")},
            "outcomes": outcomes(each), "questions": questions_digest(rows)}


def judge_grades(judge, rows: list[dict], image_of) -> list[float | None]:
    """The judge's 0..1 grade of each row's final answer (an empty answer is 0, not sent); None where the
    judgement failed. `image_of(row)` gives the image path the judge sees. An LLM judge grades rows at once."""
    from ..llm import judge_map

    def grade(r):
        answer = extract_answer(r["prediction"], "strict")  # the same answer in both modes; cut-off reasoning: none
        return judge.score(r["question"], answer, image_of(r)) if answer else 0.0

    return judge_map(judge, grade, rows)


def capability_averages(scores: dict[str, dict], benchmarks) -> dict[str, float | None]:
    """Table I's capability averages (the mean of each group's benchmark scores) and their mean, over the
    benchmarks in `scores`. A benchmark scored None (compat grounding when no answer has a box: the
    released harness divides by 0) makes its group None and so Avg.: averaging the other groups instead
    would compare means over different capabilities. Judge-graded benchmarks (open-ended QA) are not part
    of Table I and are left out."""
    groups = defaultdict(list)
    for b in (b for b in benchmarks if b.metric != "judge" and b.file in scores):
        groups[b.group].append(scores[b.file].get("score"))
    out = {g: None if None in v else sum(v) / len(v) for g, v in groups.items()}
    if out:
        out["Avg."] = None if None in out.values() else sum(out.values()) / len(out)
    return out
