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


def test_an_empty_balance_section_takes_the_defaults(fixtures_dir, tmp_path):
    vhm = tmp_path / "vhm.json"
    vhm.write_text(json.dumps(vhm_entries()))
    cfg = load_config("paper", "data", ["instruct.images=4", "rl.images=2", "balance=null"])
    report = build_from_vhm(vhm, fixtures_dir, tmp_path / "o", cfg, progress=False)  # crashed after reading all
    assert (report["balance"]["cap"], report["balance"]["target"]) == (5.0, "max")


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


def _eval_file(folder, name, entries):
    folder.mkdir(exist_ok=True)
    (folder / name).write_text(json.dumps(entries))
    return folder


def _vg(fixtures_dir, answer="[100, 50, 300, 200]", **extra):
    """A DIOR-RSVG entry on the real 712x557 DOTA tile (size is [height, width])."""
    return {"image": "P1888.png", "image_path": str(fixtures_dir / "dota"), **extra,
            "conversations": [{"from": "human", "value": "<image>\nthe plane"}, {"from": "gpt", "value": answer}]}


def test_a_failed_rebuild_leaves_the_earlier_build_whole(fixtures_dir, tmp_path, capsys):
    """Benchmarks and training files are all checked before the first write; a leftover pretrain.json of an
    earlier build is removed, not adopted; misnamed or missing benchmark folders and files are named."""
    vhm, out = tmp_path / "vhm.json", tmp_path / "out"
    vhm.write_text(json.dumps(vhm_entries()))
    pre = tmp_path / "pretrain.json"
    pre.write_text(json.dumps([make_entry(n, "real_images", "Describe this image.", "an aerial image") for n in IMAGES]))
    good = _eval_file(tmp_path / "good", "VG_DOIR_RSVG_test.json", [_vg(fixtures_dir, size=[557, 712])])
    cfg = load_config("paper", "data", ["instruct.images=4", "rl.images=2"])
    build_from_vhm(vhm, fixtures_dir, out, cfg, pretrain_json=pre, eval_root=good, progress=False)
    before = {p.name: p.read_bytes() for p in out.glob("*.json")}
    assert (out / "data_cards" / "paper-pretrain.md").exists()
    for problem, entry in [("needs 'size'", _vg(fixtures_dir)),
                           ("must be a pixel box", _vg(fixtures_dir, "on the right", size=[557, 712])),
                           (r"'size' \[712, 557\] is \[height, width\] = 712x557, but the image is 557x712",
                            _vg(fixtures_dir, size=[712, 557])),
                           ("'size' must be", _vg(fixtures_dir, size=[True, True]))]:
        bad = _eval_file(tmp_path / "bad", "VG_DOIR_RSVG_test.json", [entry])
        with pytest.raises(DataError, match=rf"VG_DOIR_RSVG_test.json: entry 0: .*{problem}"):
            build_from_vhm(vhm, fixtures_dir, out, load_config("paper", "data", ["instruct.images=5", "rl.images=2"]),
                           eval_root=bad, skip_invalid=True, progress=False)
    assert {p.name: p.read_bytes() for p in out.glob("*.json")} == before
    latin1 = tmp_path / "latin1.json"
    latin1.write_bytes(json.dumps(vhm_entries()).replace("church", "\u00e9glise").encode("latin-1"))
    with pytest.raises(DataError, match=r"latin1.json: not UTF-8 text \(byte 0xe9"):
        build_from_vhm(latin1, fixtures_dir, out, cfg, progress=False)
    with pytest.raises(DataError, match="nowhere: --eval-root is not a folder"):
        build_from_vhm(vhm, fixtures_dir, out, cfg, eval_root=tmp_path / "nowhere", progress=False)
    misnamed = _eval_file(tmp_path / "misnamed", "VG_DIOR_RSVG_test.json", [_vg(fixtures_dir, size=[557, 712])])
    with pytest.raises(DataError, match="holds none of the benchmark files"):
        build_from_vhm(vhm, fixtures_dir, out, cfg, eval_root=misnamed, progress=False)
    assert "did you mean VG_DOIR_RSVG_test.json?" in capsys.readouterr().out
    assert {p.name: p.read_bytes() for p in out.glob("*.json")} == before
    report = build_from_vhm(vhm, fixtures_dir, out, cfg, progress=False)  # now without --pretrain-json
    assert not (out / "pretrain.json").exists() and "pretrain.json" not in report["files"]
    assert not (out / "data_cards" / "paper-pretrain.md").exists()
    card = (out / "data_cards" / "paper-vhm-instruct.md").read_text()
    assert "license: other" in card and '{"image", "source_dataset", "conversations": [human, gpt]}' in card


def test_every_exchange_of_a_conversation_is_checked(fixtures_dir, tmp_path):
    """Training uses the last answer of a multi-turn entry, so each {VG} answer is checked, not the first only,
    and a conversation must end with an answer."""
    from tinyrs.data.vhm import read_training_file

    ok = make_entry("church_010.jpg", "real_images", "the church", "[[100, 120, 800, 900]]", "VG")
    second = {"from": "human", "value": "{VG} the road"}
    for turns, problem in [([second, {"from": "gpt", "value": "[[900, 10, 20, 30]]"}], "turn 3: box"),
                           ([second], "turns must alternate human, gpt, .* got human, gpt, human")]:
        path = tmp_path / "multi.json"
        path.write_text(json.dumps([ok, {**ok, "conversations": ok["conversations"] + turns}]))
        with pytest.raises(DataError, match=rf"multi.json: entry 1: {problem}"):
            read_training_file(path, fixtures_dir, progress=False)


def test_equal_file_names_in_two_sources_are_two_images(fixtures_dir, tmp_path, capsys):
    import shutil

    root = tmp_path / "root"
    for src in ("UCM", "AID"):
        for i, name in enumerate(IMAGES[:4]):
            (root / src).mkdir(parents=True, exist_ok=True)
            shutil.copy(fixtures_dir / "real_images" / name, root / src / f"{i:04d}.jpg")
    entries = [make_entry(f"{i:04d}.jpg", src, "Is there a road?", "yes", "VQA") for src in ("UCM", "AID") for i in range(4)]
    vhm = tmp_path / "vhm.json"
    vhm.write_text(json.dumps(entries + [entries[2]]))
    report = build_from_vhm(vhm, root, tmp_path / "out", load_config("paper", "data", ["instruct.images=5", "rl.images=3"]),
                            progress=False)
    assert report["disjointness"]["disjoint"]  # equal names, different files
    assert "5 distinct images" in (tmp_path / "out" / "data_cards" / "paper-vhm-instruct.md").read_text()
    assert report["duplicate_entries"] == 1 and "1 entries repeat an earlier entry exactly" in capsys.readouterr().out
    vhm.write_text(json.dumps([{**entries[0], "image": "."}]))
    with pytest.raises(DataError, match=r"entry 0: image path is a folder: .*UCM"):
        build_from_vhm(vhm, root, tmp_path / "out2", load_config("paper", "data"), progress=False)


def test_the_readme_names_every_benchmark_file_a_paper_build_reads():
    """A paper-profile user learns from the README what to name the benchmark files in --eval-root."""
    from tinyrs.evaluation.benchmarks import ALL_EVAL_FILES
    from tinyrs.paths import REPO_ROOT

    readme = (REPO_ROOT / "README.md").read_text()
    assert [f for f in ALL_EVAL_FILES if f"`{f}`" not in readme] == []
