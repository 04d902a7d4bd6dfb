"""The ablation arms as real (tiny) runs, the tables built from them, Table V's measurements, and the
table notebooks 09-14 executed against those results."""
import json
from pathlib import Path

import pytest

from conftest import outputs_text, training_copy
from tinyrs.report.ablations import chain, is_reasoning, load_plan, nodes_for, stages_of

TINY = ["max_steps=2", "per_device_train_batch_size=4", "logging_steps=1", "save_steps=2"]


def test_the_plans_cover_every_table_row():
    for profile in ("toy", "paper"):
        plan = load_plan(profile)
        assert stages_of(plan, "PSCR") == "PSCR" and stages_of(plan, "none") == ""
        assert {stages_of(plan, n) or "none" for n in plan["tables"]["II"].values()} == \
            {"PSCR", "PSC", "PSR", "PS", "S", "PC", "R", "none"}
        assert chain(plan, "PSCR-unbalanced") == ["none", "P", "PS-unbalanced", "PSC-unbalanced", "PSCR-unbalanced"]
        assert is_reasoning(plan, "R") and is_reasoning(plan, "PC") and not is_reasoning(plan, "PS")
        assert nodes_for(plan, ["III"]) == ["none", "P", "PS", "PSC", "PSCR", "PSCR-quantized", "PSCR-binary",
                                            "PSCR-released"]


def test_the_cluster_scripts_train_every_arm_of_the_plan(tmp_path):
    """slurm/ablations.sh, run against a fake sbatch, submits each off-chain arm of the paper plan once,
    as the right stage, from the right parent, with the plan's overrides."""
    import os
    import subprocess

    from tinyrs.paths import REPO_ROOT

    fake = tmp_path / "sbatch"
    fake.write_text('#!/bin/bash\necho "$ARM_SPECS" >> "$SPECS_LOG"; echo 7\n')
    fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}", "SPECS_LOG": str(tmp_path / "specs"),
           "BASE_MODEL": "BASE"}
    subprocess.run(["bash", str(REPO_ROOT / "slurm" / "ablations.sh")], check=True, env=env, capture_output=True)
    submitted = {}
    for spec in (tmp_path / "specs").read_text().replace("\n", ";").split(";"):
        if spec.strip():
            stage, _, arm, _, init, *sets = spec.split()
            submitted[arm] = (stage, init, sets[1::2])
    plan = load_plan("paper")
    main_init = {"none": "BASE", "P": "P", "PS": "S", "PSC": "C"}  # a main-chain parent by its stage's latest run
    expected = {n: (v["stage"], main_init.get(v["from"], f"arm:{v['from']}"), list(v.get("set", [])))
                for n, v in plan["nodes"].items() if n not in plan["main_chain"]}
    assert submitted == expected
    pipeline = (REPO_ROOT / "slurm" / "pipeline.sh").read_text()
    assert all(f"--arm {n}" in pipeline for n in plan["main_chain"] if n != "none")
    for f in (REPO_ROOT / "slurm").glob("*.s*"):
        subprocess.run(["bash", "-n", str(f)], check=True)


def test_an_arm_trains_with_its_recipes_seed_unless_one_is_given(tmp_path, monkeypatch):
    """The paper recipes' seed is 42, as slurm/ablations.sh trains the arms; a run here must not force 0."""
    import tinyrs.train.stage
    from tinyrs.report.ablations import train_node
    from tinyrs.train.recipes import load_recipe

    asked = []
    monkeypatch.setattr(tinyrs.train.stage, "run_stage", lambda stage, profile, **kw: asked.append(kw["overrides"]))
    plan = load_plan("paper")
    for seed in (None, 3):
        train_node(plan, "PSR", "/ck", "paper", tmp_path / "data", str(tmp_path / "runs"), seed)
    assert load_recipe("R", "paper", asked[0])["seed"] == 42
    assert load_recipe("R", "paper", asked[1])["seed"] == 3


@pytest.fixture(scope="module")
def arms(toy_build, tmp_path_factory):
    from tinyrs.report.ablations import run_arms

    root = tmp_path_factory.mktemp("arms")
    data = training_copy(toy_build, root / "data")
    kw = dict(data_dir=data, runs_root=root / "runs", results_dir=root / "results", workers=2, progress=False,
              stage_overrides={"all": TINY, "R": ["max_completion_length=8"]}, base_overrides=["generic.samples=48", *TINY],
              evaluation={"limit": 2, "max_new_tokens": 8})
    first = run_arms("toy", **kw)
    return {"root": root, "data": data, "kw": kw, "first": first}


@pytest.mark.slow
def test_every_arm_is_trained_from_its_parent_and_evaluated(arms):
    from tinyrs.train.runs import latest_run

    plan, r = load_plan("toy"), arms["first"]
    assert set(r["nodes"]) == set(plan["nodes"])
    nodes = r["nodes"]
    for name, node in plan["nodes"].items():
        record = json.loads((Path(nodes[name]["run"]) / "run.json").read_text())
        if node.get("from"):
            assert record["init"]["path"] == nodes[node["from"]]["checkpoint"], name
        for item in node.get("set", []):  # the arm's own recipe change is in its run record
            key, value = item.split("=", 1)
            assert str(record["recipe"][key]) == str(value if value != "null" else None), (name, key)
        in_a_table = any(name in rows.values() for rows in plan["tables"].values())
        assert ("averages" in nodes[name]) == in_a_table, name  # a parent only (P, PSC-unbalanced) is not evaluated
        if in_a_table:
            assert set(nodes[name]["averages"]["strict"]) >= {"CLS", "VQA", "Ground.", "Gen. Know."}
            assert (nodes[name]["think"] is not None) == is_reasoning(plan, name)
            outcomes = nodes[name]["outcomes"]  # each question's outcome, for paired standard errors
            assert set(outcomes) == {f for f in nodes[name]["benchmarks"] if not f.startswith("open_ended")}
            assert all(len(o["strict"]) == 2 and set(o["strict"]) <= {"0", "1"} for o in outcomes.values()), name
    # the main chain is each stage's latest; an arm never is (PSR, R, PSCR-binary are all stage R runs)
    runs = arms["root"] / "runs"
    assert latest_run("R", runs) == Path(nodes["PSCR"]["run"]) and latest_run("S", runs) == Path(nodes["PS"]["run"])
    assert len({nodes[n]["run"] for n in plan["nodes"]}) == len(plan["nodes"])  # 16 distinct runs
    evaluated = [nodes[n]["eval_dir"] for n in plan["nodes"] if "eval_dir" in nodes[n]]
    assert len(set(evaluated)) == len(evaluated)  # every arm's predictions in a folder of its own
    assert "evaluator_agreement" in json.loads((arms["root"] / "results" / "arms.json").read_text())
    from tinyrs.train.runs import arm_run, resolve_init

    assert all(arm_run(n, runs) == Path(nodes[n]["run"]) for n in plan["nodes"])  # runs/arms/<name>
    assert resolve_init("arm:PSR", runs) == str(Path(nodes["PSR"]["run"]) / "checkpoint")


@pytest.mark.slow
def test_a_second_call_reuses_every_run_and_prediction(arms):
    from tinyrs.report.ablations import run_arms

    before = sorted(p.name for p in (arms["root"] / "runs").glob("*/*-*"))
    answers = lambda: {p: p.stat().st_mtime_ns for p in (arms["root"] / "results").rglob("predictions/*.jsonl")}  # noqa: E731
    written = answers()
    again = run_arms("toy", **arms["kw"])
    assert sorted(p.name for p in (arms["root"] / "runs").glob("*/*-*")) == before
    assert written and answers() == written  # no prediction generated or written again
    assert {n: v["run"] for n, v in again["nodes"].items()} == {n: v["run"] for n, v in arms["first"]["nodes"].items()}
    assert {n: v.get("averages") for n, v in again["nodes"].items()} == \
        {n: v.get("averages") for n, v in arms["first"]["nodes"].items()}


@pytest.mark.slow
def test_tables_claims_and_table5_from_the_arms(arms):
    from tinyrs.report.reproduced import claims_side_by_side, table5_claims, table5_rows
    from tinyrs.report.speed import measure_table5
    from tinyrs.report.tables import reproduced_rows, reproduced_table1

    results = arms["root"] / "results"
    plan, a = load_plan("toy"), json.loads((results / "arms.json").read_text())
    rows = reproduced_rows("II", a, plan, "strict")
    assert [r["row"] for r in rows] == ["PSCR", "PSC", "PSR", "PS", "S", "PC", "R", "none"]
    assert all(0 <= r[c] <= 100 for r in rows for c in ("CLS", "VQA", "Gen. Know."))
    t1 = reproduced_table1(a, plan)
    assert {r["benchmark"] for r in t1} >= {"AID", "DIOR-RSVG", "LHRS-Bench", "Average"}
    prior = {r["benchmark"]: r["commonest answer"] for r in t1}  # the answer prior, beside the models' scores
    assert prior["DIOR-RSVG"] is None and all(0 < prior[b] <= 100 for b in ("AID", "LHRS-Bench"))
    for table in ("I", "II", "III", "IV", "VI"):
        verdicts = claims_side_by_side(table, "toy", results)
        assert verdicts and all(v["paper"] in ("yes", "no") and v["toy strict"] in ("yes", "no", "undecided")
                                for v in verdicts)
    t5 = measure_table5("toy", data_dir=arms["data"], results_dir=results, progress=False, per_benchmark=1,
                        max_new_tokens=4)
    assert abs(t5["published"]["2B"]["weights_gb"] - 4.4) < 0.1 and abs(t5["published"]["7B"]["weights_gb"] - 16.6) < 0.2
    sizes = {(r["size"], r["kind"]): r for r in t5["measured"]}
    assert set(sizes) == {(s, k) for s in ("small", "larger") for k in ("none", "trained", "reasoning")}
    for k in ("none", "trained", "reasoning"):  # the larger model answers at the small model's length
        assert sizes[("larger", k)]["mean_new_tokens"] == max(1, round(sizes[("small", k)]["mean_new_tokens"]))
        assert sizes[("larger", k)]["parameters"] > 3 * sizes[("small", k)]["parameters"]
    assert len(table5_rows("toy", results)) == 6 and len(table5_claims("toy", results)) == 3


@pytest.mark.slow
def test_table_notebooks_run_on_these_results(arms, tmp_path):
    import papermill as pm

    from tinyrs.paths import NOTEBOOKS

    results = arms["root"] / "results"
    if not (results / "table5.json").exists():
        from tinyrs.report.speed import measure_table5

        measure_table5("toy", data_dir=arms["data"], results_dir=results, progress=False, per_benchmark=1,
                       max_new_tokens=4)
    for nb in sorted(NOTEBOOKS.glob("1[0-4]_*.ipynb")) + [NOTEBOOKS / "09_table1_main_results.ipynb"]:
        out = tmp_path / nb.name
        pm.execute_notebook(str(nb), str(out), parameters={"results_dir": str(results), "figures_dir": str(tmp_path / "fig")},
                            cwd=str(tmp_path), kernel_name="python3", progress_bar=False)
        text = outputs_text(json.loads(out.read_text()))  # what it printed, not its source
        assert "claim " in text and "paper numbers" in text, nb.name  # the claims table, paper beside toy
        if not nb.name.startswith("13_"):  # 13 reads table5.json (checked through its figure below)
            assert str(results / "arms.json") in text, nb.name  # read these results, not the committed ones
    for stem in ("09_table1_main_results", "10_table2_stage_ablation", "11_table3_reward_functions",
                 "12_table4_balancing", "13_table5_size_speed_memory", "14_table6_evaluator"):
        assert {p.suffix for p in (tmp_path / "fig").glob(stem + ".*")} == {".png", ".pdf", ".csv"}, stem


def test_an_earlier_node_is_kept_only_while_it_still_holds(tmp_path, recwarn):
    """arms.json keeps the nodes of earlier calls only if evaluated with today's settings and trained from the
    checkpoint their parent has now; Table V leaves out the scores of a model timed before it was retrained."""
    from tinyrs.report.ablations import merged_nodes
    from tinyrs.report.reproduced import table5_rows

    ev = {"limit": 30}
    plan = {"nodes": {"none": {"stage": "base"}, "S": {"stage": "S", "from": "none"}, "SC": {"stage": "C", "from": "S"}},
            "evaluation": ev}
    said = []
    done = {"none": {"checkpoint": "base-2"}}
    kept = {"S": {"checkpoint": "s-1", "parent_checkpoint": "base-1", "evaluation": ev},
            "SC": {"checkpoint": "sc-1", "parent_checkpoint": "s-1", "evaluation": ev}}
    assert list(merged_nodes(plan, done, kept, said.append)) == ["none"]  # S's base was retrained, and SC's S is gone
    assert "left out S (trained from a none that is no longer the recorded one), SC" in said[0]
    assert "`tinyrs ablations --nodes S SC`" in said[0]
    kept["S"]["parent_checkpoint"] = "base-2"
    assert list(merged_nodes(plan, done, kept, said.append)) == ["none", "S", "SC"]
    assert list(merged_nodes({**plan, "evaluation": {"limit": 5}}, done, kept, said.append)) == ["none"]
    assert "S (evaluated with other settings)" in said[-1]
    legacy = {"S": {"checkpoint": "s-1"}}  # written before these were recorded: kept
    assert list(merged_nodes(plan, done, legacy, said.append)) == ["none", "S"]

    caps = {"CLS": 0.5, "VQA": 0.5, "Ground.": 0.0, "Gen. Know.": 0.2}
    (tmp_path / "arms.json").write_text(json.dumps({"nodes": {"S": {"checkpoint": "s-2", "averages": {"strict": caps}}}}))
    timed = {"size": "small", "kind": "trained", "node": "S", "ms_per_sample": 9.0, "tokens_per_s": 100.0,
             "mean_new_tokens": 5.0, "weights_mb": 3.0}
    for checkpoint, shown in (("s-2", 50.0), (None, 50.0), ("s-1", None)):
        (tmp_path / "table5.json").write_text(json.dumps({"measured": [{**timed, "checkpoint": checkpoint}]}))
        assert table5_rows("toy", tmp_path)[0]["CLS"] == shown
    assert "table5.json timed S at s-1, but arms.json now has s-2" in str(recwarn[-1].message)
