"""`tinyrs --help` lists the subcommands; each has its own --help."""
import re
import subprocess
import sys

import pytest

from tinyrs.cli import build_parser, main

COMMANDS = [["data"], ["data", "build"], ["data", "validate"], ["model"], ["model", "toy"], ["model", "info"],
            ["learnability"], ["reproduce"], ["think"], ["ablations"], ["bench", "table5"], ["eval"], ["rescore"],
            ["runs"]]


def test_top_level_help_lists_subcommands():
    r = subprocess.run([sys.executable, "-m", "tinyrs.cli", "--help"], capture_output=True, text=True)
    assert r.returncode == 0
    listed = set(re.findall(r"^    (\w+)\s", r.stdout, re.M))  # the command column, not words of the description
    assert listed == {"data", "model", "learnability", "think", "serve", "train", "runs", "eval", "rescore", "bench",
                      "ablations", "reproduce"}


@pytest.mark.parametrize("cmd", COMMANDS)
def test_each_subcommand_has_help(cmd, capsys):
    with pytest.raises(SystemExit) as e:
        build_parser().parse_args(cmd + ["--help"])
    assert e.value.code == 0
    assert "usage: tinyrs " + " ".join(cmd) in capsys.readouterr().out


def test_data_build_cli_and_bad_override(tmp_path, capsys):
    assert main(["data", "build", "--out", str(tmp_path / "d"), "--set", "nonsense=1", "--no-progress"]) == 2
    assert "unknown key 'nonsense'" in capsys.readouterr().err
    for bad, problem in (("instruct.entries=abc", "instruct.entries takes a number, not 'abc'"),
                         ("instruct.entries=-5", "instruct.entries: -5 is not a count")):
        assert main(["data", "build", "--out", str(tmp_path / "d"), "--set", bad, "--no-progress"]) == 2
        assert problem in capsys.readouterr().err
    assert not (tmp_path / "d" / "instruct.json").exists()  # nothing half-built
    args = ["data", "build", "--out", str(tmp_path / "d"), "--no-progress", "--set", "pretrain.images=10",
            "--set", "instruct.entries=40", "--set", "rl.entries=10"]
    assert main(args) == 0
    assert "disjoint: True" in capsys.readouterr().out


def test_own_config_files_have_their_profiles_keys(tmp_path, capsys):
    from tinyrs.config import CONFIGS

    data = (CONFIGS / "toy" / "data.yaml").read_text()
    assert "  entries:" in data
    (tmp_path / "data.yaml").write_text(data.replace("  entries:", "  entires:", 1))  # a typo in one's own copy
    assert main(["data", "build", "--config", str(tmp_path / "data.yaml"), "--out", str(tmp_path / "d"), "--no-progress"]) == 2
    assert "unknown key(s) instruct.entires; missing instruct.entries (the keys are those of" in capsys.readouterr().err
    (tmp_path / "llm.yaml").write_text("teacher:\n  backend: openai\n  temprature: 0.1\n")
    assert main(["think", "--config", str(tmp_path / "llm.yaml"), "--in", "x.json", "--out", "y.json"]) == 2
    assert "unknown key(s) teacher.temprature" in capsys.readouterr().err
    (tmp_path / "llm.yaml").write_text("teacher:\n  backend: openai\n  timeout: fast\n")  # would fail every call
    assert main(["think", "--config", str(tmp_path / "llm.yaml"), "--in", "x.json", "--out", "y.json"]) == 2
    assert "llm.yaml: teacher.timeout takes a number, not 'fast'" in capsys.readouterr().err
    (tmp_path / "llm.yaml").write_text("judge:\n  backend: openai\n")  # valid, but think needs a teacher
    assert main(["think", "--config", str(tmp_path / "llm.yaml"), "--in", "x.json", "--out", "y.json"]) == 2
    assert "no teacher section" in capsys.readouterr().err
    assert main(["model", "toy", "--config", "paper", "--build", "b", "--out", str(tmp_path / "m")]) == 2
    assert "the paper profile has no model config" in capsys.readouterr().err
    (tmp_path / "bad.yaml").write_text("stage: S\nkind: sft\ntrainer: x: 1\n")  # not YAML: one line naming it
    for cmd in (["train", "S", "--config", str(tmp_path / "bad.yaml"), "--dry-run"],
                ["data", "build", "--config", str(tmp_path / "bad.yaml"), "--out", str(tmp_path / "d2")],
                ["think", "--config", str(tmp_path / "bad.yaml"), "--in", "x.json", "--out", "y.json"]):
        assert main(cmd) == 2
        assert "bad.yaml, line 3: not valid YAML (mapping values are not allowed here)" in capsys.readouterr().err


def test_model_toy_and_info(toy_build, tmp_path, capsys):
    assert main(["model", "toy", "--build", str(toy_build), "--out", str(tmp_path / "m")]) == 0
    assert main(["model", "info", str(tmp_path / "m")]) == 0
    assert '"architecture": "Qwen2VLForConditionalGeneration"' in capsys.readouterr().out
    assert main(["model", "info", str(tmp_path / "nope")]) == 2
    assert "no such checkpoint folder" in capsys.readouterr().err


def test_serve_help_is_transformers_serve():
    r = subprocess.run([sys.executable, "-m", "tinyrs.cli", "serve", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "tinyrs serve" in r.stdout and "--port" in r.stdout
    r = subprocess.run([sys.executable, "-m", "tinyrs.cli", "serve", "no/such/checkpoint"], capture_output=True,
                       text=True)
    assert r.returncode == 2 and r.stderr == "error: no/such/checkpoint: no such checkpoint folder\n"


def test_think_cli_rules(toy_build, tmp_path, capsys):
    import shutil

    for name in ["instruct.json", "build.json", "scenes.jsonl", "qa_meta.jsonl"]:
        shutil.copy(toy_build / name, tmp_path / name)
    (tmp_path / "images").symlink_to(toy_build / "images")
    assert main(["think", "--in", str(tmp_path / "instruct.json"), "--out", str(tmp_path / "t.json"), "--limit", "30",
                 "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "30 captions accepted" in out and "VQA" in out
    assert main(["think", "--in", str(tmp_path / "instruct.json"), "--out", str(tmp_path / "t2.json"),
                 "--teacher", "openai", "--base-url", "https://api.example.invalid/v1", "--no-progress"]) == 2


def test_reproduce_params_are_typed_like_set(monkeypatch, capsys):
    import tinyrs.reproduce

    seen = {}
    monkeypatch.setattr(tinyrs.reproduce, "reproduce", lambda **kw: seen.update(kw))
    assert main(["reproduce", "--only", "06", "--param", "seed=3", "--param", "figures_dir=/tmp/f"]) == 0
    assert seen["parameters"] == {"seed": 3, "figures_dir": "/tmp/f"} and seen["only"] == ["06"]
    assert main(["reproduce", "--param", "seed"]) == 2
    assert "--param 'seed' is not KEY=VALUE" in capsys.readouterr().err
    from tinyrs.paths import NOTEBOOKS

    nb = NOTEBOOKS / "07_stage_R_grpo.ipynb"  # each value must be of the kind of the notebook's default
    assert tinyrs.reproduce.notebook_parameters("toy", nb, {"seed": 3, "overrides": ["max_steps=5"]})["seed"] == 3
    for name, value, problem in (("seed", "x", "parameter seed takes a number (default 0), not 'x'"),
                                 ("train", 0, "parameter train takes true/false"),
                                 ("overrides", "max_steps=5", "parameter overrides takes a list")):
        with pytest.raises(SystemExit, match=re.escape(problem)):
            tinyrs.reproduce.notebook_parameters("toy", nb, {name: value})
    # checked for every notebook before anything runs: a parameter the last notebook lacks costs no training
    monkeypatch.undo()  # the real reproduce again
    monkeypatch.setattr(tinyrs.reproduce, "run_table_inputs", lambda *a: pytest.fail("trained before checking"))
    with pytest.raises(SystemExit, match="09_table1_main_results.ipynb does not declare parameter"):
        tinyrs.reproduce.reproduce("toy", only=["07", "09"], parameters={"overrides": ["max_steps=5"]})


@pytest.mark.parametrize("cmd, flag, value, problem", [
    (["eval", "--model", "C", "--out", "o"], "--batch-size", "0", "0 must be above 0"),
    (["eval", "--model", "C", "--out", "o"], "--limit", "-1", "-1 must be above 0"),  # not "all but the last"
    (["bench", "rollout"], "--prompts", "x", "'x' is not a whole number"),
    (["learnability", "--out", "o"], "--seconds", "0", "0 must be above 0")])
def test_counts_on_the_command_line_must_be_positive(cmd, flag, value, problem, capsys):
    with pytest.raises(SystemExit) as e:
        build_parser().parse_args(cmd + [flag, value])
    assert e.value.code == 2 and f"argument {flag}: {problem}" in capsys.readouterr().err


def test_ctrl_c_is_one_line_that_says_how_to_go_on(monkeypatch, capsys):
    import tinyrs.cli as cli

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "cmd_train", interrupted)
    assert main(["train", "S"]) == 130
    err = capsys.readouterr().err
    assert "interrupted: run the same command again to continue" in err and "Traceback" not in err


def test_dry_run_checks_the_starting_checkpoint_as_a_run_would(tmp_path, capsys):
    (tmp_path / "notes").mkdir()
    for init, problem in ((tmp_path / "nope", "no such checkpoint folder"),
                          (tmp_path / "notes", "a folder without config.json, not a checkpoint")):
        assert main(["train", "S", "--dry-run", "--init", str(init)]) == 2
        assert f"--init {init}: {problem}" in capsys.readouterr().err
