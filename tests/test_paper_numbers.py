"""tinyrs/report/paper_numbers.json against the paper's own text, table by table, and the checks of
the tables code (averages recomputed from the rows, numbers repeated across tables)."""
import re

import pytest

from tinyrs.paths import SHARED
from tinyrs.report.paper import TABLES, check_paper, paper_numbers, paper_rows, round_half_up

PAPER = SHARED / "paper" / "tinyrs-r1-paper.txt"
# How each table's header line starts in the paper's text.
HEADERS = {"I": "| Capability |", "II": "| P | S | C | R |", "III": "| Function |", "IV": "| Model | Balanced |",
           "V": "| Size | Tr. |", "VI": "| Evaluator |"}


def paper_table_lines(table: str) -> list[list[str]]:
    """The cells of every line of one table in the paper's text (the block of '|' lines after its header)."""
    if not PAPER.exists():
        pytest.fail(f"the paper's text is missing: {PAPER}")
    lines = PAPER.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(HEADERS[table]))
    block = []
    for line in lines[start:]:
        others = [h for t, h in HEADERS.items() if t != table]
        if not line.startswith("|") or any(line.startswith(h) for h in others):  # tables can follow without a gap
            break
        block.append([c.strip() for c in line.strip().strip("|").split("|")])
    return block


def numbers(cells: list[str]) -> list[float]:
    return [float(c) for c in cells if re.fullmatch(r"\d+(\.\d+)?", c)]


@pytest.mark.parametrize("table", TABLES)
def test_every_number_matches_the_paper(table):
    printed = [cells for cells in paper_table_lines(table) if numbers(cells)]
    spec = paper_numbers()["tables"][table]
    assert len(printed) == len(spec["rows"]), f"Table {table}: {len(printed)} rows in the paper"
    cells = {(c["row"], c["column"]): c["value"] for c in paper_numbers()["cells"] if c["table"] == table}
    for line, row in zip(printed, spec["rows"]):
        ours = [cells[(row["name"], col["name"])] for col in spec["columns"]]
        assert numbers(line) == ours, f"Table {table}, row {row['name']}: paper {numbers(line)}, file {ours}"
        # check marks: the stages of Table II, 'balanced' of Table IV, 'trained' and 'reasoning' of Table V
        marks = {"II": lambda r: sum(r[k] for k in "PSCR"), "IV": lambda r: int(r["balanced"]),
                 "V": lambda r: int(r["trained"]) + int(r["reasoning"])}.get(table)
        if marks:
            assert line.count("✓") == marks(row), f"Table {table}, row {row['name']}: check marks differ"
        if table in ("I", "III", "VI"):  # the row's printed label
            assert row.get("printed", row["name"]) in line


def test_every_cell_has_a_meaning_and_is_unique():
    keys = [(c["table"], c["row"], c["column"]) for c in paper_numbers()["cells"]]
    assert len(keys) == len(set(keys))
    assert all(c["meaning"] for c in paper_numbers()["cells"])
    assert "lower is faster" in next(c for c in paper_numbers()["cells"] if c["column"] == "Spd.")["meaning"]


def test_averages_are_recomputed_and_the_one_that_does_not_follow_is_flagged():
    checks = check_paper()
    averages = [c for c in checks if "average" in c["check"]]
    assert len(averages) == 14  # two averages x seven columns
    flagged = [c for c in averages if not c["ok"]]
    # TinyRS-R1's classification average: the five printed rows give 85.52 -> 85.5, the paper prints 85.6
    assert [(c["column"], c["reported"], c["computed"]) for c in flagged] == [("TinyRS-R1", 85.6, 85.5)]
    assert flagged[0]["within_rounding"]  # explainable by the rows' own rounding
    assert all(c["ok"] for c in checks if "=" in c["check"])  # numbers repeated across tables agree


def test_round_half_up_and_table_text():
    from fractions import Fraction

    assert round_half_up(Fraction("83.05")) == 83.1 and round_half_up(Fraction("83.04")) == 83.0
    rows = paper_rows("II")
    assert rows[0] == {"P": "x", "S": "x", "C": "x", "R": "x", "CLS": 85.6, "VQA": 76.0, "Ground.": 74.9, "Gen. Know.": 56.8}
    assert rows[-1]["P"] == "" and rows[-1]["Ground."] == 6.7


def test_claims_subtract_the_scores_before_rounding():
    """17 and 10 of 30 questions: 56.67 - 33.33 is 23.3 points, not the 23.4 of the rounded 56.7 - 33.3."""
    from tinyrs.report.claims import diff_text
    from tinyrs.report.tables import node_capabilities

    node = lambda v: {"averages": {"strict": {"CLS": v, "VQA": v, "Ground.": v, "Gen. Know.": v}}}  # noqa: E731
    rows = {"a": node_capabilities(node(17 / 30), "strict"), "b": node_capabilities(node(10 / 30), "strict")}
    assert diff_text("a", "b", ("CLS",))(rows) == "CLS +23.3"


def test_a_claim_is_decided_only_beyond_two_standard_errors():
    """Rows with standard errors (a reproduction's) get "undecided" where a difference is within two of them
    of the line it is tested against; rows without (the paper's) are judged as printed."""
    from tinyrs.report.claims import CLAIMS, check_claims
    from tinyrs.report.tables import node_capability_se

    claim = next(c for c in CLAIMS if c.text.startswith("TinyRS beats TinyRS-R1 on VQA"))
    row = lambda vqa, se=None: {"CLS": 50.0, "VQA": vqa, "Ground.": 0.0, "Gen. Know.": 30.0,  # noqa: E731
                                **({"_se": {"VQA": se}} if se is not None else {})}
    verdict = lambda a, b: check_claims("I", {"TinyRS": a, "TinyRS-R1": b}, [])[1]["holds"]  # noqa: E731
    assert verdict(row(60.0), row(50.0)) == "yes" and verdict(row(50.0), row(60.0)) == "no"  # no errors: as printed
    assert verdict(row(60.0, 4.0), row(50.0, 3.0)) == "undecided"  # +10, SE 5: within two
    assert verdict(row(62.0, 4.0), row(50.0, 3.0)) == "yes" and verdict(row(38.0, 4.0), row(50.0, 3.0)) == "no"
    assert "VQA +10.0 (SE 5.0)" in check_claims("I", {"TinyRS": row(60.0, 4.0), "TinyRS-R1": row(50.0, 3.0)})[1]["numbers"]
    assert claim.check({"TinyRS": row(60.0, 4.0), "TinyRS-R1": row(50.0, 3.0)}) is None
    # 15 of 30 right on each of two benchmarks: sqrt(2 * (16/32)(16/32) / 30) / 2 = 6.45 points; 0 of 30 is not exact
    from tinyrs.evaluation.benchmarks import BENCHMARKS

    vqa = [b.file for b in BENCHMARKS if b.group == "VQA"][:2]
    se = node_capability_se({"benchmarks": {f: {"strict": 0.5} for f in vqa}}, "strict", 30)
    assert abs(se["VQA"] - 100 * (2 * 0.25 / 30) ** 0.5 / 2) < 1e-9 and set(se) == {"VQA"}
    dior = [b.file for b in BENCHMARKS if b.group == "Ground."]
    assert node_capability_se({"benchmarks": {f: {"strict": 0.0} for f in dior}}, "strict", 30)["Ground."] > 3
    # n from the recorded outcomes where there are some (all questions on the paper profile, limit 0): compat
    # grounding counts only the parsed boxes
    counted = {"benchmarks": {f: {"compat": 0.5} for f in dior}, "outcomes": {f: {"compat": "10" * 5 + "-" * 20} for f in dior}}
    assert node_capability_se(counted, "compat")["Ground."] == pytest.approx(100 * (6 / 12 * 6 / 12 / 10) ** 0.5)
    assert node_capability_se({"benchmarks": {f: {"strict": 0.5} for f in dior}}, "strict") == {}  # n unknown


def test_claims_pair_two_rows_question_by_question_where_both_carry_outcomes():
    """Two models asked the same 30 questions that differ on a few of them: the paired error is far below the
    unpaired one, and decides what the unpaired one leaves undecided; other questions (or a dropped
    question) leave only the unpaired error."""
    from tinyrs.report.claims import check_claims
    from tinyrs.report.tables import paired_se

    same_30 = ("q1", "1" * 20 + "0" * 10)
    assert paired_se({"f": same_30}, {"f": same_30}) == pytest.approx(100 * (2 * 0.5 / 31 - 0) ** 0.5 / 30 ** 0.5)
    # 6 of 30 right only in the first: p10 = 6.5 / 31, p01 = 0.5 / 31
    six_more = ("q1", "1" * 26 + "0" * 4)
    p10, p01 = 6.5 / 31, 0.5 / 31
    assert paired_se({"f": six_more}, {"f": same_30}) == pytest.approx(100 * ((p10 + p01 - (p10 - p01) ** 2) / 30) ** 0.5)
    assert paired_se({"f": six_more}, {"f": ("q2", same_30[1])}) is None  # other questions
    assert paired_se({"f": ("q1", "-" + six_more[1][1:])}, {"f": same_30}) is None  # a dropped question
    assert paired_se({"f": six_more}, {"g": same_30}) is None and paired_se(None, {"f": same_30}) is None
    # two benchmarks of a capability: the mean's error is the root of the summed variances over 2
    two = paired_se({"f": six_more, "g": six_more}, {"f": same_30, "g": same_30})
    assert two == pytest.approx(paired_se({"f": six_more}, {"f": same_30}) / 2 ** 0.5)

    def row(vqa_outcomes, se, paired=True):
        vqa = 100 * vqa_outcomes.count("1") / 30
        return {"CLS": 50.0, "VQA": vqa, "Ground.": 0.0, "Gen. Know.": 30.0, "_se": {"VQA": se},
                **({"_outcomes": {"VQA": {"f": ("q1", vqa_outcomes)}}} if paired else {})}

    verdict = lambda a, b: check_claims("I", {"TinyRS": a, "TinyRS-R1": b}, [])[1]  # noqa: E731
    unpaired = verdict(row(six_more[1], 8.0, False), row(same_30[1], 8.6, False))
    assert unpaired["holds"] == "undecided" and "VQA +20.0 (SE 11.7)" in unpaired["numbers"]
    paired = verdict(row(six_more[1], 8.0), row(same_30[1], 8.6))
    assert paired["holds"] == "yes" and "VQA +20.0 (SE 7.9)" in paired["numbers"]
