"""Bad input to the commands stops with one line naming the file, the entry and the problem (no traceback), and
is refused before anything is written or a run folder made: an audit's cases, each a bad file or setting."""
import json
import shutil

import pytest

from tinyrs.cli import main


def fails_with(capsys, argv, *expected):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err, err
    for text in expected:
        assert text in err, err
    return err


@pytest.fixture()
def broken_checkpoints(toy_checkpoint, tmp_path):
    """Copies of the toy checkpoint with truncated weights, a tokenizer that is not JSON, a config that is a list."""
    made = {}
    for name, file, content in (("weights", "model.safetensors", None), ("tokenizer", "tokenizer.json", "{bad"),
                                ("config", "config.json", "[1, 2]")):
        ck = shutil.copytree(toy_checkpoint, tmp_path / name)
        if content is None:
            (ck / file).write_bytes((ck / file).read_bytes()[:1000])
        else:
            (ck / file).write_text(content)
        made[name] = ck
    return made


def test_a_damaged_checkpoint_is_named_with_what_is_wrong(broken_checkpoints, toy_build, tmp_path, capsys):
    fails_with(capsys, ["model", "info", str(broken_checkpoints["weights"])], "cannot load Qwen2-VL checkpoint",
               "SafetensorError")
    fails_with(capsys, ["eval", "--model", str(broken_checkpoints["tokenizer"]), "--data-root", str(toy_build / "eval"),
                        "--benchmarks", "AID", "--limit", "1", "--out", str(tmp_path / "o")], "JSONDecodeError")
    fails_with(capsys, ["train", "S", "--dry-run", "--init", str(broken_checkpoints["config"])],
               f"cannot load Qwen2-VL checkpoint '{broken_checkpoints['config']}'")


def test_evaluation_refuses_a_toy_build_that_was_interrupted(toy_build, toy_checkpoint, tmp_path, capsys):
    """Its questions may be one world's and its images another's: scoring them would be silently wrong."""
    half = tmp_path / "half"
    half.mkdir()
    (half / "eval").symlink_to(toy_build / "eval")
    shutil.copy(toy_build / "scenes.jsonl", half)  # a toy build's files, but no build.json (written last)
    fails_with(capsys, ["eval", "--model", str(toy_checkpoint), "--data-root", str(half / "eval"), "--benchmarks",
                        "AID", "--limit", "1", "--out", str(tmp_path / "o")], "without its build.json")
    assert not (tmp_path / "o" / "scores.json").exists()
    (half / "build.json").write_text("{bad")
    from tinyrs.data.build import image_root_of
    from tinyrs.data.vhm import DataError

    with pytest.raises(DataError, match=r"build.json: not a build record with an image_root"):
        image_root_of(half)


def test_unreadable_evaluation_image_names_its_file_and_entry(toy_build, toy_checkpoint, tmp_path, capsys):
    root = tmp_path / "eval"
    shutil.copytree(toy_build / "eval" / "cls_AID", root / "cls_AID")
    entries = json.loads((toy_build / "eval" / "cls_AID.json").read_text())[:3]
    (root / "cls_AID.json").write_text(json.dumps(entries))
    image = root / "cls_AID" / entries[2]["image"]
    image.write_bytes(image.read_bytes()[:600])  # the header reads, the pixels do not
    fails_with(capsys, ["eval", "--model", str(toy_checkpoint), "--data-root", str(root), "--benchmarks", "AID",
                        "--out", str(tmp_path / "o")], f"{root / 'cls_AID.json'}: entry 2: cannot read image")


def test_bad_evaluation_answers_and_empty_files(toy_build, tmp_path, capsys):
    root = tmp_path / "eval"
    root.mkdir()
    (root / "LHRS-Bench").symlink_to(toy_build / "eval" / "LHRS-Bench")
    entries = json.loads((toy_build / "eval" / "LHRS-Bench.json").read_text())[:3]
    entries[1]["conversations"][-1]["value"] += ")"  # "B)": still the letter the harness reads
    entries[2]["conversations"][-1]["value"] = "Z"
    (root / "LHRS-Bench.json").write_text(json.dumps(entries))
    fails_with(capsys, ["data", "validate", str(root / "LHRS-Bench.json"), "--eval", "--no-progress"],
               "entry 2: answer 'Z' is not one of the options A, B, C, D")
    (root / "cls_AID.json").write_text("[]")
    fails_with(capsys, ["data", "validate", str(root / "cls_AID.json"), "--eval", "--no-progress"], "no entries")


@pytest.mark.parametrize("sets,expected", [
    (["instruct.questions_per_image=0"], "instruct.questions_per_image: 0 is not a count (a whole number >= 1)"),
    (["instruct.mix={FOO: 1.0}"], "instruct.mix: unknown tasks ['FOO']"),
    (["rl.mix={VQA: 0}"], "rl.mix: every weight is 0"),
])
def test_a_bad_data_config_is_refused_before_rendering(sets, expected, tmp_path, capsys):
    argv = ["data", "build", "--profile", "toy", "--out", str(tmp_path / "b"), "--no-progress"]
    fails_with(capsys, argv + [a for s in sets for a in ("--set", s)], expected)
    assert not (tmp_path / "b").exists()


def test_bad_recipes_and_settings_fail_on_the_dry_run(toy_build, toy_checkpoint, tmp_path, capsys):
    """What the real run would reject is rejected by --dry-run too, before a cluster job is queued."""
    from transformers.integrations import get_available_reporting_integrations

    no_train_file = tmp_path / "S.yaml"
    no_train_file.write_text("stage: S\nkind: sft\ninit: P\n")
    fails_with(capsys, ["train", "S", "--config", str(no_train_file), "--dry-run"], "missing recipe key(s) train_file")
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"\xff\xfe\x00stage")
    fails_with(capsys, ["train", "S", "--config", str(binary), "--dry-run"], "not UTF-8 text")
    fails_with(capsys, ["train", "base", "--dry-run"], "the toy base has no dry run")
    common = ["--dry-run", "--init", str(toy_checkpoint), "--set", f"data_dir={toy_build}"]
    fails_with(capsys, ["train", "S", *common, "--set", "lr_scheduler_type=bogus"], "SFTConfig field lr_scheduler_type: 'bogus' is not one of")
    fails_with(capsys, ["train", "R", *common, "--set", "judge=bogus"], "no section 'bogus'")
    absent = next(n for n in ("wandb", "comet_ml", "mlflow", "neptune") if n not in get_available_reporting_integrations())
    fails_with(capsys, ["train", "S", *common, "--set", f"report_to={absent}"], f"report_to: ['{absent}'] not installed")
    assert main(["train", "S", *common, "--set", "report_to=[all]"]) == 0  # whatever is installed


def test_an_out_folder_that_is_a_file_and_an_unreadable_run_record(toy_checkpoint, toy_build, tmp_path, capsys):
    afile = tmp_path / "afile"
    afile.write_text("")
    fails_with(capsys, ["eval", "--model", str(toy_checkpoint), "--data-root", str(toy_build / "eval"), "--benchmarks",
                        "AID", "--limit", "1", "--out", str(afile)], f"{afile} is a file; a folder is needed")
    run = tmp_path / "runs" / "S" / "20261201-000000-abcd"
    run.mkdir(parents=True)
    (run / "run.json").write_text("{}")
    (run / "complete.json").write_text("{bad")
    assert main(["runs", "--runs-root", str(tmp_path / "runs")]) == 0
    assert "finished (its complete.json is unreadable)" in capsys.readouterr().out
