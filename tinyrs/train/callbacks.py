"""Trainer callbacks: a metrics log on disk and a wall-clock budget."""
from __future__ import annotations

import json
import time
from pathlib import Path

from transformers import TrainerCallback


class JsonlMetrics(TrainerCallback):
    """Appends every log record of the trainer (loss, learning rate, rewards, ...) to a JSON-lines file."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and state.is_world_process_zero:
            with open(self.path, "a") as f:
                f.write(json.dumps({"step": state.global_step, "epoch": state.epoch, **logs}) + "\n")


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
