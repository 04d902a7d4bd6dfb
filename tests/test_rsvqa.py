"""The RSVQA converter on the real RSVQA-LR question records in ../shared/fixtures/rsvqa_lr/."""
import json
import re
import subprocess
import sys

import pytest

from tinyrs.data.vhm import read_eval_file, resolve_eval_image
from tinyrs.evaluation.benchmarks import BY_FILE
from tinyrs.evaluation.rsvqa import convert_rsvqa


def rsvqa_images(fixtures_dir, folder, names):
    """An RSVQA image folder for the fixture records: each name a link to one real RSVQA-LR image (the
    fixtures hold two of the images; the converter only checks that each record's image is there)."""
    folder.mkdir()
    for name in set(map(str, names)):
        (folder / name).symlink_to(fixtures_dir / "real_images" / "rsvqa_lr_0.tif")
    return folder


def test_real_rsvqa_lr_records_become_table_one_files(fixtures_dir, tmp_path):
    records = fixtures_dir / "rsvqa_lr" / "test_qa_first300.json"
    raw = json.loads(records.read_text())
    images = rsvqa_images(fixtures_dir, tmp_path / "images", [r["image"] for r in raw])
    report = convert_rsvqa(records, images, tmp_path, "LR")
    want = {t: sum(r["type"] == t for r in raw) for t in ("comp", "presence", "rural_urban")}
    assert report["written"] == {f"RSVQA_LR-{t}_RSVQA.json": n for t, n in want.items()}
    assert report["skipped_types"] == {"count": sum(r["type"] == "count" for r in raw)}
    for name in report["written"]:
        assert name in BY_FILE  # the names the registry (and the released harness) expects
        entries, rep = read_eval_file(tmp_path / name, check_images="none", progress=False)
        assert rep.valid == rep.total == len(entries) == report["written"][name]
        e = entries[0]
        src = next(r for r in raw if r["question_id"] == e["question_id"])
        assert e["conversations"][0]["value"] == f"<image>\n{src['question']}"
        assert e["conversations"][1]["value"] == src["answer"]
        assert resolve_eval_image(e, tmp_path / name) == images.resolve() / src["image"]


def test_a_broken_record_names_file_and_entry(fixtures_dir, tmp_path):
    raw = json.loads((fixtures_dir / "rsvqa_lr" / "test_qa_first300.json").read_text())[:5]
    del raw[3]["answer"]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(raw))
    with pytest.raises(ValueError, match=r"bad.json: entry 3: missing answer"):
        convert_rsvqa(bad, tmp_path, tmp_path / "out")
    assert not (tmp_path / "out").exists()  # nothing half-written
    for key, value, problem in [("type", ["presence"], "'type' must be str, not list"),
                                ("answer", ["yes"], "'answer' must be str or int or float or bool, not list"),
                                ("question", "   ", "a blank question")]:
        broken = [dict(r) for r in raw[:3]] + [{**raw[4], key: value}]
        bad.write_text(json.dumps(broken))
        with pytest.raises(ValueError, match=rf"bad.json: entry 3: {re.escape(problem)}"):
            convert_rsvqa(bad, tmp_path, tmp_path / "out")
    # RSVQA's numbered images: 232 is 232.tif; an image that is not there is named with its entry
    images = rsvqa_images(fixtures_dir, tmp_path / "images", ["232.tif"])
    numbered = [{**raw[0], "image": 232}, {**raw[1], "image": 233}]
    bad.write_text(json.dumps(numbered[:1]))
    convert_rsvqa(bad, images, tmp_path / "ok")
    assert json.loads((tmp_path / "ok" / "RSVQA_LR-rural_urban_RSVQA.json").read_text())[0]["image"] == "232.tif"
    bad.write_text(json.dumps(numbered))
    with pytest.raises(ValueError, match=r"bad.json: entry 1: image 233 is not in .*images \(looked for 233, 233.tif"):
        convert_rsvqa(bad, images, tmp_path / "out")
    with pytest.raises(ValueError, match="nowhere: the RSVQA image folder does not exist"):
        convert_rsvqa(fixtures_dir / "rsvqa_lr" / "test_qa_first300.json", tmp_path / "nowhere", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_cli_converts_with_a_limit(fixtures_dir, tmp_path):
    records = fixtures_dir / "rsvqa_lr" / "test_qa_first300.json"
    images = rsvqa_images(fixtures_dir, tmp_path / "images", [r["image"] for r in json.loads(records.read_text())])
    out = subprocess.run([sys.executable, "-m", "tinyrs.cli", "data", "rsvqa", "--records",
                          str(records), "--images", str(images), "--out", str(tmp_path), "--limit-per-type", "3"],
                         capture_output=True, text=True, check=True).stdout
    assert "RSVQA_LR-presence_RSVQA.json: 3 questions" in out and "skipped" in out
    assert len(json.loads((tmp_path / "RSVQA_LR-comp_RSVQA.json").read_text())) == 3
