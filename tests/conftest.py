import os
from pathlib import Path

import pytest

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing may come from a hub in tests

from tinyrs.config import load_config  # noqa: E402
from tinyrs.paths import SHARED  # noqa: E402

FIXTURES = SHARED / "fixtures"

# A small toy build: every file and task, sized for tests (seconds, not minutes).
SMALL_BUILD = ["pretrain.images=120", "instruct.entries=400", "rl.entries=80", "workers=2"]
SMALL_EVAL_N = 24


def small_build_config(seed: int = 0, extra: list[str] | None = None) -> dict:
    cfg = load_config("toy", "data", SMALL_BUILD + [f"seed={seed}"] + (extra or []))
    for spec in cfg["eval"].values():
        spec["n"] = SMALL_EVAL_N if spec["task"] != "MC" else 33  # 3 per LHRS-Bench type
    return cfg


def outputs_text(nb: dict) -> str:
    """What an executed notebook printed (its code cells' text outputs), without its sources."""
    return "\n".join(o.get("text", "") if isinstance(o.get("text", ""), str) else "".join(o["text"])
                     for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", []))


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    if not FIXTURES.is_dir():
        pytest.fail(f"the shared fixtures are missing: {FIXTURES}")
    return FIXTURES


@pytest.fixture(scope="session")
def toy_build(tmp_path_factory) -> Path:
    from tinyrs.data.build import build_toy

    out = tmp_path_factory.mktemp("toy_build")
    build_toy(small_build_config(), out, progress=False)
    return out


@pytest.fixture(scope="session")
def toy_checkpoint(toy_build, tmp_path_factory) -> Path:
    from tinyrs.model import create_toy_checkpoint

    return create_toy_checkpoint(tmp_path_factory.mktemp("ckpt") / "toy", toy_build, load_config("toy", "model"))


def training_copy(toy_build: Path, data: Path) -> Path:
    """A writable copy of a toy build's training files (images and eval linked) plus its CoT captions."""
    import shutil

    from tinyrs.data.think import RulesTeacher, run_think

    data.mkdir(parents=True)
    for name in ["pretrain.json", "instruct.json", "instruct_balanced.json", "rl.json", "build.json", "scenes.jsonl",
                 "qa_meta.jsonl"]:
        shutil.copy(toy_build / name, data / name)
    (data / "images").symlink_to(toy_build / "images")
    (data / "eval").symlink_to(toy_build / "eval")
    run_think(data / "instruct.json", data / "instruct_think.json", RulesTeacher(data), data / "images", progress=False)
    return data
