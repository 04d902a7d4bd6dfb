"""Notebooks execute headlessly under papermill, with small parameters."""
import json

import papermill as pm
import pytest

from conftest import outputs_text
from tinyrs.paths import NOTEBOOKS
from tinyrs.reproduce import notebook_parameters, notebook_paths, parameter_defaults


def run(name, tmp_path, **params):
    out = tmp_path / name
    pm.execute_notebook(str(NOTEBOOKS / name), str(out), parameters=params, cwd=str(tmp_path), kernel_name="python3",
                        progress_bar=False)
    return json.loads(out.read_text())


@pytest.mark.slow
def test_01_dataset_construction(tmp_path):
    nb = run("01_dataset_construction.ipynb", tmp_path, out_dir=str(tmp_path / "data"), figures_dir=str(tmp_path / "fig"),
             write_repo_cards=False,
             build_overrides=["pretrain.images=150", "instruct.entries=500", "rl.entries=100"],
             learnability_images=1500, learnability_steps=260,
             learnability_seconds=200.0)  # a cap, not the budget: 260 steps take ~40 s on 2 free cores
    text = outputs_text(nb)
    assert "instruct_balanced.json" in text and "'disjoint': True" in text
    for stem in ["01_world_samples", "01_task_balance"]:
        assert {p.suffix for p in (tmp_path / "fig").glob(stem + ".*")} == {".png", ".pdf", ".csv"}
    res = json.loads((tmp_path / "data" / "learnability" / "learnability.json").read_text())
    print("learnability:", res["mean_after"], "chance", res["mean_chance"], res["steps"], "steps", res["train_seconds"], "s")
    assert res["mean_after"] >= 3 * res["mean_chance"] and res["mean_after"] - res["mean_chance"] > 0.3
    assert max(res["accuracy_before"].values()) <= 0.2  # the untrained model is not already right


def test_reproduce_parameters_are_declared_by_the_notebooks():
    for profile in ["toy", "paper"]:
        for nb in notebook_paths():
            params = notebook_parameters(profile, nb)  # raises on an undeclared key or a value of another kind
            assert set(params) <= set(parameter_defaults(nb))


def test_the_stage_notebooks_train_with_the_recipes_seed():
    """A stage notebook passes its `seed` to the recipe: reproduce must hand it the recipe's (paper: 42)."""
    from tinyrs.train.recipes import load_recipe

    for profile in ["toy", "paper"]:
        for nb in notebook_paths(["03", "04", "05", "07"]):
            stage = {"03": "P", "04": "S", "05": "C", "07": "R"}[nb.name[:2]]
            assert notebook_parameters(profile, nb)["seed"] == load_recipe(stage, profile)["seed"], (profile, nb.name)


def test_papermill_sees_every_parameter_the_cell_assigns():
    """papermill skips a parameter line it cannot parse (e.g. a comment with '='); catch that here."""
    import ast

    import nbformat

    for nb_path in notebook_paths():
        nb = nbformat.read(nb_path, as_version=4)
        cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
        assigned = {t.id for node in ast.parse(cell.source).body if isinstance(node, ast.Assign) for t in node.targets}
        assert assigned == set(parameter_defaults(nb_path)), nb_path.name


@pytest.mark.slow
def test_02_cot_captions(toy_build, tmp_path):
    import shutil

    build = tmp_path / "build"
    build.mkdir()
    for name in ["instruct.json", "build.json", "scenes.jsonl", "qa_meta.jsonl"]:
        shutil.copy(toy_build / name, build / name)
    (build / "images").symlink_to(toy_build / "images")
    nb = run("02_cot_captions.ipynb", tmp_path, data_dir=str(build), figures_dir=str(tmp_path / "fig"))
    text = outputs_text(nb)
    assert "<reasoning>your step-by-step reasoning</reasoning>" in text  # the prompt is shown
    assert "teacher: rules" in text and "0 dropped" in text
    assert "total_usd" in text and "openai.com" in text  # the cost estimate names its price source
    assert {p.suffix for p in (tmp_path / "fig").glob("02_cot_examples.*")} == {".png", ".pdf", ".csv"}
    assert (build / "instruct_think.json").exists()


@pytest.mark.slow
def test_03_to_07_training_notebooks(toy_build, tmp_path):
    """The stage notebooks run their toy stages in order (tiny settings) and show what each changed."""
    from conftest import training_copy

    data = training_copy(toy_build, tmp_path / "data")
    common = dict(data_dir=str(data), runs_root=str(tmp_path / "runs"), figures_dir=str(tmp_path / "fig"),
                  overrides=["max_steps=2", "per_device_train_batch_size=4", "logging_steps=1", "save_steps=2"])
    nb = run("03_stage_P_pretraining.ipynb", tmp_path, base_overrides=["generic.samples=48", "max_steps=2",
             "per_device_train_batch_size=4"], probe_images=6, **common)
    assert "named_correctly" in outputs_text(nb)
    nb = run("04_stage_S_sft.ipynb", tmp_path, eval_limit=4, **common)
    text = outputs_text(nb)
    assert "untrained" in text and "after S" in text and "DIOR-RSVG" in text
    nb = run("05_stage_C_cot_sft.ipynb", tmp_path, probe_prompts=4, **common)
    assert "sampled (R)" in outputs_text(nb)
    nb = run("06_grpo_rewards.ipynb", tmp_path, data_dir=common["data_dir"], figures_dir=str(tmp_path / "fig"))
    text = outputs_text(nb)
    assert "of random predictions get the released reward 1.0" in text
    assert "accuracy (released)" in text and "ReleasedJudgeCrash: judge_failure=released" in text
    nb = run("07_stage_R_grpo.ipynb", tmp_path, probe_prompts=4, grounding_limit=4,
             **{**common, "overrides": common["overrides"] + ["max_completion_length=16"]})
    text = outputs_text(nb)
    assert "start of R" in text and "after R" in text and "IoU, other image" in text and "untrained twin" in text
    nb = run("08_evaluation.ipynb", tmp_path, data_dir=common["data_dir"], runs_root=common["runs_root"],
             figures_dir=common["figures_dir"], results_dir=str(tmp_path / "eval"), limit=2, max_new_tokens=8)
    text = outputs_text(nb)
    assert "base strict" in text and "R compat" in text and "avg CLS" in text and "commonest answer" in text
    for stem in ["03_stage_P_curves", "04_stage_S_curves", "04_stage_S_effect", "05_stage_C_curves",
                 "06_reward_variants", "06_released_grounding", "07_stage_R_curves", "08_scores_by_mode",
                 "08_grounding_predictions"]:
        assert {p.suffix for p in (tmp_path / "fig").glob(stem + ".*")} == {".png", ".pdf", ".csv"}, stem


def test_08_evaluation_with_an_untrained_stand_in(toy_build, tmp_path):
    nb = run("08_evaluation.ipynb", tmp_path, data_dir=str(toy_build), runs_root=str(tmp_path / "no_runs"),
             figures_dir=str(tmp_path / "fig"), results_dir=str(tmp_path / "eval"), benchmarks=["AID", "DIOR-RSVG"],
             limit=2, max_new_tokens=6)
    text = outputs_text(nb)
    assert "untrained tiny stand-in" in text and "untrained strict" in text
    assert (tmp_path / "eval" / "untrained" / "predictions" / "cls_AID.jsonl").exists()
