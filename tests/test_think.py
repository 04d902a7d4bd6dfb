"""VHM-Instruct-Think: validation, the rules teacher, the openai teacher against real servers,
and resumption after SIGKILL."""
import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from servers import FaultServer, ServedCheckpoint
from tinyrs.data.think import (Journal, OpenAITeacher, RulesTeacher, check_caption, entry_key, run_think, side_paths)
from tinyrs.data.vhm import DataError, read_appended, read_json_list, write_json
from tinyrs.llm import LLMClient, LLMSettings, OpenAIJudge
from tinyrs.paths import SHARED

R = "<reasoning>I look at the image and see several ships moored along the pier on the left.</reasoning>"


@pytest.mark.parametrize("caption,original,problem", [
    (R + "<answer>3</answer>", "3", None),
    (R + "<answer>Yes.</answer>", "yes", None),  # normalised: case, trailing dot
    (R + "\n<answer>[[10, 20, 30, 40]]</answer>", "[[10, 20, 30, 40]]", None),
    (R + "<answer>[[10, 20, 30, 41]]</answer>", "[[10, 20, 30, 40]]", "different box"),
    (R + "<answer>B. ship</answer>", "B", None),
    (R + "<answer>C</answer>", "B", "different choice"),
    (R + "<answer>4</answer>", "3", "different answer"),
    ("<answer>3</answer>", "3", "format"),
    ("<reasoning>ships</reasoning><answer>3</answer>", "3", "short reasoning"),
    ("<think>many words here to be long enough for sure yes</think><answer>3</answer>", "3", "format"),
    (None, "3", "call failed"),
])
def test_caption_validation(caption, original, problem):
    assert check_caption(caption, original) == problem


def test_rules_teacher_passes_the_shared_check(toy_build, tmp_path):
    out = tmp_path / "instruct_think.json"
    report = run_think(toy_build / "instruct.json", out, RulesTeacher(toy_build), toy_build / "images", progress=False)
    r = subprocess.run([sys.executable, str(SHARED / "checks" / "check_think.py"), str(toy_build / "instruct.json"),
                        str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout
    assert report["accepted"] == len(read_json_list(toy_build / "instruct.json")) and report["dropped"] == 0
    assert set(report["per_task"]) == {"CLS", "VQA", "VG", "IDK", "IT"}
    assert json.loads(side_paths(out)["report"].read_text())["accepted"] == report["accepted"]


def test_rules_reasoning_is_grounded_varied_and_deterministic(toy_build, tmp_path):
    a = run_think(toy_build / "instruct.json", tmp_path / "a.json", RulesTeacher(toy_build), toy_build / "images",
                  progress=False)
    b = run_think(toy_build / "instruct.json", tmp_path / "b.json", RulesTeacher(toy_build), toy_build / "images",
                  progress=False)
    assert a["accepted"] == b["accepted"]
    assert (tmp_path / "a.json").read_text() == (tmp_path / "b.json").read_text()
    meta = {json.loads(line)["id"]: json.loads(line) for line in open(toy_build / "qa_meta.jsonl")}
    openings = set()
    for e in read_json_list(tmp_path / "a.json"):
        m = meta[e["id"]]
        reasoning = re.match(r"<reasoning>(.*)</reasoning>", e["conversations"][1]["value"], re.S).group(1)
        openings.add(reasoning.split()[0])
        if m["qa_type"] == "counting" and m["evidence"]["count"] > 0:
            from tinyrs.world.language import number_word

            assert number_word(m["evidence"]["count"]) in reasoning  # the count is reasoned, not just stated
        if m["qa_type"] == "grounding":  # the object's place and extent, in words; the box itself is the answer
            x1, y1, x2, y2 = m["evidence"]["box"]
            assert f"{round((x2 - x1) / 10)}% of the image width and {round((y2 - y1) / 10)}% of" in reasoning
    assert len(openings) >= 5  # varied wording


def _fault_entries(toy_build, tmp_path, plans):
    """Real toy entries whose questions carry fault directives for the fault server."""
    base = [e for e in read_json_list(toy_build / "instruct.json")][:len(plans)]
    for e, plan in zip(base, plans):
        e["conversations"][0]["value"] += f" [fault={plan}]" if plan else ""
    path = tmp_path / "in.json"
    write_json(path, base)
    return path, base


def _teacher(url, tmp_path, **kw):
    settings = LLMSettings(base_url=url, model="test-model", timeout=0.5, max_retries=1, backoff=0.01,
                           backoff_max=0.02, workers=3, **kw)
    return OpenAITeacher(LLMClient(settings, cache_dir=tmp_path / "cache", name="teacher"))


def test_openai_teacher_retries_drops_and_counts(toy_build, tmp_path):
    plans = ["", "wrong,ok", "wrong", "notags,ok", "badjson,ok", "429,429,429,429,429,429,ok", "", "notags"]
    path, base = _fault_entries(toy_build, tmp_path, plans)
    out = tmp_path / "think.json"
    with FaultServer() as s:
        report = run_think(path, out, _teacher(s.url, tmp_path), toy_build / "images", max_attempts=3, workers=3,
                           progress=False)
        assert (report["accepted"], report["dropped"], report["failed"]) == (5, 2, 1)
        assert report["rejections"]["different answer"] == 4  # 1 then 3
        assert report["rejections"]["call failed"] == 3 and report["rejections"]["format"] == 3
        assert report["usage"]["retries"] >= 5 and report["usage"]["failures"] == 6  # 3 x (429s), 3 x (no tags)
        got = {e["id"]: e["conversations"][-1]["value"] for e in read_json_list(out)}
        for e, plan in zip(base, plans):
            if plan in ("wrong", "429,429,429,429,429,429,ok", "notags"):
                assert e["id"] not in got
            else:  # each caption carries its own sample's answer
                assert got[e["id"]].endswith(f"<answer>{e['conversations'][1]['value']}</answer>")
        # the next run retries only the failed call (its server has recovered), nothing else
        calls = report["usage"]["api_calls"]
        teacher = _teacher(s.url, tmp_path)
        again = run_think(path, out, teacher, toy_build / "images", max_attempts=3, progress=False)
        assert (again["accepted"], again["dropped"], again["failed"]) == (6, 2, 0)
        assert again["resumed_from_journal"] == 7 and teacher.client.usage.counts["api_calls"] == 1 and calls > 1


def test_sigkill_mid_run_then_rerun_loses_and_duplicates_nothing(toy_build, tmp_path):
    entries = read_json_list(toy_build / "instruct.json")[:150]
    src = tmp_path / "instruct.json"
    write_json(src, entries)
    out = tmp_path / "instruct_think.json"
    journal = side_paths(out)["journal"]
    cmd = [sys.executable, "-m", "tinyrs.cli", "think", "--in", str(src), "--out", str(out), "--teacher", "openai",
           "--model", "test-model", "--workers", "2", "--image-root", str(toy_build / "images"), "--no-progress"]
    with FaultServer(delay=0.03) as s:
        env = dict(os.environ, OPENAI_BASE_URL=s.url)
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 60
        while time.time() < deadline and (not journal.exists() or journal.read_text().count("\n") < 25):
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        done_before = journal.read_text().count("\n")
        assert 25 <= done_before < len(entries), "the kill must land mid-run"
        assert not out.exists()
        r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        assert f"; {done_before} were already done" in r.stdout  # resumed exactly where it was killed
    check = subprocess.run([sys.executable, str(SHARED / "checks" / "check_think.py"), str(src), str(out),
                            "--min-coverage", "1.0"], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout
    keys = [json.loads(line)["key"] for line in journal.read_text().splitlines()]
    assert len(keys) == len(set(keys)) == len({entry_key(e) for e in entries})


def test_torn_journal_line_is_cut_and_the_run_completes(toy_build, tmp_path):
    entries = read_json_list(toy_build / "instruct.json")[:20]
    src = tmp_path / "in.json"
    write_json(src, entries)
    out = tmp_path / "new" / "out.json"  # a folder that does not exist yet is made
    run_think(src, out, RulesTeacher(toy_build), toy_build / "images", limit=8, progress=False)
    journal = side_paths(out)["journal"]
    with open(journal, "a") as f:
        f.write('{"key": "half-written", "status": "o')  # what a kill during a write leaves
    assert len(Journal(journal).done) == 8 and journal.read_text().endswith("\n")
    report = run_think(src, out, RulesTeacher(toy_build), toy_build / "images", progress=False)
    assert report["accepted"] == 20 and report["resumed_from_journal"] == 8
    assert len(read_json_list(out)) == 20


def test_rules_teacher_names_an_entry_of_another_build(toy_build, tmp_path):
    entries = read_json_list(toy_build / "instruct.json")[:4]
    entries[2] = {**entries[2], "id": "from-elsewhere"}
    write_json(tmp_path / "in.json", entries)
    # was counted as a failed call, "retried by the next run", which would fail again for ever
    with pytest.raises(DataError, match=r"in.json: entry 2: id 'from-elsewhere' is not a question of the toy build"):
        run_think(tmp_path / "in.json", tmp_path / "out.json", RulesTeacher(toy_build), toy_build / "images",
                  progress=False)
    assert not (tmp_path / "out.json").exists()  # checked before anything is captioned


@pytest.fixture(scope="module")
def served(toy_checkpoint, tmp_path_factory):
    with ServedCheckpoint(toy_checkpoint, tmp_path_factory.mktemp("serve") / "serve.log") as s:
        yield s


@pytest.mark.slow
def test_teacher_and_judge_through_transformers_serve(served, toy_build, toy_checkpoint, tmp_path):
    """A real OpenAI-compatible server (transformers serve) with a tiny checkpoint: the replies are
    noise, so this checks transport, token accounting, validation, caching and cost."""
    model = str(toy_checkpoint)
    prices = {model: {"input": 0.5, "output": 1.5, "source": "test"}}
    settings = LLMSettings(base_url=served.url, model=model, max_tokens=24, timeout=60, max_retries=0, workers=2)
    client = LLMClient(settings, cache_dir=tmp_path / "cache", prices=prices, name="teacher")
    report = run_think(toy_build / "instruct.json", tmp_path / "think.json", OpenAITeacher(client),
                       toy_build / "images", max_attempts=1, workers=2, limit=4, progress=False)
    u = report["usage"]
    assert report["entries"] == 4 and u["api_calls"] >= 4
    assert u["prompt_tokens"] > 4 * 20 and u["completion_tokens"] > 0  # counted by the server, per request
    assert u["cost_usd"] == pytest.approx((u["prompt_tokens"] * 0.5 + u["completion_tokens"] * 1.5) / 1e6)
    assert sum(report["per_task"][t]["total"] for t in report["per_task"]) == 4
    # noise never passes validation: rejected as format errors (a reply came), not crashed, not failed calls
    assert report["accepted"] + report["dropped"] == 4 and report["failed"] == 0
    assert report["rejections"].get("format", 0) == report["dropped"]
    # caching of a valid reply: the same request again costs no call
    image_msg = OpenAITeacher(client).messages(read_json_list(toy_build / "instruct.json")[0],
                                               toy_build / "images" / "RSVQA-HR" / "instruct_000000.jpg")
    first = client.complete(image_msg)
    assert first.text is not None and not first.cached
    calls = client.usage.counts["api_calls"]
    assert client.complete(image_msg).cached and client.usage.counts["api_calls"] == calls
    # the judge through the same server: a noise reply parses to a number in [0, 1] or is recorded as None
    judge = OpenAIJudge(LLMClient(LLMSettings(base_url=served.url, model=model, max_tokens=4, max_retries=0,
                                              temperature=0.2)))
    score = judge.score("Describe the image.", "A harbor with two ships.",
                        toy_build / "images" / "VersaD" / "pretrain_000000.jpg")
    assert (score is None and len(judge.failures) == 1) or (0.0 <= score <= 1.0 and not judge.failures)
    assert judge.client.usage.counts["api_calls"] == 1


def test_a_journaled_caption_of_another_answer_is_made_again(toy_build, tmp_path, capsys):
    """The journal keys a sample by (image, question); a rebuilt input with another answer to the same question
    must not reuse the caption made for the old one (it would contradict the new answer)."""
    entries = read_json_list(toy_build / "instruct.json")[:8]
    src, out = tmp_path / "in.json", tmp_path / "out.json"
    write_json(src, entries)
    run_think(src, out, RulesTeacher(toy_build), toy_build / "images", progress=False)
    entries[3]["conversations"][-1]["value"] = "an answer of another build"
    write_json(src, entries)
    report = run_think(src, out, RulesTeacher(toy_build), toy_build / "images", progress=False)
    assert report["resumed_from_journal"] == 7 and "1 journaled captions were made for other answers" in capsys.readouterr().out
    same = [e for e in read_json_list(out) if entry_key(e) == entry_key(entries[3])]
    assert len(same) == 1 and check_caption(same[0]["conversations"][-1]["value"], "an answer of another build") is None


def test_a_journaled_caption_of_another_teacher_is_made_again(toy_build, tmp_path, capsys):
    """Captions journaled by the rules teacher are not served as the openai teacher's (nor one model's as
    another's): the journal records who wrote each caption."""
    entries = read_json_list(toy_build / "instruct.json")[:4]
    src, out = tmp_path / "in.json", tmp_path / "out.json"
    write_json(src, entries)
    run_think(src, out, RulesTeacher(toy_build), toy_build / "images", progress=False)
    with FaultServer() as s:
        teacher = _teacher(s.url, tmp_path)
        report = run_think(src, out, teacher, toy_build / "images", progress=False)
        assert report["resumed_from_journal"] == 0 and teacher.client.usage.counts["api_calls"] == 4
        assert f"4 journaled captions in {tmp_path / 'out.journal.jsonl'} were made by another teacher" in capsys.readouterr().out
        again = _teacher(s.url, tmp_path)  # the same teacher: everything resumed
        assert run_think(src, out, again, toy_build / "images", progress=False)["resumed_from_journal"] == 4
        other_model = OpenAITeacher(LLMClient(LLMSettings(base_url=s.url, model="another-model", timeout=0.5,
                                                          max_retries=1, backoff=0.01, backoff_max=0.02),
                                              cache_dir=tmp_path / "cache", name="teacher"))
        assert run_think(src, out, other_model, toy_build / "images", progress=False)["resumed_from_journal"] == 0
    assert teacher.identity != other_model.identity and RulesTeacher.identity == "rules"


def test_a_damaged_journal_names_its_line(toy_build, tmp_path):
    journal = tmp_path / "j.jsonl"
    good = json.dumps({"key": "a", "status": "ok", "caption": "c"})
    for body, problem in [(good + '\n{"key": "b", "sta\n' + good + "\n", "line 2: not JSON .*; delete that line"),
                          ('{"key": "b"}\n', "line 1: not a caption record"),
                          ("[1]\n", "line 1: not a caption record")]:
        journal.write_text(body)
        with pytest.raises(DataError, match=problem):
            Journal(journal)


def test_ctrl_c_stops_asking_the_teacher(toy_build, tmp_path):
    """Interrupting a captioning run does not go on to caption every queued sample first."""
    entries = read_json_list(toy_build / "instruct.json")[:60]
    write_json(tmp_path / "in.json", entries)
    rules, calls = RulesTeacher(toy_build), []

    class Interrupted(RulesTeacher):
        def caption(self, entry, image_path, attempt):
            calls.append(1)
            if len(calls) == 5:
                raise KeyboardInterrupt
            return rules.caption(entry, image_path, attempt)

    with pytest.raises(KeyboardInterrupt):
        run_think(tmp_path / "in.json", tmp_path / "out.json", Interrupted(toy_build), toy_build / "images", workers=2,
                  progress=False)
    assert len(calls) < 10 and not (tmp_path / "out.json").exists()
    report = run_think(tmp_path / "in.json", tmp_path / "out.json", rules, toy_build / "images", progress=False)
    assert report["resumed_from_journal"] >= 3 and len(read_json_list(tmp_path / "out.json")) == report["accepted"]


def test_think_refuses_what_would_lose_data_or_report_success_wrongly(toy_build, tmp_path):
    """The input as --out, a bad entry (named before any call), a nonsense attempts count, and a run whose
    every call failed: each is an error (exit 2), not a quiet success."""
    entries = read_json_list(toy_build / "instruct.json")[:6]
    write_json(tmp_path / "in.json", entries)
    bad = [dict(e) for e in entries]
    bad[4] = {**bad[4], "conversations": [bad[4]["conversations"][0], {"from": "gpt", "value": 5}]}
    write_json(tmp_path / "bad.json", bad)
    openai = ["--teacher", "openai", "--base-url", "http://127.0.0.1:9/v1", "--set", "teacher.max_retries=0"]
    cases = [(["--in", "in.json", "--out", "in.json"], "is the input file"),
             (["--in", "bad.json", "--out", "o.json", *openai], "bad.json: entry 4: turn 1 must be"),
             (["--in", "in.json", "--out", "o.json", "--set", "teacher.caption_attempts=0"], "caption_attempts must be"),
             (["--in", "in.json", "--out", "o.json", *openai], "every call to the teacher failed")]  # nothing listens
    for args, problem in cases:
        r = subprocess.run([sys.executable, "-m", "tinyrs.cli", "think", *args, "--image-root", str(toy_build / "images"),
                            "--no-progress"], capture_output=True, text=True, cwd=tmp_path, env={**os.environ,
                            "OPENAI_API_KEY": "sk-test-0123456789"}, timeout=300)
        assert r.returncode == 2 and problem in r.stderr and "Traceback" not in r.stderr, (args, r.stderr)
    assert read_json_list(tmp_path / "in.json") == entries  # the input is untouched


def test_think_stops_when_the_teacher_fails_sample_after_sample(toy_build, tmp_path):
    """A server that is down fails every sample after all its retries: the run stops after a few such samples
    (at the paper's size it would otherwise take hours to report it), keeping what it journaled."""
    from tinyrs.data.think import STOP_AFTER_FAILED

    write_json(tmp_path / "in.json", read_json_list(toy_build / "instruct.json")[:STOP_AFTER_FAILED + 6])
    r = subprocess.run([sys.executable, "-m", "tinyrs.cli", "think", "--in", "in.json", "--out", "o.json", "--teacher",
                        "openai", "--base-url", "http://127.0.0.1:9/v1", "--set", "teacher.max_retries=0", "--workers",
                        "1", "--image-root", str(toy_build / "images"), "--no-progress"], capture_output=True, text=True,
                       cwd=tmp_path, env={**os.environ, "OPENAI_API_KEY": "sk-test-0123456789"}, timeout=300)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert f"the last {STOP_AFTER_FAILED} captions failed, every call (APIConnectionError" in r.stderr
    journal = read_appended(side_paths(tmp_path / "o.json")["journal"], lambda rec: None, "")
    # the one under way when it stopped finishes into the journal; the rest are never asked
    assert {rec["status"] for _, rec in journal} == {"failed"} and len(journal) in (STOP_AFTER_FAILED, STOP_AFTER_FAILED + 1)


def test_think_goes_on_through_failures_that_are_not_in_a_row(toy_build, tmp_path):
    from tinyrs.data.think import STOP_AFTER_FAILED

    plans = ["500,500", ""] * STOP_AFTER_FAILED  # every other sample fails: a flaky server, not a dead one
    path, _ = _fault_entries(toy_build, tmp_path, plans)
    with FaultServer() as s:
        report = run_think(path, tmp_path / "out.json", _teacher(s.url, tmp_path), toy_build / "images", max_attempts=1,
                           workers=1, progress=False)
    assert (report["accepted"], report["failed"]) == (STOP_AFTER_FAILED, STOP_AFTER_FAILED)


def test_captions_of_an_instruct_file_built_again_are_not_trained_on(toy_build, tmp_path):
    """A rebuild that changes the questions or answers leaves the old instruct_think.json beside the new
    instruct file: stage C must not train on it (captions arguing for answers the file no longer gives)."""
    from tinyrs.data.think import stale_captions
    from tinyrs.train.recipes import load_recipe, training_entries

    entries = read_json_list(toy_build / "instruct.json")[:8]
    build = tmp_path / "build"
    build.mkdir()
    (build / "images").symlink_to(toy_build / "images")
    src, out = build / "instruct.json", build / "instruct_think.json"
    write_json(src, entries)
    run_think(src, out, RulesTeacher(toy_build), toy_build / "images", progress=False)
    recipe = load_recipe("C", "toy", [f"data_dir={build}", "train_file=instruct_think.json", "balance=null"])
    assert stale_captions(out) is None and len(training_entries(recipe)[0]) == 8
    entries[2]["conversations"][-1]["value"] = "an answer of another build"
    entries[5]["conversations"][0]["value"] += " Another question?"
    write_json(src, entries)
    assert stale_captions(out).startswith(f"2 of 8 captions answer questions that {src} no longer asks")
    with pytest.raises(DataError, match="2 of 8 captions .* run the same tinyrs think again"):
        training_entries(recipe)
    run_think(src, out, RulesTeacher(toy_build), toy_build / "images", progress=False)  # made again: in step
    assert stale_captions(out) is None


def test_a_caption_of_an_image_replaced_under_its_name_is_made_again(toy_build, tmp_path, capsys):
    from tinyrs.data.build import image_root_of
    from tinyrs.data.vhm import resolve_train_image

    entries = read_json_list(toy_build / "instruct.json")[:4]
    built, root = image_root_of(toy_build), tmp_path / "images"
    for e in entries:
        source = resolve_train_image(e, built)
        (root / source.relative_to(built)).parent.mkdir(parents=True, exist_ok=True)
        (root / source.relative_to(built)).write_bytes(source.read_bytes())
    src, out = tmp_path / "in.json", tmp_path / "out.json"
    write_json(src, entries)
    with FaultServer() as s:
        run_think(src, out, _teacher(s.url, tmp_path), root, progress=False)
        first = resolve_train_image(entries[0], root)
        other = resolve_train_image(read_json_list(toy_build / "instruct.json")[40], built)
        assert other.stat().st_size != first.stat().st_size
        first.write_bytes(other.read_bytes())  # another picture under its name
        teacher = _teacher(s.url, tmp_path)
        report = run_think(src, out, teacher, root, progress=False)
    shown = sum(resolve_train_image(e, root) == first for e in entries)  # questions about that image
    assert 1 <= shown < 4
    assert report["resumed_from_journal"] == 4 - shown and teacher.client.usage.counts["api_calls"] == shown
    assert f"{shown} journaled captions were made for other answers or images" in capsys.readouterr().out
