"""What the table notebooks (09-14) show: each paper table beside its reproduction, and the verdicts
of the paper's claims on both. Everything is read from the package's paper numbers and from the
committed results of a run (`results/<profile>/arms.json`, `table5.json`)."""
from __future__ import annotations

import warnings
from pathlib import Path

from .. import paths
from .ablations import load_arms, load_plan
from .claims import CAPS, check_claims, evaluator_claim
from .paper import capability_values, paper_numbers
from .tables import as_capability_dict, node_capability_outcomes, node_capability_se, reproduced_rows

MODES = ("strict", "compat")


def open_results(profile: str, results_dir: str | Path | None = None) -> tuple[Path, dict, dict, str]:
    """A table notebook's inputs: the results folder, its arms.json, the ablation plan, and a line saying
    what was evaluated and how."""
    results = Path(results_dir) if results_dir else paths.RESULTS / profile
    arms, plan = load_arms(profile, results), load_plan(profile)
    header = (f"{profile} results: {results / 'arms.json'} ({len(arms['nodes'])} arms; evaluation: "
              f"{arms['evaluation']['limit'] or 'all'} questions per benchmark, reasoning models asked with "
              f"'{arms['evaluation']['think_prompt']}')")
    return results, arms, plan, header


def paper_capabilities(table: str) -> dict[str, dict]:
    """{row: {capability: percent}} of a paper table (Table I: its two TinyRS columns)."""
    if table == "I":
        return {m: capability_values("I", m) for m in ("TinyRS-R1", "TinyRS")}
    return {r["name"]: capability_values(table, r["name"]) for r in paper_numbers()["tables"][table]["rows"]}


def toy_capabilities(table: str, profile: str = "toy", results_dir=None, mode: str = "strict") -> dict[str, dict]:
    """{row: {capability: percent, "_se": {capability: its standard error}, "_outcomes": {capability: its
    benchmarks' per-question outcomes}}} of the reproduced table, in one scoring mode (the errors from the
    questions each benchmark counted, where arms.json records them; the claims pair two rows' outcomes
    question by question where both have them)."""
    arms, plan = load_arms(profile, results_dir), load_plan(profile)
    rows = as_capability_dict(reproduced_rows(table, arms, plan, mode))  # Table I: its two models as rows
    questions = int((arms.get("evaluation") or {}).get("limit") or 0)  # for nodes recorded without outcomes
    for row, node in plan["tables"][table].items():
        rows[row]["_se"] = node_capability_se(arms["nodes"][node], mode, questions)
        rows[row]["_outcomes"] = node_capability_outcomes(arms["nodes"][node], mode)
    return rows


def claims_side_by_side(table: str, profile: str = "toy", results_dir=None) -> list[dict]:
    """One row per claim: does it hold on the paper's numbers, and on the reproduction in each mode."""
    # Table VI's rows are named by evaluator, differently in the paper and in a reproduction
    p_extra = [evaluator_claim(*paper_capabilities("VI"))] if table == "VI" else []
    t_extra = [evaluator_claim(*load_plan(profile)["tables"]["VI"])] if table == "VI" else []
    paper = check_claims(table, paper_capabilities(table), p_extra)
    toys = {m: check_claims(table, toy_capabilities(table, profile, results_dir, m), t_extra) for m in MODES}
    out = []
    for i, p in enumerate(paper):
        row = {"claim": p["claim"], "paper": p["holds"]}
        for m in MODES:
            row[f"{profile} {m}"] = toys[m][i]["holds"]
        row["paper numbers"] = p["numbers"]
        row[f"{profile} numbers (strict)"] = toys["strict"][i]["numbers"]
        out.append(row)
    return out


# --- Table V: speed and memory ------------------------------------------------------------------------

def table5_rows(profile: str = "toy", results_dir=None) -> list[dict]:
    """The reproduced Table V: latency, throughput and weights per model, with the small model's scores."""
    import json

    from .tables import node_capabilities

    arms = load_arms(profile, results_dir)
    t5 = json.loads((Path(results_dir or paths.RESULTS / profile) / "table5.json").read_text())
    rows = []
    for m in t5["measured"]:
        node = arms["nodes"].get(m.get("node") or "")
        if node and m.get("checkpoint") not in (None, node["checkpoint"]):  # timed before its node was trained again
            warnings.warn(f"table5.json timed {m['node']} at {m['checkpoint']}, but arms.json now has "
                          f"{node['checkpoint']}: its scores are left out; run `tinyrs bench table5` again")
            node = None
        caps = node_capabilities(node, "strict") if node else {c: None for c in CAPS}
        rows.append({"size": m["size"], "kind": m["kind"], "ms/sample": round(m["ms_per_sample"], 1),
                     "tokens/s": round(m["tokens_per_s"]), "tokens/answer": round(m["mean_new_tokens"], 1),
                     "weights MB": round(m["weights_mb"], 2), **caps})
    return rows


def table5_claims(profile: str = "toy", results_dir=None) -> list[dict]:
    """Table V's claims on the paper's numbers (2B vs 7B) and on the reproduction (small vs larger)."""
    from .paper import cell

    paper = {(s, k): {"ms": cell("V", f"{s} {k}", "Spd."), "mem": cell("V", f"{s} {k}", "Mem.")}
             for s in ("2B", "7B") for k in ("none", "trained", "reasoning")}
    toy = {(r["size"], r["kind"]): {"ms": r["ms/sample"], "mem": r["weights MB"]} for r in table5_rows(profile, results_dir)}
    sizes = {"paper": ("2B", "7B"), profile: ("small", "larger")}

    def ratios(v, key, small, big):
        return {k: v[(big, k)][key] / v[(small, k)][key] for k in ("none", "trained", "reasoning")
                if (big, k) in v and (small, k) in v}

    def row(text, test, show):
        out = {"claim": text}
        for name, v in (("paper", paper), (profile, toy)):
            try:
                out[name], out[f"{name} numbers"] = ("yes" if test(v, *sizes[name]) else "no"), show(v, *sizes[name])
            except (KeyError, ZeroDivisionError):
                out[name], out[f"{name} numbers"] = "n/a", "not measured"
        return out

    return [
        row("The smaller model runs 2-3x faster, with and without reasoning",
            lambda v, s, b: all(2.0 <= r <= 3.0 for r in ratios(v, "ms", s, b).values()),
            lambda v, s, b: ", ".join(f"{k} {r:.1f}x" for k, r in ratios(v, "ms", s, b).items())),
        row("The smaller model uses far less memory (Table V: 4.4 against 16.6 GB)",
            lambda v, s, b: ratios(v, "mem", s, b)["trained"] >= 2.0,
            lambda v, s, b: f"{ratios(v, 'mem', s, b)['trained']:.1f}x"),
        row("Reasoning makes each answer several times slower",
            lambda v, s, b: v[(s, "reasoning")]["ms"] >= 2.0 * v[(s, "trained")]["ms"],
            lambda v, s, b: f"{v[(s, 'reasoning')]['ms'] / v[(s, 'trained')]['ms']:.1f}x"),
    ]


def grounding_details(arms: dict, nodes: list[str]) -> list[dict]:
    """Grounding of some nodes in detail: mean IoU, Acc@0.5 in both modes, answers without a box."""
    out = []
    for n in nodes:
        g = arms["nodes"][n].get("grounding") or {}
        out.append({"node": n, "stages": arms["nodes"][n]["stages"], "overrides": " ".join(arms["nodes"][n]["overrides"]),
                    "mean IoU": g.get("mean_iou"), "Acc@0.5 strict": g.get("acc@0.5 strict"),
                    "Acc@0.5 compat": g.get("acc@0.5 compat"), "no box": f"{g.get('unparsed')}/{g.get('n')}"})
    return out


def evaluator_agreement(profile: str = "toy", results_dir=None) -> list[dict]:
    """Both evaluators' mean grades of the same reference and damaged answers (recorded by `tinyrs ablations`)."""
    rows = load_arms(profile, results_dir).get("evaluator_agreement")
    return rows or [{"answer": "not recorded (an LLM evaluator: see the judge's own cache and report)"}]
