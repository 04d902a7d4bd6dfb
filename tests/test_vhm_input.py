"""Bad input stops with an error naming the file, the entry index and the problem; --skip-invalid
skips such entries, counts them by kind, and keeps everything else."""
import json
import shutil

import pytest

from tinyrs.cli import main
from tinyrs.data.vhm import (BOX_OUTSIDE, CORRUPT_IMAGE, EMPTY, MISSING_IMAGE, SCHEMA, DataError, make_entry,
                             read_eval_file, read_training_file)


@pytest.fixture()
def vhm_dir(tmp_path, fixtures_dir):
    """A VHM-style folder: images under <root>/<source_dataset>/ (real fixture images, copied to tmp)."""
    root = tmp_path / "images"
    (root / "UCM").mkdir(parents=True)
    for n in ["church_010.jpg", "parking_lot_010.jpg"]:
        shutil.copy(fixtures_dir / "real_images" / n, root / "UCM" / n)
    (root / "UCM" / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0not really a jpeg")
    return tmp_path


def good(image="church_010.jpg", task="CLS", answer="church"):
    return make_entry(image, "UCM", "What is this?", answer, task)


CASES = [
    (lambda: good(image="missing.jpg"), MISSING_IMAGE, r"entry 1: image not found: .*UCM/missing.jpg"),
    (lambda: good(image="corrupt.jpg"), CORRUPT_IMAGE, r"entry 1: cannot read image .*corrupt.jpg"),
    (lambda: {"image": "church_010.jpg", "source_dataset": "UCM"}, SCHEMA, r"entry 1: missing 'conversations'"),
    (lambda: {"image": "church_010.jpg", "source_dataset": "UCM",
              "conversations": [{"from": "bot", "value": "x"}]}, SCHEMA, r"entry 1: turn 0 must be"),
    (lambda: "just a string", SCHEMA, r"entry 1: an entry must be an object"),
    (lambda: good(task="VG", answer="[[10, 20, 1200, 50]]"), BOX_OUTSIDE, r"entry 1: box \[10, 20, 1200, 50\]"),
    (lambda: good(task="VG", answer="[[500, 20, 100, 50]]"), BOX_OUTSIDE, r"entry 1: box .* x1 < x2"),
    (lambda: good(image="../../eval/cls_AID/x.jpg"), SCHEMA, r"entry 1: image '../../eval/cls_AID/x.jpg' leaves the"),
    (lambda: {**good(), "image": "/etc/passwd"}, SCHEMA, r"entry 1: image '/etc/passwd' leaves the image folder"),
    (lambda: {**good(), "conversations": []}, EMPTY, r"entry 1: 'conversations' is empty"),
    (lambda: {**good(), "conversations": [{"from": "human", "value": "<image>\nq"}, {"from": "gpt", "value": " "}]},
     EMPTY, r"entry 1: a turn has an empty value"),
]


@pytest.mark.parametrize("make_bad,kind,message", CASES)
def test_each_bad_input_stops_with_file_index_and_problem(vhm_dir, make_bad, kind, message):
    path = vhm_dir / "vhm.json"
    path.write_text(json.dumps([good(), make_bad(), good("parking_lot_010.jpg")]))
    with pytest.raises(DataError, match=message) as err:
        read_training_file(path, vhm_dir / "images", progress=False)
    assert err.value.index == 1 and err.value.kind == kind and str(path) in str(err.value)


def test_skip_invalid_counts_each_kind_and_keeps_the_rest(vhm_dir):
    entries = [good()] + [make() for make, _, _ in CASES] + [good("parking_lot_010.jpg")]
    path = vhm_dir / "vhm.json"
    path.write_text(json.dumps(entries))
    valid, rep = read_training_file(path, vhm_dir / "images", skip_invalid=True, progress=False)
    assert [e["image"] for e in valid] == ["church_010.jpg", "parking_lot_010.jpg"]
    expected = {}
    for _, kind, _ in CASES:
        expected[kind] = expected.get(kind, 0) + 1
    assert dict(rep.skipped) == expected
    assert "missing.jpg" in rep.examples[MISSING_IMAGE]


def test_not_a_list_and_not_json(tmp_path):
    p = tmp_path / "x.json"
    p.write_text('{"data": []}')
    with pytest.raises(DataError, match="top level must be a JSON list"):
        read_training_file(p, tmp_path, progress=False)
    p.write_text("[{")
    with pytest.raises(DataError, match="not valid JSON"):
        read_training_file(p, tmp_path, progress=False)


def test_eval_box_outside_the_image_and_bad_size(tmp_path, fixtures_dir):
    """Evaluation ground truth is in pixels; DOTA's P1888 is 712 x 557 (not square)."""
    (tmp_path / "VG_x").mkdir()
    shutil.copy(fixtures_dir / "dota" / "P1888.png", tmp_path / "VG_x" / "P1888.png")
    ok = {"image": "P1888.png", "size": [557, 712],
          "conversations": [{"from": "human", "value": "<image>\nthe small vehicle"},
                            {"from": "gpt", "value": "[674, 375, 684, 395]"}]}
    outside = json.loads(json.dumps(ok))
    outside["conversations"][1]["value"] = "[674, 375, 720, 395]"  # x2 beyond the 712 px width
    p = tmp_path / "VG_x.json"
    p.write_text(json.dumps([ok, outside]))
    with pytest.raises(DataError, match=r"entry 1: box .* not inside the 712x557 image"):
        read_eval_file(p, check_images="exists", progress=False)
    bad_size = dict(ok, size=[557])
    p.write_text(json.dumps([bad_size]))
    with pytest.raises(DataError, match=r"entry 0: 'size' must be \[height, width\]"):
        read_eval_file(p, progress=False)


def test_cli_reports_bad_input_in_one_line(vhm_dir, capsys):
    path = vhm_dir / "vhm.json"
    path.write_text(json.dumps([good(), good(image="missing.jpg")]))
    assert main(["data", "validate", str(path), "--image-root", str(vhm_dir / "images"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "entry 1" in err and "missing.jpg" in err and "Traceback" not in err
    assert main(["data", "validate", str(path), "--image-root", str(vhm_dir / "images"), "--skip-invalid",
                 "--no-progress"]) == 0
    assert "1/2 entries valid; skipped 1 missing image" in capsys.readouterr().out


def test_build_side_files_name_the_bad_line(tmp_path):
    """A build's question metadata picks each RL sample's reward: a broken or mistyped row is named, not
    read as something else (an unknown answer type would be scored as closed)."""
    from tinyrs.data.hf import read_qa_meta

    assert read_qa_meta(tmp_path) is None  # real VHM data has none
    good_row = {"id": "a", "answer_type": "grounding"}
    for body, problem in [(json.dumps(good_row) + '\n{"id": "b", "answ\n', "qa_meta.jsonl: line 2: not JSON"),
                          (json.dumps({"id": "b", "answer_type": "closd"}) + "\n",
                           "row 1 \\(id 'b'\\): answer_type 'closd' is not one of closed, grounding, open"),
                          (json.dumps({"answer_type": "open"}) + "\n", "row 1: no id")]:
        (tmp_path / "qa_meta.jsonl").write_text(body)
        with pytest.raises(DataError, match=problem):
            read_qa_meta(tmp_path)
    (tmp_path / "qa_meta.jsonl").write_text(json.dumps(good_row) + "\n")
    assert read_qa_meta(tmp_path) == {"a": good_row}
