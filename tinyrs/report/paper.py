"""The paper's Tables I-VI as data (`paper_numbers.json`), regenerated as text, and checked.

Every printed number is a cell {table, row, column, value, meaning}. `paper_rows(t)` gives a table
back in print order; `check_paper()` recomputes what the tables derive (Table I's averages from its
rows) and compares the numbers the tables share (e.g. Table II's PSCR row is TinyRS-R1 of Table I),
flagging every reported value the rows do not give.
"""
from __future__ import annotations

import json
from fractions import Fraction
from functools import lru_cache
from pathlib import Path

NUMBERS = Path(__file__).with_name("paper_numbers.json")
TABLES = ("I", "II", "III", "IV", "V", "VI")
CAPABILITIES = ("CLS", "VQA", "Ground.", "Gen. Know.")
# Values are printed to 0.1: a printed average may differ from the mean of the printed rows by up to
# 0.05 (its own rounding) + 0.05 (the rows' rounding, averaged) without any error in the paper.
ROUNDING = Fraction(1, 10)


@lru_cache(maxsize=1)
def paper_numbers() -> dict:
    return json.loads(NUMBERS.read_text())


def cell(table: str, row: str, column: str) -> float:
    for c in paper_numbers()["cells"]:
        if (c["table"], c["row"], c["column"]) == (table, row, column):
            return c["value"]
    raise KeyError(f"Table {table} has no cell ({row!r}, {column!r})")


def paper_rows(table: str) -> list[dict]:
    """One dict per printed row: the row's label columns, then the printed values."""
    spec = paper_numbers()["tables"][table]
    values = {(c["row"], c["column"]): c["value"] for c in paper_numbers()["cells"] if c["table"] == table}
    rows = []
    for r in spec["rows"]:
        label = {"I": lambda: {"group": r["group"], "benchmark": r.get("printed", r["name"])},
                 "II": lambda: {k: "x" if r[k] else "" for k in "PSCR"},
                 "IV": lambda: {"model": r["model"], "balanced": "x" if r["balanced"] else ""},
                 "V": lambda: {"size": r["size"], "Tr.": "x" if r["trained"] else "", "Rs.": "x" if r["reasoning"] else ""},
                 }.get(table, lambda: {"row": r["name"]})()
        rows.append({**label, **{c["name"]: values[(r["name"], c["name"])] for c in spec["columns"]}})
    return rows


def capability_values(table: str, row: str) -> dict[str, float]:
    """A row's four capability numbers (Table I: a column's averages, DIOR-RSVG and LHRS-Bench)."""
    if table == "I":
        return {"CLS": cell("I", "CLS average", row), "VQA": cell("I", "VQA average", row),
                "Ground.": cell("I", "DIOR-RSVG", row), "Gen. Know.": cell("I", "LHRS-Bench", row)}
    return {c: cell(table, row, c) for c in CAPABILITIES}


# Rows that print the same model's numbers twice (table, row) <-> (table, row).
SAME_MODEL = [(("I", "TinyRS-R1"), ("II", "PSCR")), (("I", "TinyRS"), ("II", "PS")),
              (("II", "PSCR"), ("III", "Continuous")), (("II", "PS"), ("IV", "TinyRS balanced")),
              (("II", "PSCR"), ("IV", "TinyRS-R1 balanced")), (("II", "none"), ("V", "2B none")),
              (("II", "PS"), ("V", "2B trained")), (("II", "PSCR"), ("V", "2B reasoning")),
              (("II", "PSCR"), ("VI", "GPT-4.1-mini"))]


def round_half_up(x: Fraction, digits: int = 1) -> float:
    q = Fraction(10) ** digits
    return float(Fraction(int(x * q + Fraction(1, 2)), q) if x >= 0 else -round_half_up(-x, digits))


def check_paper() -> list[dict]:
    """Every derived or repeated number, recomputed from the printed rows: one row per check. `ok` is
    False where the reported value is not what the printed rows give; `within_rounding` says whether
    the difference could come from the rows' own rounding."""
    out = []
    spec = paper_numbers()["tables"]["I"]
    for r in (r for r in spec["rows"] if "average_of" in r):
        for c in spec["columns"]:
            parts = [Fraction(str(cell("I", x, c["name"]))) for x in r["average_of"]]
            mean = sum(parts) / len(parts)
            reported = cell("I", r["name"], c["name"])
            out.append({"check": f"Table I {r['name']}", "column": c["name"], "reported": reported,
                        "computed": round_half_up(mean), "exact": round(float(mean), 2),
                        "ok": round_half_up(mean) == reported,
                        "within_rounding": abs(Fraction(str(reported)) - mean) <= ROUNDING})
    for (ta, ra), (tb, rb) in SAME_MODEL:
        a, b = capability_values(ta, ra), capability_values(tb, rb)
        for cap in CAPABILITIES:
            out.append({"check": f"Table {tb} {rb} = Table {ta} {ra}", "column": cap, "reported": b[cap],
                        "computed": a[cap], "exact": a[cap], "ok": a[cap] == b[cap], "within_rounding": a[cap] == b[cap]})
    return out


def checks_summary(table: str) -> str:
    """What a table notebook prints under the paper's table: how many of its numbers were recomputed or
    compared, and those the rows do not give."""
    from .tables import text_table

    checks = [c for c in check_paper() if c["check"].startswith(f"Table {table} ")]
    failing = [c for c in checks if not c["ok"]]
    return (f"{len(checks)} numbers of Table {table} recomputed or compared; {len(failing)} do not follow from "
            f"the rows:\n" + text_table(failing or [{"check": "none"}], digits=2))
