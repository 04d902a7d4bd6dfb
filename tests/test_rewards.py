"""GRPO rewards: worked cases for every rule, and property-based tests over arbitrary text and boxes."""
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyrs.boxes import iou
from tinyrs.rewards import (answer_part, closed_score, completion_text, format_reward, grounding_score,
                            make_accuracy_reward, make_rewards, ReleasedJudgeCrash, shape_score)


def conv(text):
    return [{"role": "assistant", "content": text}]


@pytest.mark.parametrize("text,ok", [
    ("<reasoning>two ships</reasoning><answer>2</answer>", True),
    ("<reasoning>a\nb</reasoning>\n\n<answer>\nyes\n</answer>", True),  # dot matches newlines, whitespace between
    ("<reasoning>x</reasoning><answer>y</answer> and then more text", True),  # matched from the start only
    ("Sure! <reasoning>x</reasoning><answer>y</answer>", False),  # not at the start
    ("<answer>y</answer><reasoning>x</reasoning>", False),
    ("<reasoning>x</reasoning>", False),
    ("<think>x</think><answer>y</answer>", False),
    ("", False),
])
def test_format_reward(text, ok):
    assert format_reward([conv(text)]) == [1.0 if ok else 0.0]
    assert format_reward([text]) == [1.0 if ok else 0.0]  # plain-text completions too


def test_closed_answers_match_lowercased_without_dots():
    assert closed_score("Yes.", "yes") == 1.0 and closed_score("  RURAL ", "rural") == 1.0
    assert closed_score("dense residential", "residential") == 0.0  # exact, not a substring
    assert closed_score("", "no") == 0.0


def test_grounding_is_iou_and_the_released_defect_is_available():
    truth = "[[100, 100, 300, 300]]"
    assert grounding_score("[[100, 100, 300, 300]]", truth) == 1.0
    assert grounding_score("[[200, 100, 400, 300]]", truth) == pytest.approx(1 / 3)
    assert grounding_score("[[500, 500, 600, 600]]", truth) == 0.0
    assert grounding_score("no box here", truth) == 0.0
    assert grounding_score("100, 100, 300, 300", truth) == 1.0  # four integers, as the released parser reads
    # the released code compares the prediction with itself: any well-ordered box scores 1
    assert grounding_score("[[500, 500, 600, 600]]", truth, released=True) == 1.0
    assert grounding_score("[[600, 500, 500, 600]]", truth, released=True) == 0.0
    assert grounding_score("nothing", truth, released=True) == 0.0
    # read as the released code reads it: the answer's first four integers, whatever the brackets say
    assert grounding_score("2 ships [[500, 20, 600, 10]]", truth, released=True) == 1.0  # 2, 500, 20, 600
    assert grounding_score("2 ships [[500, 20, 600, 10]]", truth) == 0.0
    assert grounding_score("[[500, 500, 600, 600]]", "none", released=True) == 0.0  # a truth without numbers


@pytest.mark.parametrize("score,cont,binary_iou,binary_judge,quant", [
    (0.0, 0.0, 0.0, 0.0, 0.0), (0.39, 0.39, 0.0, 0.0, 0.0), (0.4, 0.4, 0.0, 0.0, 0.0),
    (0.5, 0.5, 1.0, 0.0, 1 / 3), (0.55, 0.55, 1.0, 0.0, 0.5), (0.7, 0.7, 1.0, 1.0, 1.0), (1.0, 1.0, 1.0, 1.0, 1.0)])
def test_table3_variants(score, cont, binary_iou, binary_judge, quant):
    assert shape_score(score, "continuous", 0.5) == pytest.approx(cont)
    assert shape_score(score, "binary", 0.5) == binary_iou  # grounding: IoU >= 0.5
    assert shape_score(score, "binary", 0.7) == binary_judge  # open-ended: judge >= 0.7
    assert shape_score(score, "quantized", 0.5) == pytest.approx(quant)


class FixedJudge:
    def __init__(self, value):
        self.value, self.calls = value, []

    def score(self, question, answer, image):
        self.calls.append((question, answer, image))
        return self.value


def test_accuracy_reward_by_answer_type_and_judge_failures():
    completions = [conv("<reasoning>r</reasoning><answer>Yes.</answer>"),
                   conv("<reasoning>r</reasoning><answer>[[200, 100, 400, 300]]</answer>"),
                   conv("<reasoning>r</reasoning><answer>A harbor with ships.</answer>"),
                   conv("<reasoning>r</reasoning><answer></answer>")]
    kwargs = dict(answer_type=["closed", "grounding", "open", "open"],
                  solution=["yes", "[[100, 100, 300, 300]]", "A harbor.", "A harbor."],
                  question=["q1", "q2", "Describe.", "Describe."], image_path=["a", "b", "c", "d"])
    judge = FixedJudge(0.8)
    out = make_accuracy_reward("continuous", judge=judge)(completions, **kwargs)
    assert out == [1.0, pytest.approx(1 / 3), 0.8, 0.0]
    assert judge.calls == [("Describe.", "A harbor with ships.", "c")]  # the judge sees its own sample only
    logged = []
    failing = make_accuracy_reward("continuous", judge=FixedJudge(None))(
        completions, **kwargs, log_metric=lambda name, value: logged.append((name, value)))
    assert failing[2] is None  # a failed judgement is no reward (TRL skips it), never 0
    assert logged == [("judge/failed_fraction", 1.0)]  # in metrics.jsonl: how much of the judging GRPO lost
    binary = make_accuracy_reward("binary", judge=FixedJudge(0.6))(completions, **kwargs)
    assert binary[:3] == [1.0, 0.0, 0.0]
    released = make_accuracy_reward("continuous", "released", judge=judge)(completions, **kwargs)
    assert released[1] == 1.0


class ScriptedJudge:
    """Returns its grades in turn (None: a failed call)."""
    def __init__(self, grades):
        self.grades = list(grades)

    def score(self, question, answer, image):
        return self.grades.pop(0)


def test_released_judge_failure_reuses_the_previous_grade_or_crashes():
    completions = [conv(f"<reasoning>r</reasoning><answer>{a}</answer>") for a in ("A port.", "Ships.", "A pier.")]
    kwargs = dict(answer_type=["open"] * 3, solution=[""] * 3, question=["Describe."] * 3, image_path=["a", "b", "c"])
    intended = make_accuracy_reward(judge=ScriptedJudge([0.9, None, 0.3]))(completions, **kwargs)
    assert intended == [0.9, None, 0.3]
    released = make_accuracy_reward(judge=ScriptedJudge([0.9, None, 0.3]), judge_failure="released")
    assert released(completions, **kwargs) == [0.9, 0.9, 0.3]  # the failed sample gets its neighbour's grade
    assert released.__name__ == "accuracy_continuous_released_judge"
    first_fails = make_accuracy_reward(judge=ScriptedJudge([None, 0.9, 0.3]), judge_failure="released")
    with pytest.raises(ReleasedJudgeCrash, match="completion 0 .*released code crashes"):
        first_fails(completions, **kwargs)
    # the grade carried over is the raw one, shaped again like any other (binary: 0.9 -> 1)
    binary = make_accuracy_reward("binary", judge=ScriptedJudge([0.9, None, 0.3]), judge_failure="released")
    assert binary(completions, **kwargs) == [1.0, 1.0, 0.0]


def test_an_empty_answer_is_judged_only_as_released():
    """The intended handling scores an empty open-ended answer 0 without asking; the released code sends it to
    the judge like any other (a grade of 0.2 from a judge that grades the empty text, or a failure to carry)."""
    class Recording(ScriptedJudge):
        def score(self, question, answer, image):
            self.asked = getattr(self, "asked", []) + [answer]
            return super().score(question, answer, image)

    completions = [conv("<reasoning>r</reasoning><answer>A port.</answer>"),
                   conv("<reasoning>r</reasoning><answer> </answer>")]
    kwargs = dict(answer_type=["open"] * 2, solution=[""] * 2, question=["Describe."] * 2, image_path=["a", "b"])
    intended = Recording([0.9])
    assert make_rewards(["format", "accuracy"], judge=intended)[1](completions, **kwargs) == [0.9, 0.0]
    assert intended.asked == ["A port."]
    released = Recording([0.9, 0.2])
    assert make_rewards(["format", "accuracy"], judge=released, judge_failure="released")[1](completions, **kwargs) \
        == [0.9, 0.2]
    assert released.asked == ["A port.", ""]
    failing = make_accuracy_reward(judge=ScriptedJudge([0.9, None]), judge_failure="released")
    assert failing(completions, **kwargs) == [0.9, 0.9]  # its failed judgement reuses the previous grade


def test_an_llm_judge_grades_a_batch_concurrently():
    """A judge with an LLM client gets the batch's open answers at once (its `workers`), each grade on its row."""
    import threading
    import time
    from types import SimpleNamespace

    class SlowJudge:
        client = SimpleNamespace(settings=SimpleNamespace(workers=4))

        def __init__(self):
            self.lock, self.running, self.most = threading.Lock(), 0, 0

        def score(self, question, answer, image):
            with self.lock:
                self.running += 1
                self.most = max(self.most, self.running)
            time.sleep(0.2)
            with self.lock:
                self.running -= 1
            return {"a": 0.1, "b": 0.2, "c": 0.3, "d": None}[image]

    completions = [conv(f"<reasoning>r</reasoning><answer>{a}</answer>") for a in ("Port.", "Yes.", "Ships.", "Pier.", "Sea.")]
    kwargs = dict(answer_type=["open", "closed", "open", "open", "open"], solution=[""] * 5, question=["q"] * 5,
                  image_path=["a", "x", "b", "c", "d"])
    judge = SlowJudge()
    t0 = time.time()
    assert make_accuracy_reward(judge=judge)(completions, **kwargs) == [0.1, 0.0, 0.2, 0.3, None]
    assert judge.most == 4 and time.time() - t0 < 0.6  # four calls at once, not 0.8 s one after another


class ReplyingJudge:
    """An LLM judge's outcomes in turn: a grade, UNPARSABLE (a reply without a number) or a failed call."""
    def __init__(self, outcomes):
        self.outcomes = list(outcomes)

    def judgement(self, question, answer, image, retry_unparsable=True):
        o = self.outcomes.pop(0)
        return (o, None) if isinstance(o, float) else (None, o)

    def score(self, question, answer, image):
        return self.judgement(question, answer, image)[0]


def test_a_reply_without_a_number_grades_0_only_in_the_released_failure_handling():
    from tinyrs.llm import UNPARSABLE

    completions = [conv(f"<reasoning>r</reasoning><answer>{a}</answer>") for a in ("A port.", "Ships.", "A pier.")]
    kwargs = dict(answer_type=["open"] * 3, solution=[""] * 3, question=["Describe."] * 3, image_path=["a", "b", "c"])
    outcomes = [0.9, UNPARSABLE, "HTTP 500"]
    assert make_accuracy_reward(judge=ReplyingJudge(outcomes))(completions, **kwargs) == [0.9, None, None]
    released = make_accuracy_reward(judge=ReplyingJudge(outcomes), judge_failure="released")
    assert released(completions, **kwargs) == [0.9, 0.0, 0.0]  # 0 for the reply; the failed call reuses it
    fmt, acc = make_rewards(["format", "accuracy"], judge=ReplyingJudge(outcomes))
    assert fmt(completions, **kwargs) == [1.0, None, None] and acc(completions, **kwargs) == [0.9, None, None]
    # a judge without LLM replies (the toy rules judge, whose own grade() takes a scene) is asked for scores
    rules_like = ScriptedJudge([0.9, None, 0.3])
    rules_like.grade = lambda scene, answer: pytest.fail("asked the wrong method")
    assert make_accuracy_reward(judge=rules_like, judge_failure="released")(completions, **kwargs) == [0.9, 0.9, 0.3]


def test_registry_and_bad_names():
    fmt, acc = make_rewards(["format", "accuracy"], variant="quantized")
    assert fmt is format_reward and acc.__name__ == "accuracy_quantized"
    with pytest.raises(ValueError, match="unknown reward"):
        make_rewards(["length"])
    with pytest.raises(ValueError, match="variant"):
        make_accuracy_reward("stepwise")
    with pytest.raises(ValueError, match="grounding"):
        make_accuracy_reward(grounding="fixed")
    with pytest.raises(ValueError, match="judge failure"):
        make_accuracy_reward(judge_failure="zero")


# --- properties ------------------------------------------------------------------------------------

coords = st.integers(min_value=-50, max_value=1100)
boxes = st.tuples(coords, coords, coords, coords)
texts = st.text(max_size=300)


@settings(max_examples=300, deadline=None)
@given(text=texts, truth=st.one_of(texts, boxes.map(lambda b: "[[{}, {}, {}, {}]]".format(*b))),
       kind=st.sampled_from(["closed", "grounding", "open"]), variant=st.sampled_from(["continuous", "binary", "quantized"]),
       grounding=st.sampled_from(["intended", "released"]))
def test_rewards_never_raise_and_stay_in_range(text, truth, kind, variant, grounding):
    completions = [conv(text), text, [{"role": "assistant", "content": [{"type": "text", "text": text}]}], [], None]
    assert all(v in (0.0, 1.0) for v in format_reward(completions))
    reward = make_accuracy_reward(variant, grounding, judge=FixedJudge(0.5))
    out = reward(completions, answer_type=[kind] * 5, solution=[truth] * 5, question=["q"] * 5, image_path=["i"] * 5)
    assert len(out) == 5 and all(v is not None and 0.0 <= v <= 1.0 and not math.isnan(v) for v in out)
    assert isinstance(answer_part(completion_text(conv(text))), str)


in_frame = st.tuples(*[st.integers(min_value=0, max_value=1000)] * 4)
plain = st.text(alphabet=st.characters(blacklist_characters="<>[]"), max_size=80)  # no tags, no box brackets


@settings(max_examples=300, deadline=None)
@given(reasoning=plain, box=in_frame, truth=in_frame, gap=st.sampled_from(["", "\n", " \n\n "]),
       variant=st.sampled_from(["continuous", "binary", "quantized"]))
def test_well_formed_completions_score_their_box(reasoning, box, truth, gap, variant):
    """Completions in the trained format (which arbitrary text almost never is): format 1, and the
    grounding reward is the shaped IoU of the answer's box (intended) or 1 for any well-ordered box (released)."""
    text = f"<reasoning>{reasoning}</reasoning>{gap}<answer>[[{box[0]}, {box[1]}, {box[2]}, {box[3]}]]</answer>"
    assert format_reward([conv(text), text]) == [1.0, 1.0]
    kw = dict(answer_type=["grounding"], solution=["[[{}, {}, {}, {}]]".format(*truth)])
    assert make_accuracy_reward(variant)([conv(text)], **kw) == [shape_score(iou(box, truth), variant, 0.5)]
    well_ordered = box[2] > box[0] and box[3] > box[1]
    assert make_accuracy_reward(variant, "released")([conv(text)], **kw) == [shape_score(float(well_ordered), variant, 0.5)]
    assert make_accuracy_reward(variant)([conv(text)], answer_type=["closed"], solution=[text.split("<answer>")[1][:-9]]) == [1.0]


@settings(max_examples=300, deadline=None)
@given(a=boxes, b=boxes)
def test_iou_properties(a, b):
    v = iou(a, b)
    assert 0.0 <= v <= 1.0
    assert v == pytest.approx(iou(b, a))  # symmetric
    well_ordered = a[2] > a[0] and a[3] > a[1]
    assert iou(a, a) == (1.0 if well_ordered else 0.0)  # reversed or zero-area: malformed, overlaps nothing
    if not well_ordered:
        assert v == 0.0
    elif b[2] > b[0] and b[3] > b[1]:
        assert iou((a[2], a[3], a[0], a[1]), b) == 0.0  # the same corners written backwards
    if max(a[0], a[2]) <= min(b[0], b[2]) or max(a[1], a[3]) <= min(b[1], b[3]):
        assert v == 0.0  # disjoint (or touching) boxes


@settings(max_examples=200, deadline=None)
@given(score=st.floats(min_value=-5, max_value=5, allow_nan=False), variant=st.sampled_from(["continuous", "binary", "quantized"]),
       threshold=st.sampled_from([0.5, 0.7]))
def test_variants_are_monotone_and_bounded(score, variant, threshold):
    v = shape_score(score, variant, threshold)
    assert 0.0 <= v <= 1.0
    assert shape_score(score + 0.05, variant, threshold) >= v
