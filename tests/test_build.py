"""The toy data build: real formats, the independent check, balancing, disjointness, determinism."""
import hashlib
import json
import os
import subprocess
import sys
from collections import Counter

import pytest
import yaml

from conftest import small_build_config
from tinyrs.config import load_config
from tinyrs.data.balance import balance, balance_factors
from tinyrs.data.build import build_toy, image_root_of
from tinyrs.data.inspect import verify_disjoint
from tinyrs.data.vhm import DataError, read_eval_file, read_json_list, read_training_file, resolve_train_image, task_of
from tinyrs.evaluation.benchmarks import EVAL_FILES
from tinyrs.paths import SHARED


def test_shared_check_passes(toy_build):
    r = subprocess.run([sys.executable, str(SHARED / "checks" / "check_build.py"), str(toy_build)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.startswith("ok:")


def test_files_read_back_with_the_real_readers(toy_build):
    for name in ["pretrain.json", "instruct.json", "instruct_balanced.json", "rl.json"]:
        entries, rep = read_training_file(toy_build / name, toy_build / "images", progress=False)
        assert rep.valid == rep.total > 0
        assert all(e["conversations"][0]["value"].startswith("<image>\n") for e in entries)
    for f in EVAL_FILES:
        entries, rep = read_eval_file(toy_build / "eval" / f, check_images="decode", progress=False)
        assert rep.valid == rep.total >= 20
        assert not any(e["conversations"][0]["value"].split("\n", 1)[1].startswith("{") for e in entries), \
            "evaluation questions carry no task tag (the harness adds it)"


def test_eval_formats_match_the_released_harness(toy_build):
    vg = read_json_list(toy_build / "eval" / "VG_DOIR_RSVG_test.json")
    for e in vg:
        h, w = e["size"]
        box = json.loads(e["conversations"][1]["value"])
        assert len(box) == 4 and 0 <= box[0] < box[2] <= w and 0 <= box[1] < box[3] <= h
    lhrs = read_json_list(toy_build / "eval" / "LHRS-Bench.json")
    assert {t for e in lhrs for t in e["type"]} == {str(i) for i in range(1, 12)}
    assert all(e["conversations"][1]["value"] in {"A", "B", "C", "D"} for e in lhrs)
    cls = read_json_list(toy_build / "eval" / "cls_AID.json")
    assert all(e["conversations"][0]["value"].endswith("Answer with one word or short phrase.") for e in cls)
    offered = cls[0]["conversations"][0]["value"]
    assert "port" in offered and "harbor" not in offered  # AID names the class its own way


def test_classification_sets_differ_in_classes_and_resolution(toy_build):
    from PIL import Image

    sizes, answers = {}, {}
    for f in [f for f in EVAL_FILES if f.startswith("cls_")]:
        entries = read_json_list(toy_build / "eval" / f)
        sizes[f] = Image.open(toy_build / "eval" / f[:-5] / entries[0]["image"]).size
        answers[f] = entries[0]["conversations"][0]["value"]
    assert len(set(sizes.values())) == 5
    assert len(set(answers.values())) == 5


def test_rl_is_disjoint_from_instruct_checked_from_files(toy_build):
    report = verify_disjoint(toy_build)
    assert report["disjoint"], report
    assert report["images"]["train"] > 0 and report["images"]["eval"] > 0


def test_disjointness_check_can_fail(toy_build, tmp_path):
    """The check is real: an instruct entry copied into rl, an evaluation image trained on, or an instruct image's
    bytes under another name each make it fail."""
    import shutil

    for name in ["instruct.json", "rl.json", "pretrain.json"]:
        shutil.copy(toy_build / name, tmp_path / name)
    (tmp_path / "images").symlink_to(toy_build / "images")
    (tmp_path / "eval").symlink_to(toy_build / "eval")
    rl = read_json_list(tmp_path / "rl.json")
    (tmp_path / "rl.json").write_text(json.dumps(rl + read_json_list(tmp_path / "instruct.json")[:1]))
    report = verify_disjoint(tmp_path)
    assert not report["disjoint"] and report["rl_vs_instruct"]["shared_files"] == 1
    # a training entry on an evaluation image (a leak), and a byte copy of an instruct image under another name
    eval_image = toy_build / "eval" / "cls_AID" / read_json_list(toy_build / "eval" / "cls_AID.json")[0]["image"]
    first = read_json_list(tmp_path / "instruct.json")[0]
    shutil.copy(resolve_train_image(first, toy_build / "images"), tmp_path / "copy.jpg")
    for image, broken, what in ((eval_image, "train_vs_eval", "shared_files"),
                                (tmp_path / "copy.jpg", "rl_vs_instruct", "shared_content")):
        (tmp_path / "rl.json").write_text(json.dumps(rl + [{**first, "image": str(image)}]))
        report = verify_disjoint(tmp_path)
        assert not report["disjoint"] and report[broken][what] == 1, (image, report)


def test_balancing_respects_the_cap_and_reports(toy_build):
    build = json.loads((toy_build / "build.json").read_text())
    before = Counter(task_of(e) for e in read_json_list(toy_build / "instruct.json"))
    after = Counter(task_of(e) for e in read_json_list(toy_build / "instruct_balanced.json"))
    assert set(before) == {"CLS", "VQA", "VG", "IDK", "IT"}
    for row in build["balance"]["tasks"]:
        assert before[row["task"]] == row["before"] and after[row["task"]] == row["after"]
        assert 1.0 <= after[row["task"]] / before[row["task"]] <= 5.0
    factors = {r["task"]: r["factor"] for r in build["balance"]["tasks"]}
    assert max(factors, key=factors.get) == min(before, key=before.get) == "CLS"  # the rarest is replicated most
    assert factors["VQA"] == 1.0  # the largest task is never downsampled or replicated


@pytest.mark.parametrize("cap", [1.0, 2.5, 5.0, 10.0])
def test_balance_cap_is_a_hard_limit(cap):
    entries = [{"conversations": [{"from": "human", "value": f"<image>\n{{{t}}} q"}, {"from": "gpt", "value": "a"}]}
               for t, n in [("VQA", 300), ("CLS", 7), ("VG", 60)] for _ in range(n)]
    out, report = balance(entries, cap=cap, seed=1)
    counts = Counter(task_of(e) for e in out)
    assert counts["VQA"] == 300
    assert counts["CLS"] == int(7 * min(cap, 300 / 7))
    assert counts["VG"] == int(60 * min(cap, 5.0))
    assert all(r["factor"] <= cap + 1e-9 for r in report)
    assert balance_factors({"A": 10, "B": 100}, cap=5, target="median") == {"A": 5.0, "B": 1.0}
    with pytest.raises(ValueError):
        balance_factors({"A": 1}, cap=0.5)


def _digest(folder):
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file() and p.name != "build.json":
            h.update(str(p.relative_to(folder)).encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def test_build_is_deterministic(tmp_path):
    cfg = small_build_config(seed=3, extra=["pretrain.images=20", "instruct.entries=60", "rl.entries=20"])
    for spec in cfg["eval"].values():
        spec["n"] = 11
    build_toy(cfg, tmp_path / "a", workers=2, progress=False)
    build_toy(cfg, tmp_path / "b", workers=1, progress=False)  # worker count must not matter
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    (tmp_path / "b" / "build.json").unlink()  # as a rebuild leaves it when interrupted (build.json goes first)
    with pytest.raises(DataError, match="without its build.json, which is written last: the build was interrupted"):
        image_root_of(tmp_path / "b")  # training, probes and think read images through it


def test_ctrl_c_stops_a_build_with_one_message(tmp_path):
    import signal
    import time

    # Ctrl-C's default handler even where this test runs in a background job, whose children inherit SIGINT ignored
    proc = subprocess.Popen([sys.executable, "-m", "tinyrs.cli", "data", "build", "--profile", "toy", "--out",
                             str(tmp_path / "b"), "--workers", "2", "--no-progress"], stderr=subprocess.PIPE, text=True,
                            start_new_session=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 120
    while not list((tmp_path / "b").glob("images/*/*")) and time.time() < deadline:  # the workers are rendering
        time.sleep(0.2)
    time.sleep(1)
    os.killpg(proc.pid, signal.SIGINT)  # as Ctrl-C in a terminal: to the main process and its workers
    err = proc.communicate(timeout=60)[1]
    assert proc.returncode != 0 and "interrupted" in err, err
    assert "Traceback" not in err and "ForkPoolWorker" not in err, err  # was a traceback from each worker


def test_data_cards_are_huggingface_cards_built_from_the_data(toy_build):
    cards = sorted((toy_build / "data_cards").glob("*.md"))
    assert {c.name for c in cards} == {"toy-vhm-instruct.md", "toy-vhm-rl.md", "toy-pretrain.md",
                                       "toy-benchmarks.md"}
    n_instruct = len(read_json_list(toy_build / "instruct.json"))
    for c in cards:
        text = c.read_text()
        head = yaml.safe_load(text.split("---")[1])
        assert {"pretty_name", "license", "task_categories", "configs"} <= set(head)
        for section in ["## Dataset structure", "## Dataset creation", "## Intended use", "## Limitations"]:
            assert section in text, (c.name, section)
    assert f"a JSON list of {n_instruct} entries" in (toy_build / "data_cards" / "toy-vhm-instruct.md").read_text()


def test_a_build_with_another_seed_finds_scenes_for_every_question(tmp_path):
    """With seed 1, LHRS-Bench image 79 asks for an orientation question, which few toy scenes support (a runway,
    a river, a ship or plane of its own kind): 12 scene draws in a row had failed and stopped the build."""
    cfg = load_config("toy", "data", ["seed=1", "pretrain.images=20", "instruct.entries=200", "rl.entries=20"])
    report = build_toy(cfg, tmp_path / "b", progress=False)
    lhrs = json.loads((tmp_path / "b" / "eval" / "LHRS-Bench.json").read_text())
    assert report["disjointness"]["disjoint"] and len(lhrs) == cfg["eval"]["LHRS-Bench.json"]["n"]
