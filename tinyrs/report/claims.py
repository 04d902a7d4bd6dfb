"""The paper's claims about each table, checked on the paper's own numbers and on a reproduction.

Each claim compares capability values of two rows (or more): `gain(a, b, cap)` holds when row a's
value is above row b's by more than `margin` points (`loss` below, `same` within). A claim is checked twice: on the printed
numbers (does the paper's text follow from its table?) and on the toy run's numbers (does the toy
agree?). The result is a table of verdicts the notebooks print; nothing is asserted by hand.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from .paper import CAPABILITIES as CAPS

MARGIN = 0.5  # points (percent): a smaller difference counts as "no change"


@dataclass
class Claim:
    table: str
    text: str  # the paper's words, shortened
    check: Callable[[dict], bool]  # rows -> holds?
    numbers: Callable[[dict], str]  # rows -> the numbers behind it


def _d(rows, a, b, cap):
    return rows[a][cap] - rows[b][cap]


def gain(a, b, cap, margin=MARGIN):
    return lambda rows: _d(rows, a, b, cap) > margin


def loss(a, b, cap, margin=MARGIN):
    return lambda rows: _d(rows, a, b, cap) < -margin


def same(a, b, cap, margin=MARGIN):
    return lambda rows: abs(_d(rows, a, b, cap)) <= margin


def all_of(*checks):
    return lambda rows: all(c(rows) for c in checks)


def diff_text(a, b, caps=CAPS):
    return lambda rows: ", ".join(f"{c} {_d(rows, a, b, c):+.1f}" for c in caps)


def mean_caps(row: dict) -> float:
    return sum(row[c] for c in CAPS) / len(CAPS)


CLAIMS = [
    Claim("I", "TinyRS-R1 beats TinyRS on classification and grounding",
          all_of(gain("TinyRS-R1", "TinyRS", "CLS"), gain("TinyRS-R1", "TinyRS", "Ground.")),
          diff_text("TinyRS-R1", "TinyRS", ("CLS", "Ground."))),
    Claim("I", "TinyRS beats TinyRS-R1 on VQA (concise answers suit exact match)", gain("TinyRS", "TinyRS-R1", "VQA"),
          diff_text("TinyRS", "TinyRS-R1", ("VQA",))),
    Claim("I", "TinyRS slightly surpasses TinyRS-R1 on LHRS-Bench", gain("TinyRS", "TinyRS-R1", "Gen. Know.", 0.0),
          diff_text("TinyRS", "TinyRS-R1", ("Gen. Know.",))),
    Claim("II", "P: gains in CLS, grounding and knowledge, no change in VQA (PS vs S)",
          all_of(gain("PS", "S", "CLS"), gain("PS", "S", "Ground."), gain("PS", "S", "Gen. Know."), same("PS", "S", "VQA")),
          diff_text("PS", "S")),
    Claim("II", "S is the key driver: it improves all four (PSC vs PC)",
          all_of(*(gain("PSC", "PC", c) for c in CAPS)), diff_text("PSC", "PC")),
    Claim("II", "C improves CLS, grounding and knowledge but hurts VQA (PSCR vs PSR)",
          all_of(gain("PSCR", "PSR", "CLS"), gain("PSCR", "PSR", "Ground."), gain("PSCR", "PSR", "Gen. Know."),
                 loss("PSCR", "PSR", "VQA")), diff_text("PSCR", "PSR")),
    Claim("II", "R improves grounding (significantly) and CLS, lowers VQA (PSCR vs PSC)",
          all_of(gain("PSCR", "PSC", "Ground."), gain("PSCR", "PSC", "CLS"), loss("PSCR", "PSC", "VQA")),
          diff_text("PSCR", "PSC")),
    Claim("II", "Zero GRPO boosts grounding but harms the other tasks (R vs none)",
          all_of(gain("R", "none", "Ground."), loss("R", "none", "CLS"), loss("R", "none", "VQA"),
                 loss("R", "none", "Gen. Know.")), diff_text("R", "none")),
    Claim("III", "Continuous rewards perform best overall (mean of the four)",
          lambda rows: all(mean_caps(rows["Continuous"]) >= mean_caps(rows[r]) for r in ("Quantized", "Binary")),
          lambda rows: ", ".join(f"{r} {mean_caps(rows[r]):.1f}" for r in ("Continuous", "Quantized", "Binary"))),
    Claim("IV", "Balancing boosts CLS and VQA, for TinyRS and TinyRS-R1",
          all_of(*(gain(f"{m} balanced", f"{m} unbalanced", c) for m in ("TinyRS", "TinyRS-R1") for c in ("CLS", "VQA"))),
          lambda rows: "; ".join(f"{m}: " + diff_text(f"{m} balanced", f"{m} unbalanced", ("CLS", "VQA"))(rows)
                                 for m in ("TinyRS", "TinyRS-R1"))),
    Claim("IV", "Balancing costs a little grounding and knowledge",
          all_of(*(lambda rows, m=m, c=c: _d(rows, f"{m} balanced", f"{m} unbalanced", c) <= 0
                   for m in ("TinyRS", "TinyRS-R1") for c in ("Ground.", "Gen. Know."))),
          lambda rows: "; ".join(f"{m}: " + diff_text(f"{m} balanced", f"{m} unbalanced", ("Ground.", "Gen. Know."))(rows)
                                 for m in ("TinyRS", "TinyRS-R1"))),
]


def evaluator_claim(first: str, second: str) -> Claim:
    """Table VI: the trends stay the same under the other evaluator (every capability within 4 points)."""
    return Claim("VI", "The results do not depend on the evaluator (each capability within 4 points)",
                 lambda rows: all(abs(_d(rows, first, second, c)) <= 4.0 for c in CAPS), diff_text(second, first))


def check_claims(table: str, rows: dict[str, dict], extra: list[Claim] = ()) -> list[dict]:
    """Verdicts of the table's claims on `rows` ({row name: {capability: percent}})."""
    out = []
    for c in [c for c in CLAIMS if c.table == table] + [c for c in extra if c.table == table]:
        try:
            out.append({"claim": c.text, "holds": "yes" if c.check(rows) else "no", "numbers": c.numbers(rows)})
        except (KeyError, TypeError):
            out.append({"claim": c.text, "holds": "n/a", "numbers": "a row is missing"})
    return out
