"""The ablation arms of Tables II, III, IV and VI, run for real: train each node (a stage run from its
parent node's checkpoint, with recipe overrides), evaluate it with the Table I protocol, and write the
summary the table notebooks read (`results/<profile>/arms.json`).

The plan is `tinyrs/configs/<profile>/ablations.yaml`. Nodes of the main chain are the runs notebooks
03-07 made (found again by their cache key, not trained twice); the others never move a stage's
`latest`. Independent nodes train at the same time in `workers` processes that share the cores (on 2
cores, one thread each while two run, both for a run alone: two one-thread runs finish sooner than two
two-thread runs one after the other). A node
whose run and predictions exist costs nothing, and a run or evaluation cut off goes on from where it stopped
(its last checkpoint, its last saved answer), so an interrupted `tinyrs ablations` resumes.
"""
from __future__ import annotations

import json
import os
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from multiprocessing import get_context
from pathlib import Path

from .. import paths
from ..config import CONFIGS, ConfigError, load_yaml_file
from ..data.vhm import write_json

# The main chain's evaluations go where notebook 08 keeps them (eval/base, eval/S, ...), so they are not made
# twice; every other arm's to eval/arms/<name> (the zero-GRPO arm "R" is not the main chain's R).
EVAL_NAMES = {"none": "base", "PS": "S", "PSC": "C", "PSCR": "R"}


def eval_dir(results_dir: Path, name: str) -> Path:
    return results_dir / "eval" / (EVAL_NAMES[name] if name in EVAL_NAMES else f"arms/{name}")


def load_plan(profile: str) -> dict:
    path = CONFIGS / profile / "ablations.yaml"
    if not path.exists():
        raise ConfigError(f"the {profile} profile has no ablation plan ({path})")
    plan = load_yaml_file(path)
    for name, node in plan["nodes"].items():
        parent = node.get("from")
        if parent is not None and parent not in plan["nodes"]:
            raise ConfigError(f"{path}: node {name!r} starts from unknown node {parent!r}")
    for table, rows in plan["tables"].items():
        unknown = sorted(set(rows.values()) - set(plan["nodes"]))
        if unknown:
            raise ConfigError(f"{path}: table {table} names unknown node(s) {unknown}")
    return plan


def chain(plan: dict, name: str) -> list[str]:
    """The node and its ancestors, oldest first (e.g. PSCR -> [none, P, PS, PSC, PSCR])."""
    out = []
    while name is not None:
        out.append(name)
        name = plan["nodes"][name].get("from")
    return out[::-1]


def stages_of(plan: dict, name: str) -> str:
    """The trained stages of a node's chain, as Table II writes them ('' for the base model)."""
    return "".join(plan["nodes"][n]["stage"] for n in chain(plan, name) if plan["nodes"][n]["stage"] != "base")


def is_reasoning(plan: dict, name: str) -> bool:
    """A model that answers in <reasoning>/<answer>: a C or an R stage in its chain."""
    return any(s in stages_of(plan, name) for s in "CR")


def nodes_for(plan: dict, tables: list[str] | None, nodes: list[str] | None = None) -> list[str]:
    """Every node the chosen tables (or the chosen nodes) need, with their ancestors, in dependency order."""
    unknown = sorted(set(nodes or []) - set(plan["nodes"]))
    if unknown:
        raise ConfigError(f"unknown arm(s) {unknown}; the plan has {', '.join(plan['nodes'])}")
    picked = nodes if nodes else [n for t in (tables or plan["tables"]) for n in plan["tables"][t].values()]
    wanted = set().union(*(chain(plan, n) for n in picked))
    return [n for n in plan["nodes"] if n in wanted]


# --- one node: train (or reuse), then evaluate -----------------------------------------------------

def _set_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def train_node(plan: dict, name: str, parent_checkpoint: str | None, profile: str, data_dir: Path,
               runs_root: str | None, seed: int | None = None) -> Path:
    """The node's run folder, trained now or found by its cache key (the same recipe, data, starting
    checkpoint and code). Paper profile: the base is the model itself, and an arm trained on a cluster
    (`tinyrs train --arm NAME`, slurm/ablations.sh) is taken from runs/arms/<name>. `seed` None: each
    recipe's own (toy 0, paper 42, as the cluster's arms are trained)."""
    from ..train.runs import arm_run
    from ..train.stage import run_stage

    node = plan["nodes"][name]
    main = name in plan.get("main_chain", [])
    if node["stage"] == "base" and profile != "toy":
        return Path(plan["base"])  # a checkpoint folder or hub id: nothing to train
    if profile != "toy" and (done := arm_run(name, runs_root)) is not None:
        return done
    if node["stage"] == "base":
        return run_stage("base", profile, overrides=[f"data_dir={data_dir}", *plan.get("base_overrides", [])],
                         runs_root=runs_root, progress=False, mark_latest=main, arm=name)
    extra = plan.get("stage_overrides") or {}
    return run_stage(node["stage"], profile, init=parent_checkpoint,
                     overrides=[f"data_dir={data_dir}", *([f"seed={seed}"] if seed is not None else []),
                                *extra.get("all", []),
                                *extra.get(node["stage"], []), *node.get("set", [])],
                     runs_root=runs_root, progress=False, mark_latest=main, arm=name)


def node_job(plan: dict, name: str, parent_checkpoint: str | None, profile: str, data_dir: str, runs_root: str | None,
             results_dir: str, seed: int | None = None, threads: int = 1) -> dict:
    """Train and evaluate one node (run in a worker process, on `threads` CPU threads); returns its summary."""
    from ..evaluation.harness import commonest_answer_scores, evaluate
    from ..llm import profile_judge

    _set_threads(threads)
    t0 = time.time()
    run = train_node(plan, name, parent_checkpoint, profile, Path(data_dir), runs_root, seed)
    checkpoint = run / "checkpoint" if (run / "checkpoint").is_dir() else run
    trained = time.time() - t0
    done = json.loads((run / "complete.json").read_text()) if (run / "complete.json").exists() else {}
    summary = {"node": name, "stages": stages_of(plan, name) or "none", "overrides": plan["nodes"][name].get("set", []),
               "run": str(run), "checkpoint": str(checkpoint), "parent_checkpoint": parent_checkpoint,
               "evaluation": plan["evaluation"], "train_seconds": done.get("seconds"),
               "train_steps": done.get("steps"), "seconds_here": round(trained, 1), "threads": threads}
    if not any(name in rows.values() for rows in plan["tables"].values()):
        return summary  # only a parent of other arms (P, PSC-unbalanced): no table shows it, it is not evaluated
    ev = plan["evaluation"]
    think = ev.get("think_prompt") if is_reasoning(plan, name) else None
    out = eval_dir(Path(results_dir), name)
    benchmarks = ev.get("benchmarks", ["all"])
    judge = None
    if "open" in benchmarks or "Open-ended" in benchmarks:
        judge = profile_judge(profile, build_dir=data_dir, cache_dir=out / "judge_cache")
    scores = evaluate(checkpoint, Path(data_dir) / "eval", out, benchmarks, think=think,
                      max_new_tokens=int(ev["max_new_tokens"]), batch_size=int(ev.get("batch_size", 16)),
                      limit=int(ev["limit"]) or None, progress=False, judge=judge, overwrite=True)
    vg = next((s for f, s in scores["benchmarks"].items() if f.startswith("VG_")), None)
    return {**summary, "think": think, "eval_seconds": scores["seconds"], "eval_dir": str(out),
            "averages": scores["averages"],
            "benchmarks": {f: {m: s[m]["score"] for m in s} for f, s in scores["benchmarks"].items()},
            # each question's outcome, for standard errors paired question by question between nodes
            "outcomes": {f: {"questions": s["strict"]["questions"], **{m: s[m]["outcomes"] for m in s}}
                         for f, s in scores["benchmarks"].items() if "outcomes" in s["strict"]},
            "commonest_answer": commonest_answer_scores(scores),
            "grounding": vg and {"n": vg["strict"]["n"], "unparsed": vg["strict"]["unparsed"],
                                 "mean_iou": vg["strict"]["mean_iou"], "acc@0.5 strict": vg["strict"]["score"],
                                 "acc@0.5 compat": vg["compat"]["score"]}}


# --- all nodes, in parallel where the dependencies allow --------------------------------------------

# Rough relative cost of a stage's run on the toy profile (C's reasoning makes its sequences the longest).
STAGE_COST = {"base": 1.0, "P": 0.6, "S": 1.0, "C": 1.5, "R": 0.6}


def remaining_cost(plan: dict, name: str, among: list[str]) -> float:
    """The cost of this node and of its costliest line of descendants: its scheduling priority (long chains
    first, so the last runs finish together instead of one after another)."""
    children = [n for n in among if plan["nodes"][n].get("from") == name]
    own = STAGE_COST.get(plan["nodes"][name]["stage"], 1.0)
    return own + max((remaining_cost(plan, c, among) for c in children), default=0.0)


def run_arms(profile: str = "toy", tables: list[str] | None = None, workers: int | None = None,
             data_dir: str | Path | None = None, runs_root: str | Path | None = None,
             results_dir: str | Path | None = None, seed: int | None = None, progress: bool = True,
             nodes: list[str] | None = None, stage_overrides: dict[str, list[str]] | None = None,
             base_overrides: list[str] | None = None, evaluation: dict | None = None) -> dict:
    """Train and evaluate every node the chosen tables (or `nodes`) need; write and return
    `<results>/arms.json` (nodes already recorded there and not run now are kept). `stage_overrides`
    ({"all": [...], "R": [...]}) apply to every stage run or to one stage's, `base_overrides` to the toy
    base, `evaluation` updates the plan's evaluation settings (e.g. a short run: {"all": ["max_steps=2"]},
    {"limit": 2})."""
    plan = load_plan(profile)
    plan["stage_overrides"], plan["base_overrides"] = dict(stage_overrides or {}), list(base_overrides or [])
    plan["evaluation"].update(evaluation or {})
    data_dir = Path(data_dir) if data_dir else paths.data_dir(profile)
    results_dir = Path(results_dir) if results_dir else paths.RESULTS / profile
    results_dir.mkdir(parents=True, exist_ok=True)
    names = nodes_for(plan, tables, nodes)
    workers = max(1, int(workers or plan.get("workers", 1)))
    cores = os.cpu_count() or 1
    priority = {n: remaining_cost(plan, n, names) for n in names}
    t0 = time.time()
    done: dict[str, dict] = {}
    pending = set(names)
    running = {}
    say = print if progress else (lambda *a, **k: None)
    common = dict(profile=profile, data_dir=str(data_dir), runs_root=str(runs_root) if runs_root else None,
                  results_dir=str(results_dir), seed=seed)
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
        while pending or running:
            ready = sorted((n for n in pending if plan["nodes"][n].get("from") in (None, *done)),
                           key=lambda n: (-priority[n], names.index(n)))
            for name in ready[:workers - len(running)]:
                # the cores are shared by the runs going at once: one run alone gets them all
                threads = max(1, cores // min(workers, len(running) + len(ready)))
                parent = plan["nodes"][name].get("from")
                parent_ck = done[parent]["checkpoint"] if parent else None
                running[pool.submit(node_job, plan, name, parent_ck, **common, threads=threads)] = name
                pending.discard(name)
                say(f"[{time.time() - t0:6.0f} s] started {name} ({stages_of(plan, name) or 'base'}, "
                    f"{threads} thread{'s' if threads > 1 else ''})", flush=True)
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for fut in finished:
                name = running.pop(fut)
                done[name] = fut.result()  # a failed node stops everything, with its traceback
                d = done[name]
                scores = f", eval {d['eval_seconds']} s, strict {_short(d['averages']['strict'])}" if "averages" in d else ""
                say(f"[{time.time() - t0:6.0f} s] done {name}: train {d['train_seconds']} s{scores}", flush=True)
    path = results_dir / "arms.json"
    kept = json.loads(path.read_text())["nodes"] if path.exists() else {}
    summary = {"profile": profile, "data_dir": str(data_dir), "workers": workers, "cores": cores,
               "seconds": round(time.time() - t0, 1), "evaluation": plan["evaluation"],
               "nodes": merged_nodes(plan, done, kept, say)}
    if profile == "toy" and (data_dir / "eval" / "open_ended_QA.json").exists():
        from ..world.grading import evaluator_agreement

        summary["evaluator_agreement"] = evaluator_agreement(data_dir)  # Table VI's two toy judges side by side
    write_json(path, summary, default=str)
    return {**summary, "path": str(path)}


def merged_nodes(plan: dict, done: dict, kept: dict, say=print) -> dict:
    """The nodes run now, and those of an earlier arms.json that still hold: evaluated with today's settings
    and trained from the checkpoint their parent has now (a node whose parent was trained again, or that was
    evaluated otherwise, is left out, with a line that says so, rather than shown beside the new ones)."""
    def depth(n):
        parent = plan["nodes"][n].get("from")
        return 0 if parent is None else 1 + depth(parent)

    nodes, dropped = {}, []
    for n in sorted((n for n in plan["nodes"] if n in done or n in kept), key=depth):
        if n in done:
            nodes[n] = done[n]
            continue
        old, parent = kept[n], plan["nodes"][n].get("from")
        if "evaluation" in old and old["evaluation"] != plan["evaluation"]:
            dropped.append(f"{n} (evaluated with other settings)")
        elif parent and "parent_checkpoint" in old and old["parent_checkpoint"] != nodes.get(parent, {}).get("checkpoint"):
            dropped.append(f"{n} (trained from a {parent} that is no longer the recorded one)")
        else:
            nodes[n] = old
    if dropped:
        say(f"arms.json: left out {', '.join(dropped)}; `tinyrs ablations --nodes "
            f"{' '.join(d.split()[0] for d in dropped)}` runs them again")
    return {n: nodes[n] for n in plan["nodes"] if n in nodes}  # in the plan's order


def _short(avg: dict) -> str:
    return ", ".join(f"{k} {v:.3f}" for k, v in avg.items() if v is not None)


def load_arms(profile: str = "toy", results_dir: str | Path | None = None) -> dict:
    path = Path(results_dir or paths.RESULTS / profile) / "arms.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: run `tinyrs ablations --profile {profile}` (or tinyrs reproduce)")
    return json.loads(path.read_text())
