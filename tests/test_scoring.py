"""The two scoring modes against hand-written cases for every rule of the released harness (compat)
and of the corrected protocol (strict)."""
import pytest

from tinyrs.evaluation.benchmarks import BENCHMARKS
from tinyrs.evaluation.benchmarks import INSTRUCT_GROUNDING, asking_style, tagged_question
from tinyrs.evaluation.scoring import (capability_averages, commonest_answer_share, compat_answer, compat_match,
                                       extract_answer, grounding_iou, score_rows, size_bucket, strict_match, verdicts)


@pytest.mark.parametrize("prediction, answer", [
    ("<reasoning>I see a forest.</reasoning><answer>forest</answer>", "forest"),
    ("<reasoning>x</reasoning> forest", "forest"),         # after </reasoning>, no <answer>
    ("<answer>forest</answer>", "forest"),                 # <answer> without reasoning
    ("forest", "forest"),                                   # plain
    ("<reasoning>x</reasoning><answer>forest", "forest"),  # unterminated answer
])
def test_answer_extraction(prediction, answer):
    assert extract_answer(prediction) == answer


def test_empty_prediction_is_right_in_compat_and_wrong_in_strict():
    assert compat_match("", "dense residential")
    assert compat_match("<reasoning>long thought</reasoning><answer></answer>", "yes")
    assert not strict_match("", "dense residential")
    assert not strict_match("<answer> </answer>", "yes")


def test_substring_versus_exact():
    assert compat_match("residential", "dense residential")   # the released substring rule
    assert not strict_match("residential", "dense residential")
    assert compat_match("Dense Residential", "dense residential")  # spaces removed on both sides
    assert strict_match("Dense  residential.", "dense residential")  # case, white space, trailing stop
    assert not compat_match("dense residential area", "dense residential")


def test_compat_cuts_at_the_first_full_stop_then_comma():
    assert compat_answer("Yes. There are two ships, both white.") == "yes"
    assert compat_answer("forest, with a road") == "forest"
    assert compat_answer("<reasoning>a. b, c</reasoning><answer>No, none.</answer>") == "no"
    assert compat_match("Yes, there is one.", "yes")
    assert not strict_match("Yes, there is one.", "yes")


def test_compat_reads_answers_character_for_character_as_the_released_code():
    # classification / VQA: only spaces are removed, then the answer is stripped
    assert not compat_match("dense\nresidential", "dense residential")
    assert compat_match("  forest\n", "forest")
    # LHRS-Bench ("choice"): cut at '.' only, spaces and dots removed, not stripped
    assert compat_match("A. The port", "A", "choice") and compat_match("A", "A.", "choice")
    assert not compat_match("A, because it is a port", "A", "choice")
    assert compat_match("A, because it is a port", "A")  # the classification rule would take it
    assert not compat_match("<answer>\nA\n</answer>", "A", "choice")
    assert compat_answer("<reasoning>r</reasoning><answer>B. x</answer>", "choice") == "b"
    # a </reasoning> with no <reasoning> before it cuts nothing in the released code
    assert extract_answer("x</reasoning>forest") == "x</reasoning>forest"
    assert extract_answer("x</reasoning>forest", "strict") == "forest"


def test_compat_reads_only_the_box_the_released_regex_reads():
    size, truth = [100, 100], "[10, 10, 50, 50]"
    for loose in ("[[ 100, 100, 500, 500 ]]", "[[100, 100, 500, 500.0]]"):
        assert grounding_iou(loose, truth, size, "compat") is None  # dropped by the released harness
        assert grounding_iou(loose.replace(".0", ""), truth, size, "strict") == pytest.approx(1.0)


def test_a_qwen2vl_instruct_model_is_asked_and_read_as_the_released_harness_does():
    assert asking_style("Qwen/Qwen2-VL-2B-Instruct") == "qwen2vl-instruct"
    assert asking_style("/models/Qwen2-VL-7B-Instruct/") == "qwen2vl-instruct"
    assert asking_style("aybora/Qwen2-VL-TinyRS-CoT") == asking_style("runs/S/latest/checkpoint") == "tinyrs"
    assert tagged_question("<image>\nthe ship on the left", "VG", "qwen2vl-instruct") == \
        INSTRUCT_GROUNDING.format("the ship on the left")
    assert "<|object_ref_start|> the ship on the left <|object_ref_end|>" in INSTRUCT_GROUNDING.format("the ship on the left")
    assert tagged_question("<image>\nWhat class?", "CLS", "qwen2vl-instruct") == "What class?"  # no task tag
    assert tagged_question("<image>\nWhat class?", "CLS") == "{CLS} What class?"
    with pytest.raises(ValueError, match="ask must be one of"):
        tagged_question("q", "CLS", "llava")
    size, truth = [100, 200], "[20, 10, 60, 50]"  # h, w
    native = "the ship(100,100),(300,500)"  # Qwen2-VL's own format, special tokens decoded away
    reasoned = "The ship is 1 of 2 ships. (100,100),(300,500)"
    normalised = "[0.1, 0.1, 0.3, 0.5]"  # four numbers in 0..1: scaled by 1000
    rows = [{"prediction": p, "answer": truth, "size": size} for p in (native, reasoned, normalised, "on the left")]
    compat = score_rows(rows, "acc@0.5", "compat", ask="qwen2vl-instruct")
    strict = score_rows(rows, "acc@0.5", "strict", ask="qwen2vl-instruct")
    assert (compat["score"], compat["counted"], compat["unparsed"]) == (1.0, 2, 2)  # six numbers, none: dropped
    assert (strict["score"], strict["counted"]) == (0.75, 4)  # strict reads the native box; no box is a miss
    # asked the TinyRS way, none of these answers holds a box
    assert score_rows(rows, "acc@0.5", "strict")["score"] == 0.0


def test_strict_synonym_map_is_explicit():
    assert not strict_match("parking", "parking lot")
    assert strict_match("parking", "parking lot", synonyms={"parking lot": {"parking"}})


def test_grounding_frames_and_non_square_images():
    # a 200 x 100 (w x h) image: truth in pixels, prediction in 0..1000
    size = [100, 200]
    truth = "[20, 10, 60, 50]"
    assert grounding_iou("[[100, 100, 300, 500]]", truth, size) == pytest.approx(1.0)
    # the same numbers read as pixels would be wrong: the rescaling uses w for x and h for y
    assert grounding_iou("[[100, 100, 300, 500]]", truth, [200, 100]) < 0.5
    assert grounding_iou("<reasoning>r</reasoning><answer>[[100, 100, 300, 500]]</answer>", truth, size) == \
        pytest.approx(1.0)
    assert grounding_iou("no box here", truth, size) is None


def test_iou_exactly_half_counts_as_a_hit():
    size = [1000, 1000]  # pixels = 0..1000 units
    truth = "[0, 0, 100, 100]"
    pred = "[[0, 0, 100, 50]]"  # half the truth: IoU 0.5 exactly
    assert grounding_iou(pred, truth, size) == pytest.approx(0.5)
    rows = [{"prediction": pred, "answer": truth, "size": size}]
    assert score_rows(rows, "acc@0.5", "strict")["score"] == 1.0


def test_unparsable_boxes_leave_the_compat_denominator_only():
    size = [100, 100]
    rows = [{"prediction": "[[0, 0, 500, 500]]", "answer": "[0, 0, 50, 50]", "size": size},   # hit
            {"prediction": "[[600, 600, 900, 900]]", "answer": "[0, 0, 50, 50]", "size": size},  # miss
            {"prediction": "the top left", "answer": "[0, 0, 50, 50]", "size": size},          # unparsable
            {"prediction": "", "answer": "[0, 0, 50, 50]", "size": size}]                      # empty
    compat = score_rows(rows, "acc@0.5", "compat")
    strict = score_rows(rows, "acc@0.5", "strict")
    assert (compat["score"], compat["counted"], compat["unparsed"]) == (0.5, 2, 2)
    assert (strict["score"], strict["counted"]) == (0.25, 4)
    assert strict["mean_iou"] == pytest.approx(0.25)
    # each question's outcome in order, for paired comparisons; compat marks the dropped ones
    assert (strict["outcomes"], compat["outcomes"]) == ("1000", "10--")
    other = [{**rows[0], "answer": "[0, 0, 60, 60]"}, *rows[1:]]
    assert strict["questions"] == compat["questions"] != score_rows(other, "acc@0.5", "strict")["questions"]
    closed = score_rows([{"prediction": "yes", "answer": "yes"}, {"prediction": "no", "answer": "yes"}], "accuracy", "strict")
    assert closed["outcomes"] == "10"
    from tinyrs.evaluation.scoring import questions_digest

    same_words = [{"image": "a.jpg", "image_bytes": 10, "question": "Classify", "answer": "forest"}]
    assert questions_digest(same_words) != questions_digest([{**same_words[0], "image": "b.jpg"}])  # another image


def test_box_size_buckets_use_the_truth_pixel_area():
    assert size_bucket("[0, 0, 32, 32]") == "small"  # the released `while area > level`: 32^2 is small
    assert size_bucket("[0, 0, 33, 32]") == "medium"
    assert size_bucket("[10, 10, 105, 105]") == "medium"
    assert size_bucket("[0, 0, 96, 96]") == "medium"
    assert size_bucket("[0, 0, 97, 96]") == "large"
    rows = [{"prediction": "[[0, 0, 100, 100]]", "answer": "[0, 0, 10, 10]", "size": [100, 100]},
            {"prediction": "[[0, 0, 1000, 1000]]", "answer": "[0, 0, 150, 150]", "size": [150, 150]}]
    by_size = score_rows(rows, "acc@0.5", "strict")["by_size"]
    assert by_size == {"small": 1.0, "medium": None, "large": 1.0}


def test_lhrs_scores_per_question_type():
    rows = [{"prediction": "A", "answer": "A", "type": ["1"]},
            {"prediction": "B", "answer": "C", "type": ["1", "10"]},
            {"prediction": "D", "answer": "D", "type": ["10"]}]
    s = score_rows(rows, "accuracy", "strict")
    assert s["score"] == pytest.approx(2 / 3)
    assert s["by_type"] == {"1": 0.5, "10": 0.5}


def test_capability_averages_follow_table_one_groups():
    scores = {b.file: {"score": 1.0 if b.group == "CLS" else 0.0} for b in BENCHMARKS}
    avg = capability_averages(scores, BENCHMARKS)
    assert avg["CLS"] == 1.0 and avg["VQA"] == 0.0 and avg["Ground."] == 0.0 and avg["Gen. Know."] == 0.0
    assert avg["Avg."] == pytest.approx(0.25)


def test_a_missing_capability_score_is_not_averaged_away():
    scores = {b.file: {"score": 1.0 if b.group == "CLS" else 0.0} for b in BENCHMARKS}
    scores["VG_DOIR_RSVG_test.json"] = {"score": None}  # compat grounding when no answer had a box
    avg = capability_averages(scores, BENCHMARKS)
    assert avg["Ground."] is None and avg["Avg."] is None and avg["CLS"] == 1.0  # not the mean of the other 3
    only_cls = capability_averages({b.file: {"score": 1.0} for b in BENCHMARKS if b.group == "CLS"}, BENCHMARKS)
    assert only_cls == {"CLS": 1.0, "Avg.": 1.0}  # benchmarks not evaluated are not groups at all


def test_reversed_boxes_and_boxes_inside_cut_off_reasoning_score_nothing():
    size, truth = [100, 100], "[10, 10, 50, 50]"
    assert grounding_iou("[[500, 500, 100, 100]]", truth, size) == 0.0  # the truth's corners written backwards
    cut_off = "<reasoning>The tank is at [[100, 100, 500, 500]], so the answer"  # max_new_tokens reached
    assert grounding_iou(cut_off, truth, size, "strict") is None
    assert grounding_iou(cut_off, truth, size, "compat") == pytest.approx(1.0)  # the released harness reads it
    rows = [{"prediction": cut_off, "answer": truth, "size": size}]
    assert score_rows(rows, "acc@0.5", "strict")["score"] == 0.0
    assert score_rows(rows, "acc@0.5", "compat")["score"] == 1.0
    assert not strict_match("<reasoning>It is a forest\nforest", "forest")  # cut off: no answer given
    assert strict_match("<reasoning>It is a forest</reasoning>\nforest", "forest")


def test_the_commonest_answer_is_the_floor_shown_beside_a_score():
    rows = [{"prediction": "no", "answer": a} for a in ("No", "no.", "yes", "no")]
    s = score_rows(rows, "accuracy", "strict")
    assert s["score"] == 0.75 and s["commonest_answer"] == 0.75  # always "no" scores what the prior gives
    assert commonest_answer_share([]) is None


def test_unknown_mode_is_a_clear_error():
    with pytest.raises(ValueError, match="scoring mode"):
        score_rows([], "accuracy", "lenient")


def test_verdicts_show_where_the_modes_disagree_first():
    rows = [{"question": "<image>\nq", "answer": t, "prediction": p} for t, p in
            [("forest", "forest"), ("parking lot", "parking"), ("river", "lake"), ("dense residential", "residential")]]
    shown = verdicts(rows, disagree=3, agree=1)
    assert [(v["truth"], v["strict"], v["compat"]) for v in shown] == [
        ("parking lot", False, True), ("dense residential", False, True), ("forest", True, True)]
    assert shown[0]["question"] == "q" and shown[0]["answer"] == "parking"


def test_the_judge_grades_the_answer_strict_scoring_reads():
    from tinyrs.evaluation.scoring import judge_grades

    class Recording:
        def __init__(self):
            self.sent = []

        def score(self, question, answer, image):
            self.sent.append(answer)
            return 0.5

    judge = Recording()
    rows = [{"question": "q", "prediction": p} for p in ("Ships at a quay.</reasoning> A busy port.",
                                                         "<reasoning>The port has", "<answer>A port.</answer>")]
    assert judge_grades(judge, rows, lambda r: "img") == [0.5, 0.0, 0.5]  # cut off in its reasoning: no answer
    assert judge.sent == ["A busy port.", "A port."]
