"""tinyrs eval / rescore end to end on a tiny saved checkpoint and the toy benchmarks: predictions
saved as they come, both scoring modes, resume without re-generating, rescoring without the model."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tinyrs.evaluation.generate import TransformersEngine
from tinyrs.evaluation.harness import evaluate, rescore, select_benchmarks

BENCHES = ["AID", "DIOR-RSVG", "LHRS-Bench"]


def test_benchmark_selection():
    assert [b.name for b in select_benchmarks(["cls"])] == ["AID", "METER-ML", "NWPU", "SIRI-WHU", "WHU-RS19"]
    assert len(select_benchmarks(["all"])) == 12  # Table I's; open-ended QA only when asked for
    assert [b.name for b in select_benchmarks(["open"])] == ["Open-ended"]
    assert [b.name for b in select_benchmarks(["vg", "DIOR-RSVG", "cls_AID.json"])] == ["DIOR-RSVG", "AID"]
    with pytest.raises(ValueError, match="unknown benchmark 'UCM'"):
        select_benchmarks(["UCM"])
    from tinyrs.bench import eval_throughput

    with pytest.raises(ValueError, match="'UCM': not a Table I benchmark"):  # was a KeyError traceback
        eval_throughput("no/checkpoint", "no-data", "UCM")


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
    lhrs = (out / "predictions" / "LHRS-Bench.jsonl").read_text()
    (out / "predictions" / "LHRS-Bench.jsonl").unlink()  # not started
    (out / "scores.json").unlink()  # written at the end only (a run into the folder removes it first)
    partial = rescore(out)
    assert partial["benchmarks"]["cls_AID.json"]["strict"]["n"] == 3
    assert "did not finish" in partial["unfinished"] and "not started LHRS-Bench.json" in partial["unfinished"]
    cli = subprocess.run([sys.executable, "-m", "tinyrs.cli", "rescore", "--predictions", str(out)],
                         capture_output=True, text=True, check=True)
    assert "warning: the last tinyrs eval" in cli.stderr  # the table of a part is not shown as the whole
    (out / "predictions" / "LHRS-Bench.jsonl").write_text(lhrs)
    asked = []
    real = TransformersEngine.generate
    monkeypatch.setattr(TransformersEngine, "generate", lambda self, prompts, *a, **k: asked.append(len(prompts)) or
                        real(self, prompts, *a, **k))
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
    # a shorter run into the same folder: rescore scores the questions it scored, not every answer kept there
    fewer = evaluate(toy_checkpoint, toy_build / "eval", out, BENCHES, max_new_tokens=6, batch_size=4, limit=3,
                     progress=False)
    assert fewer["benchmarks"]["cls_AID.json"]["strict"]["n"] == 3
    assert rescore(out) == {k: fewer[k] for k in ("benchmarks", "averages")}


def test_rescore_names_a_line_that_is_not_a_prediction(tmp_path):
    pred = tmp_path / "predictions"
    pred.mkdir()
    row = {"index": 0, "question": "<image>\nclass?", "answer": "forest", "prediction": "forest"}
    p = pred / "cls_AID.jsonl"
    p.write_text(json.dumps(row) + '\n{"index": 1, "quest')  # a run killed mid-write: the torn line is ignored
    r = rescore(tmp_path)
    scored = r["benchmarks"]["cls_AID.json"]["strict"]
    assert {k: scored[k] for k in ("score", "n", "counted", "commonest_answer", "outcomes")} == \
        {"score": 1.0, "n": 1, "counted": 1, "commonest_answer": 1.0, "outcomes": "1"}
    assert "the last line of cls_AID.jsonl was cut off mid-write and is not scored" in r["torn"]  # and it is said
    two = json.dumps(row) + "\n" + json.dumps({**row, "index": 1})  # whole rows, the last without its newline
    p.write_text(two)
    r = rescore(tmp_path)
    assert r["benchmarks"]["cls_AID.json"]["strict"]["n"] == 2 and "torn" not in r  # a row, not a torn line
    from tinyrs.evaluation.harness import _prediction_rows

    assert sorted(_prediction_rows(p, cut_torn_tail=True)) == [0, 1] and p.read_text() == two + "\n"  # terminated
    for body, problem in [('{"index": 1, "quest\n' + json.dumps(row) + "\n", "line 1: not JSON"),
                          (json.dumps(row) + '\n{"index": 1, "answer": "x"}\n', r"line 2: .*lacks question, prediction"),
                          (json.dumps({**row, "index": "0"}) + "\n", "line 1: .*index '0' is not a whole number"),
                          (json.dumps({**row, "index": -5}) + "\n", "line 1: .*index -5 is not a whole number >= 0"),
                          ("[1, 2]\n", "line 1: .*lacks index"),
                          (json.dumps({**row, "prediction": 5}) + "\n", "line 1: .*prediction 5: not text")]:
        p.write_text(body)
        with pytest.raises(ValueError, match=problem):  # not scored as if the line were not there
            rescore(tmp_path)
    cli = subprocess.run([sys.executable, "-m", "tinyrs.cli", "rescore", "--predictions", str(tmp_path)],
                         capture_output=True, text=True)
    assert cli.returncode == 2 and cli.stderr.startswith(f"error: {p}: line 1:") and "Traceback" not in cli.stderr
    p.unlink()
    vg = {"index": 0, "question": "<image>\n{VG} the ship", "answer": "[1, 2, 30, 40]", "prediction": "[[0, 0, 500, 500]]"}
    for size in ("160x160", [160], [160, 0], None):  # a grounding row's box is scaled by its image's [h, w]
        (pred / "VG_DOIR_RSVG_test.jsonl").write_text(json.dumps({**vg, "size": size}) + "\n")
        with pytest.raises(ValueError, match=r"line 1: size .* is not the image's \[h, w\] in pixels"):
            rescore(tmp_path)


def test_eval_asks_a_qwen2vl_instruct_model_the_released_way_and_records_it(toy_checkpoint, toy_build, tmp_path,
                                                                          monkeypatch):
    asked = []
    real = TransformersEngine.generate
    monkeypatch.setattr(TransformersEngine, "generate", lambda self, prompts, *a, **k: asked.extend(prompts) or
                        real(self, prompts, *a, **k))
    out = tmp_path / "instruct"
    r = evaluate(toy_checkpoint, toy_build / "eval", out, ["AID", "DIOR-RSVG"], max_new_tokens=4, batch_size=2,
                 limit=2, progress=False, ask="qwen2vl-instruct")
    texts = [p[-1]["content"][1]["text"] for p in asked]
    assert not any(t.startswith("{") for t in texts)  # no task tags
    assert sum(t.startswith("Make your chain of thought reasoning") and "<|object_ref_end|>" in t for t in texts) == 2
    assert r["ask"] == json.loads((out / "eval.json").read_text())["ask"] == "qwen2vl-instruct"
    assert rescore(out) == {k: r[k] for k in ("benchmarks", "averages")}  # rescored the way it was asked
    with pytest.raises(ValueError, match="ask: 'qwen2vl-instruct' there, 'tinyrs' now"):
        evaluate(toy_checkpoint, toy_build / "eval", out, ["AID"], limit=2, progress=False)  # auto: a tinyrs run


def test_eval_names_missing_files(toy_checkpoint, tmp_path):
    with pytest.raises(FileNotFoundError, match="no cls_AID.json"):
        evaluate(toy_checkpoint, tmp_path, tmp_path / "out", ["AID"], progress=False)


def test_eval_checks_every_file_before_the_model_answers(toy_checkpoint, toy_build, tmp_path, monkeypatch):
    """A bad entry in the last benchmark is found before the first is answered, not hours into a run."""
    from tinyrs.evaluation import generate

    data = tmp_path / "eval"
    data.mkdir()
    for stem in ("cls_AID", "VG_DOIR_RSVG_test"):
        (data / stem).symlink_to(toy_build / "eval" / stem)
        entries = json.loads((toy_build / "eval" / f"{stem}.json").read_text())[:4]
        if stem.startswith("VG"):
            entries[3]["conversations"][1]["value"] = "[1, 73, 28]"
        (data / f"{stem}.json").write_text(json.dumps(entries))
    monkeypatch.setattr(generate, "load_engine", lambda *a, **k: pytest.fail("the model was loaded"))
    with pytest.raises(ValueError, match="VG_DOIR_RSVG_test.json: entry 3: a grounding answer must be a pixel box"):
        evaluate(toy_checkpoint, data, tmp_path / "out", ["AID", "DIOR-RSVG"], progress=False)
    assert not (tmp_path / "out" / "predictions").exists()


def test_eval_record_without_predictions_is_replaced_and_saved_rows_are_checked(toy_checkpoint, toy_build, tmp_path,
                                                                               monkeypatch):
    """A folder whose run stopped before its first answer takes a run with other settings; one with answers does
    not. A saved grounding row whose image size is unusable is named by its line before any answering resumes."""
    from tinyrs.evaluation import generate
    from tinyrs.evaluation.harness import _check_record

    out = tmp_path / "out"
    (out / "predictions").mkdir(parents=True)
    (out / "eval.json").write_text(json.dumps({"model": "other", "model_sha256": "0" * 64, "think": None}))
    record = {"model": "this", "model_sha256": "1" * 64, "think": None}
    _check_record(out, record, overwrite=False)  # nothing saved: the record is replaced
    assert json.loads((out / "eval.json").read_text())["model"] == "this"
    (out / "predictions").mkdir(exist_ok=True)
    (out / "predictions" / "cls_AID.jsonl").write_text("")
    with pytest.raises(ValueError, match="other settings"):
        _check_record(out, {**record, "model_sha256": "2" * 64}, overwrite=False)

    class NoEngine:
        name = "none"

    monkeypatch.setattr(generate, "load_engine", lambda *a, **k: NoEngine())
    resumed = tmp_path / "resumed"
    row = {"index": 0, "question": "q", "answer": "[1, 2, 30, 40]", "prediction": "[[0, 0, 500, 500]]", "size": [160]}
    (resumed / "predictions").mkdir(parents=True)
    (resumed / "predictions" / "VG_DOIR_RSVG_test.jsonl").write_text(json.dumps(row) + "\n")
    with pytest.raises(ValueError, match=r"VG_DOIR_RSVG_test.jsonl: line 1: size \[160\] is not the image's"):
        evaluate(toy_checkpoint, toy_build / "eval", resumed, ["DIOR-RSVG"], limit=2, progress=False)


def test_predictions_of_another_model_are_never_mixed_in(toy_checkpoint, toy_build, tmp_path, monkeypatch):
    from tinyrs.evaluation.generate import TransformersEngine
    from tinyrs.model import untrained_twin

    out = tmp_path / "eval"
    evaluate(toy_checkpoint, toy_build / "eval", out, ["AID"], max_new_tokens=4, limit=2, progress=False)
    other = untrained_twin(toy_checkpoint, tmp_path / "other", seed=5)
    with pytest.raises(ValueError, match="other settings .*model_sha256"):
        evaluate(other, toy_build / "eval", out, ["AID"], max_new_tokens=4, limit=2, progress=False)
    with pytest.raises(ValueError, match="max_new_tokens"):
        evaluate(toy_checkpoint, toy_build / "eval", out, ["AID"], max_new_tokens=5, limit=2, progress=False)
    asked, generate = [], TransformersEngine.generate
    monkeypatch.setattr(TransformersEngine, "generate", lambda self, prompts, *a, **k: asked.append(len(prompts)) or
                        generate(self, prompts, *a, **k))
    r = evaluate(other, toy_build / "eval", out, ["AID"], max_new_tokens=4, limit=2, progress=False, overwrite=True)
    assert json.loads((out / "eval.json").read_text())["model"] == str(other) and r["benchmarks"]
    assert asked == [2]  # the other model answered both questions itself: none of the first model's answers kept
    again = evaluate(other, toy_build / "eval", out, ["AID"], max_new_tokens=4, limit=2, progress=False)
    assert asked == [2] and again["reused_answers"] == 2 and again["benchmarks"] == r["benchmarks"]
    # the same model with another processor (or chat template, tokenizer config) is another model
    changed = tmp_path / "changed"
    shutil.copytree(other, changed)
    cfg = json.loads((changed / "processor_config.json").read_text())
    (changed / "processor_config.json").write_text(json.dumps({**cfg, "tinyrs_test": 1}))
    with pytest.raises(ValueError, match="other settings .*model_sha256"):
        evaluate(changed, toy_build / "eval", out, ["AID"], max_new_tokens=4, limit=2, progress=False)
    # answers given under another wording of the question (the reasoning prompt) or by another engine are not reused
    record = json.loads((out / "eval.json").read_text())
    (out / "eval.json").write_text(json.dumps({**record, "prompt_sha256": "0" * 64}))
    with pytest.raises(ValueError, match="other settings .*prompt_sha256"):
        evaluate(other, toy_build / "eval", out, ["AID"], max_new_tokens=4, limit=2, progress=False)
    (out / "eval.json").write_text(json.dumps({**record, "backend": "vllm"}))
    with pytest.raises(ValueError, match="backend: 'vllm' there, 'transformers' now"):
        evaluate(other, toy_build / "eval", out, ["AID"], max_new_tokens=4, limit=2, progress=False)
    # a record written before those keys existed is not refused for lacking them
    (out / "eval.json").write_text(json.dumps({k: v for k, v in record.items() if k not in ("prompt_sha256", "backend")}))
    assert evaluate(other, toy_build / "eval", out, ["AID"], max_new_tokens=4, limit=2, progress=False)["reused_answers"] == 2
    # an image replaced under its name (another byte size) has its question answered again, the other kept
    root = tmp_path / "eval_copy"
    root.mkdir()
    shutil.copy(toy_build / "eval" / "cls_AID.json", root)
    shutil.copytree(toy_build / "eval" / "cls_AID", root / "cls_AID")
    copied = tmp_path / "copied"
    evaluate(other, root, copied, ["AID"], max_new_tokens=4, limit=2, progress=False)
    first = root / "cls_AID" / json.loads((root / "cls_AID.json").read_text())[0]["image"]
    first.write_bytes(first.read_bytes() + b"\0")  # exported again: the same picture, another file
    asked.clear()
    assert evaluate(other, root, copied, ["AID"], max_new_tokens=4, limit=2, progress=False)["reused_answers"] == 1
    assert asked == [1]
    # rows written before image_bytes was recorded are kept, and score as the same questions as fresh rows
    # (the digest that pairs two models' outcomes question by question)
    fresh = evaluate(other, root, copied, ["AID"], max_new_tokens=4, limit=2, progress=False)
    rows = copied / "predictions" / "cls_AID.jsonl"
    rows.write_text("".join(json.dumps({k: v for k, v in json.loads(line).items() if k != "image_bytes"}) + "\n"
                            for line in rows.read_text().splitlines()))
    legacy = evaluate(other, root, copied, ["AID"], max_new_tokens=4, limit=2, progress=False)
    assert asked == [1] and legacy["reused_answers"] == 2
    assert legacy["benchmarks"]["cls_AID.json"]["strict"]["questions"] == fresh["benchmarks"]["cls_AID.json"]["strict"]["questions"]


def test_open_ended_qa_is_graded_by_the_judge(toy_checkpoint, toy_build, tmp_path):
    from tinyrs.world.grading import RulesJudge

    judge = RulesJudge(toy_build)
    out = tmp_path / "eval"
    r = evaluate(toy_checkpoint, toy_build / "eval", out, ["open"], max_new_tokens=12, limit=4, progress=False,
                 judge=judge)
    s = r["benchmarks"]["open_ended_QA.json"]
    assert s["strict"] == s["compat"] and s["strict"]["n"] == 4
    rows = [json.loads(x) for x in (out / "predictions" / "open_ended_QA.jsonl").read_text().splitlines()]
    from tinyrs.evaluation.scoring import extract_answer

    # the score is the judge's mean grade of the saved answers (an empty answer is 0, not sent)
    grades = [judge.score(x["question"], extract_answer(x["prediction"]),
                          str(toy_build / "eval" / "open_ended_QA" / x["image"])) if extract_answer(x["prediction"]) else 0.0
              for x in rows]
    assert s["strict"]["score"] == pytest.approx(sum(grades) / 4) and s["strict"]["failed"] == 0
    assert "Open-ended" not in r["averages"]["strict"]  # not part of Table I's averages
    assert rescore(out, judge=judge)["benchmarks"] == r["benchmarks"]  # data root read from eval.json
    assert rescore(out)["benchmarks"]["open_ended_QA.json"]["strict"]["score"] is None  # no judge: no score

    class Failing:
        def score(self, *a):
            return None

    failed = rescore(out, judge=Failing())["benchmarks"]["open_ended_QA.json"]["strict"]
    empty = sum(not extract_answer(x["prediction"]) for x in rows)
    assert failed["failed"] == 4 - empty and failed["counted"] == empty


def test_vllm_backend_builds_the_same_prompts(toy_checkpoint, toy_build, monkeypatch):
    """vLLM cannot run here (no GPU): the adapter is checked against a recording stand-in of vllm's API."""
    import types

    from tinyrs.evaluation import vllm_backend
    from tinyrs.evaluation.run import benchmark_entries, benchmark_images, benchmark_prompt
    from tinyrs.model import load_processor

    seen = {}

    class LLM:
        def __init__(self, model, **kw):
            seen["init"] = dict(model=model, **kw)

        def generate(self, requests, params, use_tqdm=True):
            seen["requests"], seen["params"] = requests, params
            out = types.SimpleNamespace
            return [out(outputs=[out(text=f" answer {i} ")]) for i in range(len(requests))]

    class SamplingParams:
        def __init__(self, **kw):
            self.__dict__.update(kw)

    monkeypatch.setitem(sys.modules, "vllm", types.SimpleNamespace(LLM=LLM, SamplingParams=SamplingParams))
    processor = load_processor(toy_checkpoint)
    engine = vllm_backend.VLLMEngine(str(toy_checkpoint), processor, max_model_len=2048)
    path, entries = benchmark_entries(toy_build / "eval", "cls_AID.json", 3)
    prompts, images = [benchmark_prompt(e, "cls_AID.json") for e in entries], benchmark_images(entries, path)
    assert engine.generate(prompts, images, max_new_tokens=7) == ["answer 0", "answer 1", "answer 2"]
    assert seen["params"].temperature == 0.0 and seen["params"].max_tokens == 7  # greedy, the length asked
    assert seen["init"]["limit_mm_per_prompt"] == {"image": 1, "video": 0} and seen["init"]["model"] == str(toy_checkpoint)
    assert seen["init"]["max_model_len"] == 2048
    vllm_backend.VLLMEngine(str(toy_checkpoint), processor)  # the default 8192 is beyond the toy model's context,
    assert seen["init"]["max_model_len"] == json.loads((Path(toy_checkpoint) / "config.json").read_text())[
        "text_config"]["max_position_embeddings"] == 4096  # which real vLLM refuses
    for req, p, ims in zip(seen["requests"], prompts, images):
        assert req["prompt"] == processor.apply_chat_template(p, add_generation_prompt=True, tokenize=False)
        assert req["multi_modal_data"]["image"] is ims[0]
    assert "<|vision_start|><|image_pad|><|vision_end|>{CLS}" in seen["requests"][0]["prompt"]
    engine.close()
    assert engine.llm is None  # collected: its GPU memory goes back before the next arm's engine starts


def test_backend_choice(monkeypatch):
    from tinyrs.evaluation.vllm_backend import choose_backend

    assert choose_backend("transformers") == "transformers"
    assert choose_backend("auto") == "transformers"  # no vLLM and no GPU here
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    with pytest.raises(RuntimeError, match="vllm is not installed"):
        choose_backend("vllm")
    with pytest.raises(ValueError, match="backend must be"):
        choose_backend("tgi")


def test_predictions_of_a_changed_evaluation_file_are_made_again(toy_checkpoint, toy_build, tmp_path, monkeypatch):
    """Rows are matched to questions by index: a row whose recorded question or answer is no longer the
    file's (the benchmark was rebuilt) is answered again, never scored against the new truth."""
    from tinyrs.data.vhm import DataError, read_json_list, write_json

    root = tmp_path / "eval_files"
    root.mkdir()
    (root / "cls_AID").symlink_to(toy_build / "eval" / "cls_AID")
    entries = read_json_list(toy_build / "eval" / "cls_AID.json")[:3]
    write_json(root / "cls_AID.json", entries)
    out = tmp_path / "eval"
    evaluate(toy_checkpoint, root, out, ["AID"], max_new_tokens=4, progress=False)
    entries[1]["conversations"][1]["value"] = "a class that was not there before"
    write_json(root / "cls_AID.json", entries)
    asked = []
    real = TransformersEngine.generate
    monkeypatch.setattr(TransformersEngine, "generate", lambda self, prompts, *a, **k: asked.append(len(prompts)) or
                        real(self, prompts, *a, **k))
    r = evaluate(toy_checkpoint, root, out, ["AID"], max_new_tokens=4, progress=False)
    assert asked == [1] and r["benchmarks"]["cls_AID.json"]["strict"]["n"] == 3
    rows = rescore(out)  # the newest row of index 1 is the one scored
    assert rows["benchmarks"]["cls_AID.json"] == r["benchmarks"]["cls_AID.json"]
    (out / "eval.json").write_text('{"model": "x", "model_sha')  # a copy cut short
    with pytest.raises(DataError, match=r"eval.json: not a readable record of tinyrs eval"):
        evaluate(toy_checkpoint, root, out, ["AID"], max_new_tokens=4, progress=False)
