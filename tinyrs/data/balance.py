"""Task balancing: under-represented tasks are replicated, at most `cap` times (5x in the
paper), towards a target count. The paper gives only the cap; the target is our choice
(the largest task's count by default) and is recorded in the report."""
from __future__ import annotations

from collections import Counter
from typing import Callable

import numpy as np

from ..config import ConfigError, is_number
from .vhm import task_of

TARGETS = ("max", "median")


def is_target(value) -> bool:
    """A balancing target: the largest or the median task count, or a number of entries."""
    return value in TARGETS or (is_number(value) and value > 0)


def balance_settings(section: dict | None, where: str) -> tuple[float, str | float]:
    """(cap, target) of a config's `balance` section, checked before any data is read."""
    section = section or {}
    cap, target = section.get("cap", 5.0), section.get("target", "max")
    if not is_number(cap) or cap < 1:
        raise ConfigError(f"{where}: balance.cap takes a number >= 1 (at most that many copies), not {cap!r}")
    if not is_target(target):
        raise ConfigError(f"{where}: balance.target is max, median or a number of entries > 0, not {target!r}")
    return float(cap), target


def balance_factors(counts: dict[str, int], cap: float = 5.0, target: str | float = "max") -> dict[str, float]:
    """Replication factor per task: target / count, clipped to [1, cap]. Never downsamples."""
    if cap < 1:
        raise ValueError(f"balance cap must be >= 1, got {cap}")
    if not counts:
        return {}
    if target == "max":
        goal = max(counts.values())
    elif target == "median":
        goal = float(np.median(list(counts.values())))
    else:
        goal = float(target)
    return {t: float(min(cap, max(1.0, goal / n))) for t, n in counts.items() if n > 0}


def balance(entries: list[dict], cap: float = 5.0, target: str | float = "max", seed: int = 0,
            key: Callable[[dict], str] = task_of) -> tuple[list[dict], list[dict]]:
    """Returns (balanced entries, report rows {task, before, factor, after}).

    A factor f replicates every entry of the task floor(f) times, plus a seeded random
    subset for the fractional part, so the count after is floor(f * before): never above the cap."""
    rng = np.random.default_rng(seed)
    groups: dict[str, list[dict]] = {}
    for e in entries:
        groups.setdefault(key(e), []).append(e)
    factors = balance_factors({t: len(g) for t, g in groups.items()}, cap, target)
    out, report = [], []
    for task in sorted(groups):
        group, f = groups[task], factors[task]
        whole = int(np.floor(f))
        extra = int(np.floor((f - whole) * len(group) + 1e-9))
        picked = rng.choice(len(group), size=extra, replace=False) if extra else []
        replicated = group * whole + [group[i] for i in sorted(picked)]
        out.extend(replicated)
        report.append({"task": task, "before": len(group), "factor": round(len(replicated) / len(group), 3),
                       "after": len(replicated)})
    order = rng.permutation(len(out))
    return [out[i] for i in order], report


def task_counts(entries: list[dict], key: Callable[[dict], str] = task_of) -> Counter:
    return Counter(key(e) for e in entries)
