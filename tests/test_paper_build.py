"""The paper profile: real VHM JSON + image folder (here: the real fixture images, read in place)."""
import json
from collections import Counter

import pytest

from tinyrs.cli import main
from tinyrs.config import load_config
from tinyrs.data.build import build_from_vhm
from tinyrs.data.hf import to_sft_dataset
from tinyrs.data.vhm import DataError, make_entry, read_json_list, task_of

IMAGES = ["baseball_diamond_009.jpg", "chaparral_007.jpg", "church_010.jpg", "parking_lot_010.jpg",
          "dota_P0004_patch_rgba.png", "rsvqa_lr_0.tif", "rsvqa_lr_1.tif"]


def vhm_entries():
    """VHM layout: image paths relative to <root>/<source_dataset>/."""
    out = []
    for i, name in enumerate(IMAGES):
        out.append(make_entry(name, "real_images", "Classify the image. Answer with one word or short phrase.",
                              name.split("_0")[0].replace("_", " "), "CLS"))
        out.append(make_entry(name, "real_images", "Is there a road?", "yes" if i % 2 else "no", "VQA"))
        if i < 2:
            out.append(make_entry(name, "real_images", "the large field", "[[100, 120, 800, 900]]", "VG"))
    return out


def test_paper_build_samples_disjoint_instruct_and_rl_from_real_images(fixtures_dir, tmp_path):
    vhm = tmp_path / "vhm.json"
    vhm.write_text(json.dumps(vhm_entries()))
    pre = tmp_path / "pretrain.json"
    pre.write_text(json.dumps([make_entry(n, "real_images", "Describe this image.", "an aerial image") for n in IMAGES]))
    eval_root = tmp_path / "eval"
    eval_root.mkdir()
    (eval_root / "cls_AID.json").write_text(json.dumps([
        {"image": "church_010.jpg", "image_path": str(fixtures_dir / "real_images"),
         "conversations": [{"from": "human", "value": "<image>\nClassify."}, {"from": "gpt", "value": "church"}]}]))
    cfg = load_config("paper", "data", ["instruct.images=4", "rl.images=2"])
    report = build_from_vhm(vhm, fixtures_dir, tmp_path / "out", cfg, pretrain_json=pre, eval_root=eval_root,
                            progress=False)
    out = tmp_path / "out"
    instruct, rl = read_json_list(out / "instruct.json"), read_json_list(out / "rl.json")
    assert len({e["image"] for e in instruct}) == 4 and len(rl) == 2
    assert not {e["image"] for e in instruct} & {e["image"] for e in rl}
    assert report["disjointness"]["rl_vs_instruct"]["shared_files"] == 0
    assert report["eval_files"] == {"cls_AID.json": 1}
    assert (out / "eval").resolve() == eval_root.resolve()  # where tinyrs ablations and eval look for them
    assert report["files"]["pretrain.json"] == len(IMAGES)
    balanced = Counter(task_of(e) for e in read_json_list(out / "instruct_balanced.json"))
    before = Counter(task_of(e) for e in instruct)
    assert all(1 <= balanced[t] / before[t] <= 5 for t in before)
    assert (out / "data_cards" / "paper-vhm-instruct.md").exists()
    # the written files feed TRL directly, images resolved under the recorded image root
    ds = to_sft_dataset(instruct, json.loads((out / "build.json").read_text())["image_root"])
    assert {r["images"][0].mode for r in ds} == {"RGB"}


def test_paper_build_stops_on_bad_input_or_skips_it(fixtures_dir, tmp_path):
    entries = vhm_entries()
    entries.insert(3, make_entry("not_there.jpg", "real_images", "q", "a", "VQA"))
    vhm = tmp_path / "vhm.json"
    vhm.write_text(json.dumps(entries))
    cfg = load_config("paper", "data", ["instruct.images=4", "rl.images=2"])
    with pytest.raises(DataError, match=r"vhm.json: entry 3: image not found: .*real_images/not_there.jpg"):
        build_from_vhm(vhm, fixtures_dir, tmp_path / "o1", cfg, progress=False)
    report = build_from_vhm(vhm, fixtures_dir, tmp_path / "o2", cfg, skip_invalid=True, progress=False)
    assert report["validation"][0]["skipped"] == {"missing image": 1}
    assert report["validation"][0]["valid"] == len(entries) - 1


def test_paper_build_from_the_command_line(fixtures_dir, tmp_path, capsys):
    vhm = tmp_path / "vhm.json"
    vhm.write_text(json.dumps(vhm_entries()))
    args = ["data", "build", "--profile", "paper", "--vhm-json", str(vhm), "--image-root", str(fixtures_dir),
            "--out", str(tmp_path / "o"), "--set", "instruct.images=5", "--set", "rl.images=2", "--no-progress"]
    assert main(args) == 0
    assert "instruct.json" in capsys.readouterr().out
    assert main(args[:-5] + ["--set", "instruct.images=9", "--set", "rl.images=2"]) == 2
    assert "7 distinct images, fewer than instruct 9 + rl 2" in capsys.readouterr().err


def test_too_few_images_is_a_clear_error(fixtures_dir, tmp_path):
    vhm = tmp_path / "vhm.json"
    vhm.write_text(json.dumps(vhm_entries()))
    cfg = load_config("paper", "data", ["instruct.images=6", "rl.images=2"])
    with pytest.raises(DataError, match="7 distinct images, fewer than instruct 6 \\+ rl 2"):
        build_from_vhm(vhm, fixtures_dir, tmp_path / "o", cfg, progress=False)
