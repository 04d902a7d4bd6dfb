"""A canary API key is used for real but never reaches outputs, caches, journals, reports, logs or
an executed notebook."""
import json
import shutil
import subprocess
import sys
import uuid

import papermill as pm
import pytest

from servers import FaultServer
from tinyrs.data.vhm import read_json_list, write_json
from tinyrs.paths import NOTEBOOKS


def copy_build(src, dst):
    dst.mkdir()
    for name in ["instruct.json", "build.json", "scenes.jsonl", "qa_meta.jsonl"]:
        shutil.copy(src / name, dst / name)
    (dst / "images").symlink_to(src / "images")


@pytest.mark.slow
def test_canary_key_never_leaks(toy_build, tmp_path, monkeypatch):
    canary = f"canary{uuid.uuid4().hex}"  # shaped like no known key: only the client's own masking can hide it
    monkeypatch.setenv("OPENAI_API_KEY", canary)
    build = tmp_path / "build"
    copy_build(toy_build, build)
    entries = read_json_list(build / "instruct.json")[:8]
    entries[2]["conversations"][0]["value"] += " [fault=401]"  # the server quotes the key back in its error
    entries[5]["conversations"][0]["value"] += " [fault=429,ok]"
    write_json(tmp_path / "few.json", entries)
    with FaultServer() as server:
        # the command line, openai teacher
        r = subprocess.run([sys.executable, "-m", "tinyrs.cli", "think", "--in", str(tmp_path / "few.json"),
                            "--out", str(tmp_path / "few_think.json"), "--teacher", "openai", "--base-url", server.url,
                            "--model", "gpt-4.1-mini", "--image-root", str(build / "images"),
                            "--set", "teacher.max_retries=1", "--set", "teacher.backoff=0.01", "--no-progress"],
                           capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr
        # notebook 02 with the openai teacher against the same server
        nb_out = tmp_path / "02_executed.ipynb"
        pm.execute_notebook(str(NOTEBOOKS / "02_cot_captions.ipynb"), str(nb_out), kernel_name="python3",
                            cwd=str(tmp_path), progress_bar=False,
                            parameters=dict(data_dir=str(build), teacher="openai", base_url=server.url, limit=6,
                                            figures_dir=str(tmp_path / "fig")))
    assert f"Bearer {canary}" in server.auth_headers  # the key was really sent...
    report = json.loads((tmp_path / "few_think.report.json").read_text())
    details = json.dumps(report["usage"]["failures_detail"])
    assert "Incorrect API key provided: ***" in details  # ...and an error quoting it was redacted
    leaks = [str(p) for p in tmp_path.rglob("*") if p.is_file() and canary.encode() in p.read_bytes()]
    assert leaks == []
    assert canary not in r.stdout + r.stderr
    assert (build / "llm_cache").is_dir() and any((build / "llm_cache").rglob("*.json"))  # the cache was written


def test_keys_typed_into_options_are_refused_or_masked(tmp_path, monkeypatch):
    """A key where a key does not belong (a URL, a --set, a notebook parameter, a trainer field) is refused
    before it is used, and an error that quotes the option masks it."""
    from tinyrs.llm import LLMClient, LLMConfigError, LLMSettings
    from tinyrs.redact import redact
    from tinyrs.reproduce import notebook_parameters
    from tinyrs.train.runs import write_run_record

    canary = "SECRET" + uuid.uuid4().hex[:12]
    for text in (f"sk-{canary}", f"hf_{canary}{canary}", f"http://user:{canary}@127.0.0.1:9/v1", f"Basic {canary}==",
                 f"Bearer {canary}", f"teacher.api_key={canary}", f"hub_token: '{canary}'",
                 f"Authorization: Token {canary}", f"x-api-key: {canary}", f"api-key={canary}",
                 f"https://gateway/v1?key={canary}&v=2", f"password: 'p,{canary}'", f'{{"api_key": "x {canary}"}}'):
        assert canary not in redact(text), text
    assert redact(f"--set 'model_init_kwargs={{token: {canary}}}'") == "--set 'model_init_kwargs={token: ***}'"
    assert redact("api_key_env=OPENAI_API_KEY max_tokens: 1024 https://api.openai.com/v1") == \
        "api_key_env=OPENAI_API_KEY max_tokens: 1024 https://api.openai.com/v1"  # nothing else is touched
    assert redact("/scratch/hf_models/Qwen2-VL-2B-Instruct") == "/scratch/hf_models/Qwen2-VL-2B-Instruct"

    with pytest.raises(LLMConfigError, match="base_url carries credentials") as e:  # httpx would send it as Basic
        LLMClient(LLMSettings(base_url=f"http://user:{canary}@127.0.0.1:9/v1"))
    with pytest.raises(LLMConfigError, match="base_url carries credentials") as e1:  # written to caches and reports
        LLMClient(LLMSettings(base_url=f"http://127.0.0.1:9/v1?api_key={canary}"))
    with pytest.raises(LLMConfigError, match="the \\*name\\* of the environment variable") as e2:
        LLMClient(LLMSettings(base_url="http://127.0.0.1:9/v1", api_key_env=f"sk-{canary}"))
    assert canary not in str(e.value) + str(e1.value) + str(e2.value)
    # a key without a telltale prefix, pasted where the variable's name belongs, is neither echoed nor recorded
    pasted = f"a{canary.lower()}Xy9"
    with pytest.raises(LLMConfigError, match="environment variable that api_key_env names") as e3:
        LLMClient(LLMSettings(base_url="https://api.example.com/v1", api_key_env=pasted))
    monkeypatch.delenv("MY_KEY_VAR", raising=False)
    with pytest.raises(LLMConfigError, match="set \\$MY_KEY_VAR to the API key"):  # a variable's name is shown
        LLMClient(LLMSettings(base_url="https://api.example.com/v1", api_key_env="MY_KEY_VAR"))
    served = LLMClient(LLMSettings(base_url="http://127.0.0.1:9/v1", api_key_env=pasted))  # local: any key
    assert served.usage_report()["settings"]["api_key_env"] == "***"
    assert LLMClient(LLMSettings(base_url="http://127.0.0.1:9/v1")).usage_report()["settings"]["api_key_env"] == \
        "OPENAI_API_KEY"
    assert canary.lower() not in str(e3.value)

    cli = [sys.executable, "-m", "tinyrs.cli"]
    for args in (["think", "--in", "x.json", "--out", "y.json", "--set", f"teacher.api_key=sk-{canary}"],
                 ["train", "S", "--config", "toy", "--dry-run", "--set", f"hub_token=hf_{canary}"],
                 ["reproduce", "--only", "02", "--no-ablations", "--out", str(tmp_path / "nb"),
                  "--param", f"base_url=http://u:{canary}@host/v1"]):
        r = subprocess.run(cli + args, capture_output=True, text=True, cwd=tmp_path)
        assert r.returncode != 0 and canary not in r.stdout + r.stderr, args
        assert "Traceback" not in r.stderr, r.stderr
    assert not (tmp_path / "nb").exists() or not list((tmp_path / "nb").iterdir())  # no notebook written
    with pytest.raises(SystemExit, match="looks like a key"):
        notebook_parameters("toy", NOTEBOOKS / "02_cot_captions.ipynb", {"base_url": f"http://u:{canary}@h/v1"})

    monkeypatch.setattr(sys, "argv", ["tinyrs", "train", "S", "--set", f"data_dir=http://u:{canary}@host/d"])
    record = write_run_record(tmp_path, "S", {"run_name": f"sk-proj-{canary}", "trainer": {"x": [f"hf_{canary * 2}"]}},
                              {}, "/scratch/hf_models/ckpt", 0)  # the resolved recipe is masked too, not paths
    assert record["init"]["path"] == "/scratch/hf_models/ckpt"
    # a field named like a credential is masked whatever its value looks like; fields that only sound alike are kept
    (tmp_path / "r2").mkdir()
    record = write_run_record(tmp_path / "r2", "S", {"trainer": {"model_init_kwargs": {"token": canary}, "eos_token": "<e>",
                                                          "max_tokens": 8}}, {}, None, 0)
    assert record["recipe"]["trainer"] == {"model_init_kwargs": {"token": "***"}, "eos_token": "<e>", "max_tokens": 8}
    assert canary not in json.dumps(record) + (tmp_path / "run.json").read_text()
