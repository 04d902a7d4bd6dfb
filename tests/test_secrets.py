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
    canary = f"sk-canary-{uuid.uuid4().hex}"
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
