"""The paper's claims about each table, checked on the paper's own numbers and on a reproduction.

Each claim compares capability values of two rows (or more): `gain(a, b, cap)` holds when row a's
value is above row b's by more than `margin` points (`loss` below, `same` within). A claim is checked twice: on the printed
numbers (does the paper's text follow from its table?) and on the toy run's numbers (does the toy
agree?). The result is a table of verdicts the notebooks print; nothing is asserted by hand.

Rows that carry standard errors (the reproduction's: `_se`, {capability: points}, from its question counts,
and `_outcomes`, each question's outcome, which pair two rows question by question where both have them)
are judged with them: a comparison is decided only when its difference is more than two standard errors
from the line it is tested against, else it is "undecided" (a claim with an undecided comparison and none
that fails is undecided). The paper gives no sample sizes, so its rows carry none and are judged as printed.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from .paper import CAPABILITIES as CAPS
from .tables import paired_se

MARGIN = 0.5  # points (percent): a smaller difference counts as "no change"
NOISE = 2.0  # standard errors: a difference closer than this to the tested line is not decided
VERDICTS = {True: "yes", False: "no", None: "undecided"}


@dataclass
class Claim:
    table: str
    text: str  # the paper's words, shortened
    check: Callable[[dict], bool | None]  # rows -> holds? (None: undecided)
    numbers: Callable[[dict], str]  # rows -> the numbers behind it


def _d(rows, a, b, cap):
    return rows[a][cap] - rows[b][cap]


def _se(rows, a, b, cap) -> float:
    """Standard error of the difference of two rows' values: paired question by question where both rows carry
    their outcomes on the same questions, else from each row's own (0 for rows that carry none)."""
    paired = paired_se((rows[a].get("_outcomes") or {}).get(cap), (rows[b].get("_outcomes") or {}).get(cap))
    if paired is not None:
        return paired
    return ((rows[a].get("_se") or {}).get(cap, 0.0) ** 2 + (rows[b].get("_se") or {}).get(cap, 0.0) ** 2) ** 0.5


def above(value: float, se: float, line: float, strict: bool = True) -> bool | None:
    """value > line (or >= with strict=False): True or False when decided beyond NOISE standard errors, else None."""
    low, high = value - NOISE * se, value + NOISE * se
    if low > line or (not strict and low >= line):
        return True
    if high < line or (strict and high <= line):
        return False
    return None


def within(value: float, se: float, bound: float) -> bool | None:
    """|value| <= bound, decided beyond NOISE standard errors, else None."""
    if abs(value) + NOISE * se <= bound:
        return True
    if abs(value) - NOISE * se > bound:
        return False
    return None


def gain(a, b, cap, margin=MARGIN):
    return lambda rows: above(_d(rows, a, b, cap), _se(rows, a, b, cap), margin)


def loss(a, b, cap, margin=MARGIN):
    return lambda rows: above(-_d(rows, a, b, cap), _se(rows, a, b, cap), margin)


def same(a, b, cap, margin=MARGIN):
    return lambda rows: within(_d(rows, a, b, cap), _se(rows, a, b, cap), margin)


def combined(verdicts) -> bool | None:
    """All hold: False if one fails, undecided if none fails but one is undecided."""
    verdicts = list(verdicts)
    return False if False in verdicts else None if None in verdicts else True


def all_of(*checks):
    return lambda rows: combined(c(rows) for c in checks)


def diff_text(a, b, caps=CAPS):
    def text(rows):
        return ", ".join(f"{c} {_d(rows, a, b, c):+.1f}" + (f" (SE {se:.1f})" if (se := _se(rows, a, b, c)) else "")
                         for c in caps)
    return text


def mean_caps(row: dict) -> float:
    return sum(row[c] for c in CAPS) / len(CAPS)


def best_mean(best: str, others: tuple[str, ...]):
    """Row `best` has the highest mean of the four capabilities (ties count)."""
    def check(rows):
        return combined(above(mean_caps(rows[best]) - mean_caps(rows[r]),
                              sum(_se(rows, best, r, c) ** 2 for c in CAPS) ** 0.5 / len(CAPS), 0.0, strict=False)
                        for r in others)
    return check


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
    Claim("III", "Continuous rewards perform best overall (mean of the four)", best_mean("Continuous", ("Quantized", "Binary")),
          lambda rows: ", ".join(f"{r} {mean_caps(rows[r]):.1f}" for r in ("Continuous", "Quantized", "Binary"))),
    Claim("IV", "Balancing boosts CLS and VQA, for TinyRS and TinyRS-R1",
          all_of(*(gain(f"{m} balanced", f"{m} unbalanced", c) for m in ("TinyRS", "TinyRS-R1") for c in ("CLS", "VQA"))),
          lambda rows: "; ".join(f"{m}: " + diff_text(f"{m} balanced", f"{m} unbalanced", ("CLS", "VQA"))(rows)
                                 for m in ("TinyRS", "TinyRS-R1"))),
    Claim("IV", "Balancing costs a little grounding and knowledge",
          all_of(*(lambda rows, m=m, c=c: above(-_d(rows, f"{m} balanced", f"{m} unbalanced", c),
                                                 _se(rows, f"{m} balanced", f"{m} unbalanced", c), 0.0, strict=False)
                   for m in ("TinyRS", "TinyRS-R1") for c in ("Ground.", "Gen. Know."))),
          lambda rows: "; ".join(f"{m}: " + diff_text(f"{m} balanced", f"{m} unbalanced", ("Ground.", "Gen. Know."))(rows)
                                 for m in ("TinyRS", "TinyRS-R1"))),
]


def evaluator_claim(first: str, second: str) -> Claim:
    """Table VI: the trends stay the same under the other evaluator (every capability within 4 points)."""
    return Claim("VI", "The results do not depend on the evaluator (each capability within 4 points)",
                 all_of(*(same(second, first, c, 4.0) for c in CAPS)), diff_text(second, first))


def check_claims(table: str, rows: dict[str, dict], extra: list[Claim] = ()) -> list[dict]:
    """Verdicts of the table's claims on `rows` ({row name: {capability: percent}})."""
    out = []
    for c in [c for c in CLAIMS if c.table == table] + [c for c in extra if c.table == table]:
        try:
            out.append({"claim": c.text, "holds": VERDICTS[c.check(rows)], "numbers": c.numbers(rows)})
        except (KeyError, TypeError):
            out.append({"claim": c.text, "holds": "n/a", "numbers": "a row is missing"})
    return out
