"""tinyrs eval / rescore end to end on a tiny saved checkpoint and the toy benchmarks: predictions
saved as they come, both scoring modes, resume without re-generating, rescoring without the model."""
import json
import subprocess
import sys

import pytest

import tinyrs.evaluation.harness as harness
from tinyrs.evaluation.harness import evaluate, rescore, select_benchmarks

BENCHES = ["AID", "DIOR-RSVG", "LHRS-Bench"]


def test_benchmark_selection():
    assert [b.name for b in select_benchmarks(["cls"])] == ["AID", "METER-ML", "NWPU", "SIRI-WHU", "WHU-RS19"]
    assert len(select_benchmarks(["all"])) == 12
    assert [b.name for b in select_benchmarks(["vg", "DIOR-RSVG", "cls_AID.json"])] == ["DIOR-RSVG", "AID"]
    with pytest.raises(ValueError, match="unknown benchmark 'UCM'"):
        select_benchmarks(["UCM"])


def test_eval_saves_scores_resumes_and_rescores(toy_checkpoint, toy_build, tmp_path, monkeypatch):
    out = tmp_path / "eval"
    r = evaluate(toy_checkpoint, toy_build / "eval", out, BENCHES, max_new_tokens=6, batch_size=4, limit=5,
                 progress=False)
    saved = json.loads((out / "scores.json").read_text())
    assert set(saved["benchmarks"]) == {"cls_AID.json", "VG_DOIR_RSVG_test.json", "LHRS-Bench.json"}
    for f, s in saved["benchmarks"].items():
        assert set(s) == {"strict", "compat"} and s["strict"]["n"] == 5 and s["strict"]["counted"] == 5
    assert "by_size" in saved["benchmarks"]["VG_DOIR_RSVG_test.json"]["strict"]
    assert "by_type" in saved["benchmarks"]["LHRS-Bench.json"]["strict"]
    rows = [json.loads(x) for x in (out / "predictions" / "cls_AID.jsonl").read_text().splitlines()]
    assert [x["index"] for x in rows] == [0, 1, 2, 3, 4] and all("prediction" in x for x in rows)
    assert all("size" in json.loads(x) for x in (out / "predictions" / "VG_DOIR_RSVG_test.jsonl").read_text().splitlines())

    # interrupt: drop two finished answers and leave a torn line, then run again
    p = out / "predictions" / "cls_AID.jsonl"
    p.write_text("\n".join(p.read_text().splitlines()[:3]) + '\n{"index": 3, "pred')
    asked = []
    real = harness.generate
    monkeypatch.setattr(harness, "generate", lambda m, pr, prompts, *a, **k: asked.append(len(prompts)) or
                        real(m, pr, prompts, *a, **k))
    again = evaluate(toy_checkpoint, toy_build / "eval", out, BENCHES, max_new_tokens=6, batch_size=4, limit=5,
                     progress=False)
    assert asked == [2]  # only the two missing AID answers were generated
    assert again["benchmarks"] == r["benchmarks"]  # greedy: the same answers, the same scores

    # rescore from the predictions alone (library and CLI)
    assert rescore(out) == {k: r[k] for k in ("benchmarks", "averages")}
    cli = subprocess.run([sys.executable, "-m", "tinyrs.cli", "rescore", "--predictions", str(out), "--mode", "compat",
                          "--out", str(tmp_path / "compat.json")], capture_output=True, text=True, check=True)
    assert "DIOR-RSVG" in cli.stdout and "avg CLS" in cli.stdout
    compat = json.loads((tmp_path / "compat.json").read_text())
    assert compat["benchmarks"]["cls_AID.json"] == {"compat": r["benchmarks"]["cls_AID.json"]["compat"]}


def test_eval_names_missing_files(toy_checkpoint, tmp_path):
    with pytest.raises(FileNotFoundError, match="no cls_AID.json"):
        evaluate(toy_checkpoint, tmp_path, tmp_path / "out", ["AID"], progress=False)
