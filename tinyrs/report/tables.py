"""Plain-text tables: deterministic output that nbval can compare."""
from __future__ import annotations

from .paper import CAPABILITIES as CAPS  # the four capability columns every table shares


def _fmt(v, digits: int) -> str:
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return "" if v is None else str(v)


def text_table(rows: list[dict], columns: list[str] | None = None, digits: int = 3) -> str:
    """Rows of dicts as an aligned text table (floats to `digits` decimals, None as blank)."""
    if not rows:
        return "(empty)"
    columns = columns or list(rows[0])
    cells = [[_fmt(r.get(c, ""), digits) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    line = lambda vals: "  ".join(v.ljust(w) for v, w in zip(vals, widths)).rstrip()  # noqa: E731
    return "\n".join([line(columns), line(["-" * w for w in widths])] + [line(r) for r in cells])


# --- the paper's tables reproduced from a run's results (results/<profile>/arms.json) -----------------


def node_capabilities(node: dict, mode: str) -> dict[str, float | None]:
    """A node's four capability numbers in percent (Table I's averages, grounding Acc@0.5, LHRS-Bench), unrounded:
    the claims subtract them (tables print one decimal)."""
    avg = node["averages"][mode]
    return {c: None if avg.get(c) is None else 100 * avg[c] for c in CAPS}


def node_capability_se(node: dict, mode: str, questions: int = 0) -> dict[str, float]:
    """The standard error (points) of each of a node's capability averages, from its benchmarks' scores:
    binomial, with the rate smoothed as (k + 1) / (n + 2) so that a score of 0 or 100 on 30 questions is not
    taken as exact. n per benchmark: the questions it counted, from the node's recorded outcomes, else
    `questions` (0: unknown, no error)."""
    from ..evaluation.benchmarks import BENCHMARKS

    recorded, out = node.get("outcomes") or {}, {}
    for cap in CAPS:
        terms = []
        for b in (b for b in BENCHMARKS if b.group == cap):
            rate = node["benchmarks"].get(b.file, {}).get(mode)
            if rate is None:
                continue
            seen = (recorded.get(b.file) or {}).get(mode)
            n = len(seen) - seen.count("-") if seen else questions
            smoothed = (rate * n + 1) / (n + 2)
            terms.append(smoothed * (1 - smoothed) / n if n else None)
        if terms and None not in terms:
            out[cap] = 100 * sum(terms) ** 0.5 / len(terms)
    return out


def node_capability_outcomes(node: dict, mode: str) -> dict[str, dict[str, tuple[str, str]]]:
    """{capability: {benchmark file: (questions digest, outcomes)}} of a node, from the per-question outcomes
    arms.json records (none for nodes recorded before it did)."""
    from ..evaluation.benchmarks import BENCHMARKS

    recorded, out = node.get("outcomes") or {}, {}
    for b in BENCHMARKS:
        if b.file in recorded and b.group in CAPS:
            out.setdefault(b.group, {})[b.file] = (recorded[b.file]["questions"], recorded[b.file][mode])
    return out


def paired_se(first: dict | None, second: dict | None) -> float | None:
    """The standard error (points) of the difference of two nodes' averages of one capability, paired question
    by question: first, second: {benchmark file: (questions digest, outcomes)}. Per benchmark, from the share of
    questions only the first gets right (b of n) and only the second (c): var = (p10 + p01 - (p10 - p01)^2) / n,
    smoothed as p10 = (b + 1/2) / (n + 1) so that two models agreeing on all 30 questions are not taken as
    exactly equal. None where they were not asked the same questions or a question is not counted in one
    (compat grounding drops unparsable boxes): then only the unpaired error applies."""
    if not first or not second or set(first) != set(second):
        return None
    variance = 0.0
    for f, (questions, a) in first.items():
        other_questions, b = second[f]
        if questions != other_questions or len(a) != len(b) or "-" in a + b or not a:
            return None
        n = len(a)
        p10 = (sum(x > y for x, y in zip(a, b)) + 0.5) / (n + 1)
        p01 = (sum(x < y for x, y in zip(a, b)) + 0.5) / (n + 1)
        variance += (p10 + p01 - (p10 - p01) ** 2) / n
    return 100 * variance ** 0.5 / len(first)


def reproduced_rows(table: str, arms: dict, plan: dict, mode: str) -> list[dict]:
    """Table II, III, IV or VI reproduced: one row per table row of the plan, the four capabilities."""
    return [{"row": row, "stages": arms["nodes"][node]["stages"], **node_capabilities(arms["nodes"][node], mode)}
            for row, node in plan["tables"][table].items()]


def reproduced_table1(arms: dict, plan: dict) -> list[dict]:
    """Table I reproduced: per benchmark, TinyRS-R1 and TinyRS in both scoring modes (percent), and the
    score of always giving the commonest answer of the questions asked (the floor to read them against)."""
    from ..evaluation.benchmarks import BENCHMARKS

    cols = {name: arms["nodes"][node] for name, node in plan["tables"]["I"].items()}
    prior = next(iter(cols.values())).get("commonest_answer", {})
    pct = lambda v: None if v is None else round(100 * v, 1)  # noqa: E731
    rows = []

    def add(group, label, get, key):
        row = {"group": group, "benchmark": label}
        for name, node in cols.items():
            for mode in ("strict", "compat"):
                row[f"{name} {mode}"] = pct(get(node, mode))
        rows.append({**row, "commonest answer": pct(prior.get(key))})

    for group in CAPS:
        members = [b for b in BENCHMARKS if b.group == group]
        for b in members:
            add(group, b.name, lambda n, m, f=b.file: n["benchmarks"].get(f, {}).get(m), b.file)
        if len(members) > 1:
            add(group, "Average", lambda n, m, g=group: n["averages"][m].get(g), f"avg {group}")
    return rows


def as_capability_dict(rows: list[dict], key: str = "row") -> dict[str, dict]:
    """{row name: {capability: value}} for the claims checks."""
    return {r[key]: {c: r[c] for c in CAPS} for r in rows}
