"""The toy profile's offline judge grades open-ended answers against the world's ground truth."""
import pytest

from tinyrs.llm import LLMConfigError, OpenAIJudge, make_judge
from tinyrs.data.vhm import answer_text, human_text, read_json_list, resolve_train_image, task_of
from tinyrs.world.grading import RulesJudge, SceneIndex, damaged_answers, grade_answer


def described(toy_build):
    for e in read_json_list(toy_build / "instruct.json"):
        if task_of(e) == "IT" and "image shows" in answer_text(e) and "vehicle" in answer_text(e):
            return e
    raise AssertionError("no description in the toy build")


def test_true_answers_beat_every_kind_of_damage(toy_build):
    e = described(toy_build)
    image = resolve_train_image(e, toy_build / "images")
    scene = SceneIndex(toy_build).get(image)
    variants = damaged_answers(scene, answer_text(e))
    grades = {k: grade_answer(scene, v) for k, v in variants.items()}
    assert grades["the true answer"] == 10.0 and grades["empty"] == 0.0
    assert {"wrong scene", "wrong count", "invented objects"} <= set(grades)
    for k in ("wrong scene", "wrong count", "invented objects"):
        assert grades[k] < grades["the true answer"], k


def test_negated_absent_objects_are_not_invented(toy_build):
    scene = SceneIndex(toy_build).get(resolve_train_image(described(toy_build), toy_build / "images"))
    absent = next(k for k in ("airplane", "ship", "storage tank") if scene.count(k) == 0)
    base = f"This is {scene.scene_class}."
    assert grade_answer(scene, base + f" There are no {absent}s.") > grade_answer(scene, base + f" There are two {absent}s.")


def test_rules_judge_interface(toy_build):
    judge = make_judge({"backend": "rules"}, build_dir=toy_build)
    assert isinstance(judge, RulesJudge)
    e = described(toy_build)
    assert judge.score(human_text(e), answer_text(e), resolve_train_image(e, toy_build / "images")) == 1.0
    assert judge.score("q", "a", "/nowhere/unknown.jpg") is None and len(judge.failures) == 1
    with pytest.raises(LLMConfigError):
        make_judge({"backend": "rules"})
    with pytest.raises(LLMConfigError, match="unknown judge backend"):
        make_judge({"backend": "oracle"}, build_dir=toy_build)
    assert isinstance(make_judge({"backend": "openai", "base_url": "http://127.0.0.1:9/v1"}), OpenAIJudge)
    # a profile's judge by its LLM config section (the evaluation, GRPO and the ablations all ask this way)
    from tinyrs.config import ConfigError
    from tinyrs.llm import profile_judge

    assert isinstance(profile_judge("toy", build_dir=toy_build), RulesJudge)
    with pytest.raises(ConfigError, match=r"the toy LLM config has no section 'judge3' \(tinyrs/configs/toy/llm.yaml\)"):
        profile_judge("toy", "judge3", build_dir=toy_build)
