"""Trainer callbacks: a metrics log on disk, a run's wall time over its sessions, and a wall-clock budget."""
from __future__ import annotations

import json
import time
from pathlib import Path

from transformers import TrainerCallback

from ..data.vhm import read_appended, write_json, write_jsonl
from .runs import ELAPSED, recorded_seconds


def metrics_problem(record) -> str | None:
    """What is wrong with a metrics.jsonl record, if anything (for read_appended)."""
    if not isinstance(record, dict) or not isinstance(record.get("step"), int):
        return "not a log record (an object with an integer step)"
    return None


class JsonlMetrics(TrainerCallback):
    """Appends every log record of the trainer (loss, learning rate, rewards, ...) to a JSON-lines file.
    A resumed run first drops what was logged after the checkpoint it resumes from (it logs those steps
    again) and a line torn by a kill, so the file holds each step once."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def on_train_begin(self, args, state, control, **kwargs):
        if not state.is_world_process_zero or not self.path.exists():
            return
        rows = read_appended(self.path, metrics_problem, "delete that line", cut_torn_tail=True)
        kept = [r for _, r in rows if r["step"] <= state.global_step]
        if len(kept) < len(rows):
            write_jsonl(self.path, kept)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and state.is_world_process_zero:
            with open(self.path, "a") as f:
                f.write(json.dumps({"step": state.global_step, "epoch": state.epoch, **logs}) + "\n")


class RunClock(TrainerCallback):
    """A run's wall time summed over its sessions. Each checkpoint records the seconds spent up to it
    (elapsed.json); a resumed run goes on counting from the checkpoint it resumes from, so work lost after
    that checkpoint, and done again, counts once. `start`: when this session began (before loading)."""

    def __init__(self, start: float):
        self.start, self.before = start, 0.0

    def seconds(self) -> float:
        return round(self.before + time.time() - self.start, 1)

    def _checkpoint(self, args, state) -> Path:
        return Path(args.output_dir) / f"checkpoint-{state.global_step}"

    def on_train_begin(self, args, state, control, **kwargs):
        if state.global_step:  # resumed (none or a torn record: this session's time only)
            self.before = recorded_seconds(self._checkpoint(args, state)) or 0.0

    def on_save(self, args, state, control, **kwargs):
        if state.is_world_process_zero and self._checkpoint(args, state).is_dir():
            write_json(self._checkpoint(args, state) / ELAPSED, {"seconds": self.seconds()})


class TimeBudget(TrainerCallback):
    """Stops training once `seconds` of wall time have passed (checked after every step)."""

    def __init__(self, seconds: float):
        self.seconds = float(seconds)
        self.start = None

    def on_train_begin(self, args, state, control, **kwargs):
        self.start = time.time()

    def on_step_end(self, args, state, control, **kwargs):
        if self.start is not None and time.time() - self.start > self.seconds:
            control.should_training_stop = True
        return control
