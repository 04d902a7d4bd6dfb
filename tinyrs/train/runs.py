"""Run directories: runs/<stage>/<run-id>/ with the checkpoint, the resolved config, the git commit,
package versions, seed and fingerprints of the data and the starting checkpoint.

    runs/S/20261126-183012-a1b2/
        run.json            what was run, on what, with what (written before training starts)
        .lock               held by the process training the run (no other process resumes it meanwhile)
        metrics.jsonl       every log record of the trainer
        trainer/            TRL's intermediate checkpoints (what --resume continues from)
        checkpoint/         the final model + processor (HF format), the next stage's --init
        complete.json       written last: the run finished
    runs/S/latest -> 20261126-183012-a1b2
"""
from __future__ import annotations

import fcntl
import functools
import hashlib
import json
import os
import platform
import secrets
import shutil
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

from ..config import ConfigError
from ..data.vhm import write_json
from ..model import not_a_checkpoint
from ..paths import REPO_ROOT, runs_dir
from ..redact import redact, redact_values
from .recipes import STAGES

PACKAGES = ["tinyrs", "torch", "transformers", "trl", "peft", "accelerate", "datasets", "tokenizers", "openai"]


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=10)
        dirty = subprocess.run(["git", "-C", str(REPO_ROOT), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return out.stdout.strip() + ("+dirty" if dirty else "") if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def package_versions() -> dict[str, str | None]:
    out = {}
    for p in PACKAGES:
        try:
            out[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            out[p] = None
    return out


def fingerprint(path: str | Path) -> str | None:
    """SHA-256 of a file; of every file of a folder (a checkpoint: weights, config, tokenizer, processor and chat
    template, all of which change what a run or an evaluation does); for a name that is no local path, a hub id,
    of the id and the snapshot of it in the local hub cache, if any (two hub models never share a fingerprint)."""
    path = Path(str(path))
    if path.is_file():
        files = [path]
    elif path.is_dir():
        files = sorted(f for f in path.rglob("*") if f.is_file())
    else:
        return hashlib.sha256(f"hub:{path}@{_hub_snapshot(str(path))}".encode()).hexdigest()
    return _sha256_of(tuple((str(f), f.stat().st_mtime_ns, f.stat().st_size) for f in files))


def _hub_snapshot(repo_id: str) -> str | None:
    """The commit of a hub model's snapshot in the local cache (what from_pretrained loads offline), or None."""
    try:
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(repo_id, "config.json")
    except Exception:  # not a valid repo id: the id alone names it
        return None
    return Path(cached).parent.name if isinstance(cached, str) else None


@functools.lru_cache(maxsize=64)
def _sha256_of(stamped_files: tuple[tuple[str, int, int], ...]) -> str:
    """One hash over the files, computed once per process for unchanged files (a run's cache key and its
    record both fingerprint the same training file and starting checkpoint, which can be gigabytes)."""
    h = hashlib.sha256()
    for f, _mtime, _size in stamped_files:
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def stage_dir(stage: str, runs_root: str | Path | None = None) -> Path:
    """runs/<stage>; runs_root defaults to $TINYRS_RUNS or <repo>/runs."""
    return Path(runs_root or runs_dir()) / stage


def new_run_dir(stage: str, runs_root: str | Path | None = None) -> Path:
    """A new run folder, claimed by this process (it has no run.json yet, so no one looks for it before)."""
    d = stage_dir(stage, runs_root) / f"{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"
    d.mkdir(parents=True, exist_ok=False)
    claim(d)
    return d


def is_complete(run: Path) -> bool:
    return (run / "complete.json").exists()


def _stage_runs(stage: str, runs_root, complete: bool | None = None) -> list[Path]:
    """A stage's run folders, oldest first, that finished (complete), did not (False), or all (None)."""
    d = stage_dir(stage, runs_root)
    runs = sorted(p for p in d.glob("*-*") if p.is_dir() and (p / "run.json").exists()) if d.exists() else []
    return [r for r in runs if complete is None or is_complete(r) == complete]


def latest_run(stage: str, runs_root: str | Path | None = None) -> Path | None:
    """The newest finished run of a stage; `runs/<stage>/latest` decides when it exists: an ablation arm's
    newer run is not the stage's latest."""
    d = stage_dir(stage, runs_root)
    link = d / "latest"
    if link.is_symlink() and is_complete(link.resolve()):
        return d / os.readlink(link)
    runs = _stage_runs(stage, runs_root, complete=True)
    return runs[-1] if runs else None


def _record(run: Path) -> dict:
    """A run's run.json ({} where it cannot be read: such a run is nobody's match)."""
    try:
        return json.loads((run / "run.json").read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def finished_run(stage: str, key: str, runs_root: str | Path | None = None) -> Path | None:
    """The newest finished run of a stage made by the same recipe, data, starting checkpoint and code (run.json's
    cache_key): what a new run of those would give, so it is reused instead."""
    runs = [r for r in _stage_runs(stage, runs_root, complete=True) if _record(r).get("cache_key") == key]
    return runs[-1] if runs else None


def unfinished_runs(stage: str, runs_root: str | Path | None = None, arm: str | None = None,
                    key: str | None = None) -> list[Path]:
    """A stage's unfinished runs trained as ablation arm `arm` (None: not as an arm), newest first; with `key`,
    only those made by the same recipe, data, starting checkpoint and code (run.json's cache_key)."""
    runs = [r for r in _stage_runs(stage, runs_root, complete=False) if (rec := _record(r)).get("arm") == arm
            and (key is None or rec.get("cache_key") == key)]
    return runs[::-1]


_CLAIMS: dict[Path, int] = {}


def claim(run: Path) -> bool:
    """Mark a run as trained by this process: an advisory lock on run/.lock, let go when the process ends,
    however it ends (a kill too), so that no other process resumes the run meanwhile. False: another live
    process holds it, or the run has finished. Where the file system has no locks, a claim always succeeds."""
    run = Path(run).resolve()
    if run in _CLAIMS:
        return not is_complete(run)
    fd = os.open(run / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return False
    except OSError:  # no lock support (some network file systems): go on without one
        pass
    _CLAIMS[run] = fd
    if is_complete(run):  # it finished between being listed and claimed: nothing to train
        release(run)
        return False
    return True


def release(run: Path) -> None:
    """Let go of a run this process claimed (a finished run needs no claim: no one resumes it)."""
    fd = _CLAIMS.pop(Path(run).resolve(), None)
    if fd is not None:
        (Path(run) / ".lock").unlink(missing_ok=True)
        os.close(fd)


def _held_by_another(run: Path) -> bool:
    """Whether another live process is training the run now (a probe of its claim, let go at once)."""
    if Path(run).resolve() in _CLAIMS:
        return False
    if not claim(run):
        return True
    release(run)
    return False


ELAPSED = "elapsed.json"  # in each Trainer checkpoint: the run's seconds up to it (callbacks.RunClock)


def trainer_checkpoints(trainer_dir: Path) -> tuple[list[Path], list[Path]]:
    """A run's Trainer checkpoints (checkpoint-N), oldest first: (saved whole, cut off while saving). The
    Trainer writes trainer_state.json last, so a folder without it is a save a kill interrupted."""
    found = sorted((p for p in Path(trainer_dir).glob("checkpoint-*") if p.name.split("-")[-1].isdigit()),
                   key=lambda p: int(p.name.split("-")[-1]))
    whole = [p for p in found if (p / "trainer_state.json").exists()]
    return whole, [p for p in found if p not in whole]


def recorded_seconds(checkpoint: Path) -> float | None:
    """The run's seconds up to a checkpoint (its elapsed.json); None where it has none or a torn one."""
    try:
        return float(json.loads((Path(checkpoint) / ELAPSED).read_text())["seconds"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def runs_table(runs_root: str | Path | None = None, stages: list[str] | None = None) -> list[dict]:
    """Every run of the chosen stages (default: all), oldest first: finished, training now (another process
    holds it), or interrupted (what the same call would continue, from which step)."""
    rows = []
    for stage in stages or STAGES:
        latest = latest_run(stage, runs_root)
        for run in _stage_runs(stage, runs_root):
            if is_complete(run):
                try:
                    done, status = json.loads((run / "complete.json").read_text()), "finished"
                except (OSError, ValueError):
                    done = None
                if not isinstance(done, dict):
                    done, status = {}, "finished (its complete.json is unreadable)"
                steps, seconds = done.get("steps"), done.get("seconds")
            else:
                whole, _ = trainer_checkpoints(run / "trainer")
                last = whole[-1] if whole else None
                steps, seconds = (int(last.name.split("-")[-1]), recorded_seconds(last)) if last else (0, None)
                status = "training now" if _held_by_another(run) else \
                    f"interrupted, continues from step {steps}" if steps else "interrupted before its first checkpoint"
            record = _record(run)
            rows.append({"stage": stage, "run": run.name, "arm": record.get("arm") or "", "status": status,
                         "steps": steps, "seconds": seconds, "started": record.get("started", ""),
                         "latest": "yes" if run == latest else ""})
    return rows


def run_init(run: str | Path) -> Path:
    """The checkpoint a run started from (recorded in its run.json)."""
    return Path(json.loads((Path(run) / "run.json").read_text())["init"]["path"])


def _point(link: Path, target: str) -> None:
    """Make `link` a symlink to `target` in one step (a reader sees the old link or the new, never none)."""
    tmp = link.parent / f".{link.name}.{os.getpid()}"
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    tmp.symlink_to(target)
    os.replace(tmp, link)


ARMS = "arms"  # runs/arms/<name> -> the run of one ablation arm (tinyrs train --arm NAME, tinyrs ablations)


def link_arm(run: Path, name: str, runs_root: str | Path | None = None) -> Path:
    """Name a finished run as an ablation arm: runs/arms/<name> points at it."""
    d = Path(runs_root or runs_dir()) / ARMS
    d.mkdir(parents=True, exist_ok=True)
    link = d / name
    _point(link, os.path.relpath(run, d))
    return link


def arm_run(name: str, runs_root: str | Path | None = None) -> Path | None:
    """The finished run named as arm `name`, if any."""
    link = Path(runs_root or runs_dir()) / ARMS / name
    return link.resolve() if link.exists() and is_complete(link.resolve()) else None


def resolve_init(init: str | None, runs_root: str | Path | None = None, flag: str = "--init") -> str | None:
    """--init (or `flag`, in errors): a checkpoint folder (or a run folder), a stage name ('base', 'P', 'S', ...)
    meaning that stage's latest finished run, 'arm:NAME' meaning an ablation arm's run, or a hub id (returned as
    is, for from_pretrained)."""
    if init is None:
        return None
    if init.startswith("arm:"):
        run = arm_run(init[4:], runs_root)
        if run is None:
            raise FileNotFoundError(f"{flag} {init}: no finished run named arm {init[4:]!r} in "
                                    f"{Path(runs_root or runs_dir()) / ARMS} (train it with --arm {init[4:]})")
        return str(run / "checkpoint")
    p = Path(init)
    if (p / "checkpoint" / "config.json").exists():  # a run folder
        return str(p / "checkpoint")
    if "/" not in init and not p.is_dir():  # a stage name
        if init not in STAGES:
            raise FileNotFoundError(f"{flag} {init}: not a checkpoint folder, a stage ({', '.join(STAGES)}), "
                                    f"arm:NAME or a hub id (owner/name)")
        run = latest_run(init, runs_root)
        if run is None:
            raise FileNotFoundError(f"{flag} {init}: no finished run of stage {init} in {stage_dir(init, runs_root)}; "
                                    f"train it first (tinyrs train {init}) or pass a checkpoint folder")
        return str(run / "checkpoint")
    if problem := not_a_checkpoint(init):
        raise FileNotFoundError(f"{flag} {init}: {problem}" + " (nor a run folder with checkpoint/)" * p.is_dir())
    return str(p) if p.is_dir() else init  # a checkpoint folder, or a hub id such as Qwen/Qwen2-VL-2B-Instruct


def write_run_record(run: Path, stage: str, recipe: dict, inputs: dict[str, str], init: str | None,
                     seed: int, extra: dict | None = None, resume: bool = False, trainer_args=None) -> dict:
    """run.json, written before training starts: with `trainer_args`, the TRL config the trainer is built with,
    every field (the library's defaults too). A resumed run keeps its first record (adding when and how it
    was resumed), and must be resumed with what it was started with: other settings would silently make a
    run that is neither."""
    record = {
        "stage": stage, "started": time.strftime("%Y-%m-%dT%H:%M:%S"), "command": [redact(a) for a in sys.argv],
        "seed": seed, "recipe": redact_values(recipe), "git_commit": git_commit(), "python": platform.python_version(),
        "packages": package_versions(), "host": platform.node(),
        "inputs": {name: {"path": str(p), "sha256": fingerprint(p)} for name, p in inputs.items()},
        "init": {"path": init, "sha256": fingerprint(init) if init else None},
        **(extra or {}),
        **({"trainer_args": redact_values(trainer_args.to_dict())} if trainer_args is not None else {}),
    }
    record = json.loads(json.dumps(record, default=str))
    path = run / "run.json"
    if resume and path.exists():
        first = json.loads(path.read_text())
        changed = run_differences(first, record)
        if changed:
            raise ConfigError(f"--resume: {run} was started with other settings ({'; '.join(changed)}); resume it "
                              "with the options it was started with, or leave out --resume to start a new run")
        first.setdefault("resumed", []).append({k: record[k] for k in ("started", "command", "git_commit")})
        record = first
    write_json(path, record)
    return record


def run_differences(first: dict, now: dict) -> list[str]:
    """What differs between two run records in what determines the run: recipe, seed, the data and the
    starting checkpoint (by content; how they were named does not matter)."""
    def flat(d: dict, prefix: str = "") -> dict:
        out = {}
        for k, v in d.items():
            if isinstance(v, dict) and v:
                out.update(flat(v, f"{prefix}{k}."))
            elif not k.startswith("_") and f"{prefix}{k}" not in ("init", "data_dir"):
                out[f"{prefix}{k}"] = v
        return out

    a, b = flat(first.get("recipe", {})), flat(now["recipe"])
    changed = [f"{k}: {a.get(k, '(unset)')} -> {b.get(k, '(unset)')}" for k in sorted(a.keys() | b.keys())
               if a.get(k) != b.get(k)]
    if first.get("seed") != now["seed"]:
        changed.append(f"seed: {first.get('seed')} -> {now['seed']}")
    for name in sorted(first.get("inputs", {}).keys() | now["inputs"].keys()):
        if first.get("inputs", {}).get(name, {}).get("sha256") != now["inputs"].get(name, {}).get("sha256"):
            changed.append(f"{name}: its content changed")
    if first.get("init", {}).get("sha256") != now["init"]["sha256"]:
        changed.append("the starting checkpoint is another one")
    return changed


def mark_complete(run: Path, summary: dict, latest: bool = True) -> None:
    """Record the end of a run, drop the trainer's intermediate checkpoints (they only serve --resume),
    and point runs/<stage>/latest at it (not for an ablation arm's run: `latest` is the main chain's)."""
    # complete.json first (whole or not at all): a kill in between leaves a finished run, not one
    # that can neither be reused nor resumed
    write_json(run / "complete.json", json.loads(json.dumps({"finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
                                                             **summary}, default=str)))
    for ckpt in (run / "trainer").glob("checkpoint-*"):
        shutil.rmtree(ckpt, ignore_errors=True)
    release(run)
    if latest:
        point_latest(run)


def point_latest(run: Path) -> None:
    """runs/<stage>/latest -> this run (the start a later stage's `init: <stage>` resolves to)."""
    _point(run.parent / "latest", run.name)
