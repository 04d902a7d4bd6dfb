"""The `tinyrs` command. Each subcommand has its own --help."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _progress(args) -> bool:
    return not getattr(args, "no_progress", False) and sys.stderr.isatty()


# --- data ---------------------------------------------------------------------------------------

def cmd_data_build(args):
    from .config import load_config
    from .data.build import build_from_vhm, build_toy
    from .paths import data_dir

    cfg = load_config(args.profile if not args.config else args.config, "data", args.set)
    out = Path(args.out) if args.out else data_dir(args.profile)
    if args.profile == "toy" and not args.vhm_json:
        report = build_toy(cfg, out, workers=args.workers, progress=_progress(args), cards_dir=args.cards_dir)
    else:
        if not (args.vhm_json and args.image_root):
            raise SystemExit("tinyrs data build --profile paper needs --vhm-json FILE and --image-root DIR")
        report = build_from_vhm(args.vhm_json, args.image_root, out, cfg, pretrain_json=args.pretrain_json,
                                eval_root=args.eval_root, skip_invalid=args.skip_invalid,
                                check_images=args.check_images, progress=_progress(args), cards_dir=args.cards_dir)
        for v in report["validation"]:
            if v["skipped"]:
                print(f"{v['file']}: skipped {v['skipped']} (first of each: {v['examples']})")
    print(f"wrote {out}")
    for name, n in {**report["files"], **report.get("eval_files", {})}.items():
        print(f"  {name}: {n} entries")
    print("  balancing (task: before -> after):",
          ", ".join(f"{r['task']} {r['before']}->{r['after']}" for r in report["balance"]["tasks"]))
    print(f"  disjoint: {report['disjointness']['disjoint']}   seconds: {report['seconds']['total']}")


def cmd_data_validate(args):
    from .data.vhm import read_eval_file, read_training_file

    if args.eval:
        _, rep = read_eval_file(args.file, args.check_images, args.skip_invalid, _progress(args))
    else:
        if not args.image_root:
            raise SystemExit("training files need --image-root (or pass --eval for an evaluation file)")
        _, rep = read_training_file(args.file, args.image_root, args.check_images, args.skip_invalid, _progress(args))
    print(rep.summary())
    for kind, msg in rep.examples.items():
        print(f"  first {kind}: {msg}")


def cmd_data_rsvqa(args):
    from .evaluation.rsvqa import convert_rsvqa

    r = convert_rsvqa(args.records, args.images, args.out, args.resolution, args.limit_per_type)
    for name, n in r["written"].items():
        print(f"wrote {Path(args.out) / name}: {n} questions")
    if r["skipped_types"]:
        print(f"not in Table I, skipped: {r['skipped_types']}")


# --- model --------------------------------------------------------------------------------------

def cmd_model_toy(args):
    from .config import load_config
    from .model import count_parameters, create_toy_checkpoint, load_model

    cfg = load_config(args.config, "model", args.set)
    path = create_toy_checkpoint(args.out, args.build, cfg, seed=args.seed)
    print(f"saved toy Qwen2-VL to {path}: {count_parameters(load_model(path))}")


def cmd_model_info(args):
    from .model import count_parameters, load_model
    from .train.runs import resolve_init

    model = load_model(resolve_init(args.path, flag="model info"))  # a folder, a stage's latest run, a hub id
    print(json.dumps({"architecture": type(model).__name__, "parameters": count_parameters(model)}, indent=2))


def cmd_learnability(args):
    from .learnability import classification_learnability

    r = classification_learnability(args.out, images=args.images, max_steps=args.max_steps, seconds=args.seconds,
                                    seed=args.seed, progress=_progress(args))
    for f in r["accuracy_after"]:
        print(f"{f:26s} before {r['accuracy_before'][f]:.3f}  after {r['accuracy_after'][f]:.3f}  "
              f"chance {r['chance'][f]:.3f}")
    print(f"{r['steps']} steps in {r['train_seconds']} s; mean accuracy {r['mean_after']:.3f} "
          f"(chance {r['mean_chance']:.3f})")


def cmd_think(args):
    from .config import ConfigError, load_config, load_prices
    from .data.build import image_root_of
    from .data.think import make_teacher, run_think, side_paths

    cfg = load_config(args.config, "llm", args.set)
    if not isinstance(cfg.get("teacher"), dict):
        raise ConfigError(f"{cfg['_source']}: no teacher section (the CoT teacher's settings)")
    teacher_cfg = dict(cfg["teacher"])
    for key, value in (("backend", args.teacher), ("model", args.model), ("base_url", args.base_url),
                       ("workers", args.workers)):
        if value is not None:
            teacher_cfg[key] = value
    in_path, out_path = Path(args.input), Path(args.out)
    if not in_path.is_file():
        raise FileNotFoundError(f"--in {in_path}: no such VHM JSON file")
    if out_path.resolve() == in_path.resolve():
        raise ConfigError(f"--out {out_path} is the input file: the captioned file would replace the answers it is "
                          "made from; choose another --out")
    attempts = args.attempts or cfg["teacher"].get("caption_attempts", 3)
    if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
        raise ConfigError(f"{cfg['_source']}: teacher.caption_attempts must be a whole number >= 1, got {attempts!r}")
    build_dir = in_path.parent
    image_root = Path(args.image_root) if args.image_root else image_root_of(build_dir)
    cache_dir = Path(args.cache) if args.cache else out_path.parent / "llm_cache"
    teacher, workers = make_teacher(teacher_cfg, build_dir, cache_dir, load_prices())
    report = run_think(in_path, out_path, teacher, image_root, max_attempts=attempts, workers=workers,
                       limit=args.limit, progress=_progress(args))
    print(f"wrote {out_path}: {report['accepted']} captions accepted, {report['dropped']} dropped, "
          f"{report['failed']} failed calls (retried by the next run); {report['resumed_from_journal']} "
          f"were already done ({report['seconds']} s)")
    for task, c in report["per_task"].items():
        print(f"  {task:4s} total {c['total']:5d}  accepted {c['accepted']:5d}  dropped {c['dropped']:4d}  "
              f"retried {c['retried']:4d}")
    if report["rejections"]:
        print("  rejections:", ", ".join(f"{k} {v}" for k, v in sorted(report["rejections"].items())))
    if "usage" in report:
        print("  " + teacher.client.usage_line())
    if report["failed"] and not report["accepted"] + report["dropped"]:
        from .llm import LLMConfigError

        raise LLMConfigError(f"every call to the teacher failed ({report['failed']} samples; the reasons are above and "
                             f"in {side_paths(out_path)['report']}): check the server, the model and the key")


def _modes(mode: str) -> tuple[str, ...]:
    return ("strict", "compat") if mode == "both" else (mode,)


def _judge(args, data_root: Path, cache_dir: Path | None):
    """The judge of open-ended answers, from the profile's LLM config (section --judge)."""
    from .llm import profile_judge

    return profile_judge(args.profile, args.judge, build_dir=Path(data_root).parent, cache_dir=cache_dir)


def cmd_eval(args):
    from .evaluation.harness import evaluate, select_benchmarks, scores_table
    from .paths import data_dir
    from .report.tables import text_table
    from .train.runs import resolve_init

    out = Path(args.out)
    data_root = Path(args.data_root or data_dir(args.profile) / "eval")
    open_ended = any(b.metric == "judge" for b in select_benchmarks(args.benchmarks))
    judge = _judge(args, data_root, out / "judge_cache") if open_ended else None
    r = evaluate(resolve_init(args.model, flag="--model"), data_root, out, args.benchmarks, _modes(args.mode),
                 think=args.think, max_new_tokens=args.max_new_tokens, batch_size=args.batch_size, limit=args.limit,
                 progress=_progress(args), backend=args.backend, judge=judge, overwrite=args.overwrite, ask=args.ask)
    print(text_table(scores_table(r)))
    print(f"predictions in {out / 'predictions'}, scores in {out / 'scores.json'} ({r['seconds']} s, {r['backend']})")
    _print_judge_usage(judge, out)


def _print_judge_usage(judge, predictions) -> None:
    """An LLM judge's calls, cost and why any failed (its failures leave answers unscored); an error when every
    call failed (an unreachable server, a wrong key), so that scripts notice."""
    from .llm import LLMConfigError

    client = getattr(judge, "client", None)
    if client is None:
        return
    print("  " + client.usage_line())
    counts = client.usage.counts
    if counts["requests"] and counts["failures"] >= counts["requests"]:
        raise LLMConfigError(f"every one of the judge's {counts['requests']} requests failed (see above), so the "
                             f"open-ended answers are unscored: fix the judge, then `tinyrs rescore {predictions}`")


def cmd_rescore(args):
    from .data.vhm import write_json
    from .evaluation.benchmarks import OPEN_ENDED
    from .evaluation.harness import predictions_folder, recorded_data_root, rescore, scores_table
    from .report.tables import text_table

    pred = predictions_folder(args.predictions)
    if args.out and Path(args.out).is_dir():  # checked before the judge is asked anything
        raise FileExistsError(f"--out {args.out} is a folder; give the file to write the scores JSON to")
    judge = None
    if (pred / f"{OPEN_ENDED.stem}.jsonl").exists():
        root = Path(args.data_root or recorded_data_root(pred) or ".")
        judge = _judge(args, root, pred.parent / "judge_cache")
    r = rescore(args.predictions, _modes(args.mode), judge=judge, data_root=args.data_root)
    print(text_table(scores_table(r)))
    for problem in ("unfinished", "torn"):
        if problem in r:
            print(f"warning: {r[problem]}", file=sys.stderr)
    if args.out:
        write_json(args.out, r)
    _print_judge_usage(judge, args.predictions)


def cmd_bench_eval(args):
    from .bench import eval_throughput
    from .paths import data_dir
    from .train.runs import resolve_init

    r = eval_throughput(resolve_init(args.checkpoint, flag="--checkpoint"), args.data_root or data_dir("toy") / "eval",
                        args.benchmark, n=args.samples, batch_size=args.batch_size,
                        max_new_tokens=args.max_new_tokens, think=args.think)
    print(json.dumps(r, indent=2))
    print(f"one sample at a time: {r['one_at_a_time_samples_per_s']} samples/s; batched: {r['batched_samples_per_s']} "
          f"({r['speedup']}x); identical predictions {r['identical_predictions']}/{r['samples']}")


def cmd_bench_rollout(args):
    from .bench import rollout_throughput
    from .paths import data_dir
    from .train.runs import resolve_init

    r = rollout_throughput(resolve_init(args.checkpoint, flag="--checkpoint"), args.build or data_dir("toy"),
                           n_prompts=args.prompts, generations=args.generations, new_tokens=args.new_tokens)
    print(json.dumps(r, indent=2))
    print(f"one completion at a time (released): {r['sequential_tokens_per_s']} tokens/s; a group per call: "
          f"{r['group_batched_tokens_per_s']} ({r['speedup_group']}x); the whole generation batch per call (TRL): "
          f"{r['batched_tokens_per_s']} ({r['speedup']}x)")


def cmd_ablations(args):
    from .report.ablations import run_arms

    r = run_arms(args.profile, args.tables, workers=args.workers, data_dir=args.data_dir, runs_root=args.runs_root,
                 results_dir=args.results, nodes=args.nodes, seed=args.seed, progress=not args.no_progress)
    print(f"{len(r['nodes'])} arms in {r['seconds']} s; summary in {r['path']}")


def cmd_bench_table5(args):
    from .report.speed import measure_table5

    r = measure_table5(args.profile, data_dir=args.data_dir, results_dir=args.results)
    for size, m in r["published"].items():
        print(f"{size} ({m['model']}): {m['parameters'] / 1e9:.3f} B parameters, {m['weights_gb']:.2f} GB in bf16, "
              f"+{m['kv_cache_gb']:.2f} GB KV cache for {m['context_tokens']} tokens")
    for row in r["measured"]:
        print(f"{row['size']:7s} {row['kind']:10s} {row['ms_per_sample']:8.1f} ms/sample {row['tokens_per_s']:8.0f} tokens/s "
              f"{row['mean_new_tokens']:6.1f} tokens/answer  {row['weights_mb']:.1f} MB weights")


def cmd_train(args):
    from .train.__main__ import run

    run(args)


def cmd_runs(args):
    from .config import ConfigError
    from .report.tables import text_table
    from .train.recipes import STAGES
    from .train.runs import runs_table

    if unknown := [s for s in args.stages if s not in STAGES]:
        raise ConfigError(f"unknown stage(s) {unknown}: use {', '.join(STAGES)}")
    rows = runs_table(args.runs_root, args.stages or None)
    print(text_table(rows, digits=1) if rows else "no runs yet")


def cmd_reproduce(args):
    from .config import parse_override
    from .reproduce import reproduce

    parameters = dict(parse_override(kv, "--param") for kv in args.param or [])
    reproduce(profile=args.profile, only=args.only.split(",") if args.only else None, out=args.out,
              parameters=parameters, ablations=not args.no_ablations)


# --- the parser -----------------------------------------------------------------------------------

def _positive(cast, what: str):
    def parse(text: str):
        try:
            value = cast(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"{text} must be above 0")
        return value
    return parse


_positive_int = _positive(int, "a whole number")
_positive_float = _positive(float, "a number")


def _add_judge_args(parser):
    """Which judge grades open-ended QA: the profile's LLM config and its section."""
    parser.add_argument("--profile", choices=["toy", "paper"], default="toy", help="whose LLM config grades open-ended QA")
    parser.add_argument("--judge", default="judge", help="the LLM config section of the open-ended judge (default: judge)")


def _add_results_args(parser):
    """The profile, the data build and the results folder that the table commands read and write."""
    parser.add_argument("--profile", choices=["toy", "paper"], default="toy")
    parser.add_argument("--data-dir", help="the data build (default: data/<profile>)")
    parser.add_argument("--results", help="results folder (default: results/<profile>)")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tinyrs", description="TinyRS-R1 reproduction: data, training, evaluation, "
                                "tables. Run `tinyrs <command> --help` for each command.")
    p.add_argument("--version", action="store_true", help="print the version and exit")
    sub = p.add_subparsers(dest="command", metavar="<command>")

    data = sub.add_parser("data", help="dataset construction (Section II)", description="Dataset construction.")
    dsub = data.add_subparsers(dest="data_command", metavar="<data command>")
    b = dsub.add_parser("build", help="build pretrain/instruct/rl and the 12 evaluation files",
                        description="Build the training files (pretrain.json, instruct.json, instruct_balanced.json, "
                        "rl.json) and, for the toy profile, the 12 evaluation files of Table I.")
    b.add_argument("--profile", choices=["toy", "paper"], default="toy")
    b.add_argument("--config", help="a data YAML file instead of the profile's")
    b.add_argument("--out", help="output folder (default: data/<profile>)")
    b.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config value, e.g. instruct.entries=500")
    b.add_argument("--workers", type=_positive_int, help="processes rendering images (toy)")
    b.add_argument("--vhm-json", help="paper: VHM instruction JSON to sample from")
    b.add_argument("--image-root", help="paper: folder the VHM image paths are relative to")
    b.add_argument("--pretrain-json", help="paper: VHM pre-training captions JSON")
    b.add_argument("--eval-root", help="paper: folder with the real evaluation files, to validate")
    b.add_argument("--skip-invalid", action="store_true",
                   help="skip bad training entries (reported by kind) instead of stopping; benchmark files are used whole")
    b.add_argument("--check-images", choices=["decode", "exists", "none"], default="decode")
    b.add_argument("--cards-dir", help="also write the data cards here (e.g. the repository's data_cards/)")
    b.add_argument("--no-progress", action="store_true")
    b.set_defaults(func=cmd_data_build)
    v = dsub.add_parser("validate", help="check a VHM JSON or evaluation file and its images",
                        description="Check every entry (schema, image, boxes) of a VHM training file or an evaluation file.")
    v.add_argument("file")
    v.add_argument("--image-root", help="folder the training image paths are relative to")
    v.add_argument("--eval", action="store_true", help="the file is an evaluation file (images in <stem>/)")
    v.add_argument("--skip-invalid", action="store_true", help="count bad entries instead of stopping at the first")
    v.add_argument("--check-images", choices=["decode", "exists", "none"], default="decode")
    v.add_argument("--no-progress", action="store_true")
    v.set_defaults(func=cmd_data_validate)
    rq = dsub.add_parser("rsvqa", help="RSVQA question records -> the Table I evaluation files",
                         description="Convert RSVQA's own question records (question, answer, image, type) into "
                         "RSVQA_<LR|HR>-<comp|presence|rural_urban>_RSVQA.json evaluation files.")
    rq.add_argument("--records", required=True, help="RSVQA records, e.g. Annotations_LR/test_qa.json")
    rq.add_argument("--images", required=True, help="folder of the RSVQA images (referenced, not copied)")
    rq.add_argument("--out", required=True, help="data root for tinyrs eval")
    rq.add_argument("--resolution", choices=["LR", "HR"], default="LR")
    rq.add_argument("--limit-per-type", type=_positive_int, help="at most this many questions per file")
    rq.set_defaults(func=cmd_data_rsvqa)

    model = sub.add_parser("model", help="build or inspect checkpoints", description="Model factory.")
    msub = model.add_subparsers(dest="model_command", metavar="<model command>")
    t = msub.add_parser("toy", help="train the toy tokenizer and save an untrained tiny Qwen2-VL",
                        description="Train a BPE tokenizer on a toy build's text and save a tiny Qwen2-VL built from "
                        "the toy model config (HF format: config, weights, tokenizer, processor).")
    t.add_argument("--build", required=True, help="a toy data build folder (its text trains the tokenizer)")
    t.add_argument("--out", required=True)
    t.add_argument("--config", default="toy", help="model config: a profile or a YAML file")
    t.add_argument("--set", action="append", metavar="KEY=VALUE")
    t.add_argument("--seed", type=int, default=0)
    t.set_defaults(func=cmd_model_toy)
    i = msub.add_parser("info", help="parameter counts of a checkpoint", description="Load a checkpoint, count parameters.")
    i.add_argument("path", help="local folder or hub id")
    i.set_defaults(func=cmd_model_info)

    ln = sub.add_parser("learnability", help="show the toy world is learnable (about 2 minutes)",
                        description="Train a tiny Qwen2-VL from scratch on toy classification with TRL's SFTTrainer "
                        "and score it on the held-out toy classification benchmarks.")
    ln.add_argument("--out", required=True)
    ln.add_argument("--images", type=_positive_int, default=3000)
    ln.add_argument("--max-steps", type=_positive_int, default=600)
    ln.add_argument("--seconds", type=_positive_float, default=150, help="wall-clock budget for training")
    ln.add_argument("--seed", type=int, default=0)
    ln.add_argument("--no-progress", action="store_true")
    ln.set_defaults(func=cmd_learnability)

    th = sub.add_parser("think", help="VHM-Instruct-Think: chain-of-thought captions",
                        description="Write <reasoning>...</reasoning><answer>...</answer> captions for every "
                        "(image, question) of a VHM file, validate them, retry rejects, drop and count the rest. "
                        "Resumable: run the same command again after an interruption.")
    th.add_argument("--in", dest="input", required=True, help="VHM JSON, e.g. data/toy/instruct.json")
    th.add_argument("--out", required=True, help="output VHM JSON, e.g. data/toy/instruct_think.json")
    th.add_argument("--teacher", choices=["rules", "openai"], help="default: the config's teacher.backend")
    th.add_argument("--model", help="teacher model for --teacher openai (e.g. gpt-4.1-mini)")
    th.add_argument("--base-url", help="OpenAI-compatible server (default: $OPENAI_BASE_URL or api.openai.com)")
    th.add_argument("--workers", type=_positive_int, help="concurrent requests (openai teacher)")
    th.add_argument("--limit", type=_positive_int, help="caption only the first N samples")
    th.add_argument("--attempts", type=_positive_int, help="tries per caption before it is dropped (config: caption_attempts)")
    th.add_argument("--image-root", help="default: the image root recorded in build.json beside --in")
    th.add_argument("--cache", help="LLM response cache folder (default: llm_cache/ beside --out)")
    th.add_argument("--config", default="toy", help="LLM config: a profile or a YAML file")
    th.add_argument("--set", action="append", metavar="KEY=VALUE", help="override, e.g. teacher.temperature=0.5")
    th.add_argument("--no-progress", action="store_true")
    th.set_defaults(func=cmd_think)

    sv = sub.add_parser("serve", help="serve a checkpoint with transformers' OpenAI-compatible server",
                        description="`transformers serve`, with tinyrs's image-only Qwen2-VL processor where "
                        "torchvision is missing. All arguments go to transformers serve, e.g. "
                        "`tinyrs serve runs/.../checkpoint --port 8000 --host 127.0.0.1`.", add_help=False)
    sv.add_argument("serve_args", nargs=argparse.REMAINDER)  # handled in main(): passed on untouched

    from .train.__main__ import add_arguments as add_train_arguments

    tr = add_train_arguments(sub.add_parser(
        "train", help="train a stage: base, P, S, C (SFTTrainer) or R (GRPOTrainer)",
        description="Train one stage of the chain base -> P -> S -> C -> R into runs/<stage>/<run-id>/ (checkpoint, "
        "resolved config, commit, versions, seed, data and checkpoint fingerprints, metrics.jsonl). "
        "Also `python -m tinyrs.train`, e.g. under accelerate launch or torchrun."))
    tr.set_defaults(func=cmd_train)
    ru = sub.add_parser("runs", help="list the training runs: finished, training now, or interrupted (and from where "
                        "the same call continues)", description="The runs under runs/<stage>/, oldest first.")
    ru.add_argument("stages", nargs="*", metavar="STAGE", help="only these stages (base, P, S, C, R; default: all)")
    ru.add_argument("--runs-root", help="folder of runs/<stage>/ (default: $TINYRS_RUNS or runs/)")
    ru.set_defaults(func=cmd_runs)

    ev = sub.add_parser("eval", help="evaluate a model on the benchmarks of Table I (resumable)",
                        description="Greedy, batched answers to the Table I benchmarks, prompted as the released harness "
                        "prompts (task tag, image first), saved to OUT/predictions/<stem>.jsonl as they come (an "
                        "interrupted run resumes), scored in strict and compat modes into OUT/scores.json.")
    ev.add_argument("--model", required=True, help="a checkpoint folder, a stage name (its latest run) or a hub id")
    ev.add_argument("--benchmarks", nargs="+", default=["all"],
                    help="all (Table I's twelve), cls, vqa, vg, lhrs, open (open-ended QA, graded by the judge), "
                    "or names (AID, HR-Compare, DIOR-RSVG, Open-ended, ...)")
    ev.add_argument("--data-root", help="folder of the evaluation files (default: data/<profile>/eval)")
    ev.add_argument("--mode", choices=["strict", "compat", "both"], default="both")
    ev.add_argument("--out", required=True)
    ev.add_argument("--think", nargs="?", const="system", choices=["system", "instruction"],
                    help="a reasoning model: the reasoning system prompt (default, the released harness) or "
                    "'instruction': the GRPO think instruction after the question (as the toy chain was trained)")
    ev.add_argument("--ask", choices=["auto", "tinyrs", "qwen2vl-instruct"], default="auto",
                    help="how the released harness asks the model: tinyrs (task tags, [[x1, y1, x2, y2]] boxes) or "
                    "qwen2vl-instruct (plain questions; grounding: reason, then box the object; Table II's untrained "
                    "row); auto: by its name, as the harness chooses (a name with Instruct: qwen2vl-instruct)")
    ev.add_argument("--max-new-tokens", type=_positive_int, default=1024, help="1024 in the paper")
    ev.add_argument("--batch-size", type=_positive_int, default=16)
    ev.add_argument("--limit", type=_positive_int, help="at most this many questions per benchmark")
    ev.add_argument("--backend", choices=["auto", "vllm", "transformers"], default="auto",
                    help="auto: vLLM where it is installed and a GPU is visible, else transformers")
    ev.add_argument("--overwrite", action="store_true",
                    help="OUT holds predictions of another model or settings: delete them and start afresh")
    _add_judge_args(ev)
    ev.add_argument("--no-progress", action="store_true")
    ev.set_defaults(func=cmd_eval)
    rs = sub.add_parser("rescore", help="score saved predictions again, without the model",
                        description="Re-score OUT/predictions/*.jsonl of a tinyrs eval run in strict and/or compat mode.")
    rs.add_argument("--predictions", required=True, help="the --out folder of tinyrs eval, or its predictions/")
    rs.add_argument("--mode", choices=["strict", "compat", "both"], default="both")
    rs.add_argument("--out", help="also write the scores JSON here")
    rs.add_argument("--data-root", help="the evaluation files' folder, for the judge's images (default: from eval.json)")
    _add_judge_args(rs)
    rs.set_defaults(func=cmd_rescore)

    bench = sub.add_parser("bench", help="benchmarks: rollout and evaluation throughput", description="Measurements.")
    bsub = bench.add_subparsers(dest="bench_command", metavar="<bench command>")
    bro = bsub.add_parser("rollout", help="GRPO rollouts one at a time (released) vs batched (TRL)",
                          description="Generate the same completions the released trainer's way (a group's completions "
                          "one after another) and TRL's way (one batched generate call); report the speed-up.")
    bro.add_argument("--checkpoint", default="C", help="a checkpoint folder or a stage name (default: C)")
    bro.add_argument("--build", help="toy build with rl.json (default: data/toy)")
    bro.add_argument("--prompts", type=_positive_int, default=8)
    bro.add_argument("--generations", type=_positive_int, default=4)
    bro.add_argument("--new-tokens", type=_positive_int, default=64)
    bro.set_defaults(func=cmd_bench_rollout)
    bev = bsub.add_parser("eval", help="evaluation engine (batched) vs one sample at a time",
                          description="Answer the same benchmark questions one at a time and batched; report samples "
                          "per second, the speed-up and whether the answers are identical.")
    bev.add_argument("--checkpoint", default="S", help="a checkpoint folder or a stage name (default: S)")
    bev.add_argument("--data-root", help="evaluation files (default: data/toy/eval)")
    bev.add_argument("--benchmark", default="AID", help="a Table I name (default: AID)")
    bev.add_argument("--samples", type=_positive_int, default=48)
    bev.add_argument("--batch-size", type=_positive_int, default=16)
    bev.add_argument("--max-new-tokens", type=_positive_int, default=16)
    bev.add_argument("--think", choices=["system", "instruction"],
                     help="ask as a reasoning model (answers carry their reasoning): e.g. --checkpoint R --think instruction")
    bev.set_defaults(func=cmd_bench_eval)
    bt5 = bsub.add_parser("table5", help="Table V: memory of 2B/7B (meta device) and latency measured here",
                          description="Memory of Qwen2-VL-2B and -7B from their published configurations, and latency "
                          "per sample / tokens per second of the plan's models, one question at a time, with and "
                          "without reasoning. Needs results/<profile>/arms.json (tinyrs ablations).")
    _add_results_args(bt5)
    bt5.set_defaults(func=cmd_bench_table5)

    ab = sub.add_parser("ablations", help="train and evaluate the ablation arms of Tables II-IV and VI",
                        description="Every arm of the plan in tinyrs/configs/<profile>/ablations.yaml: a stage run from "
                        "its parent arm's checkpoint (the main chain's runs are reused), then the Table I evaluation; "
                        "independent arms in parallel. Writes results/<profile>/arms.json, which notebooks 09-14 read.")
    _add_results_args(ab)
    ab.add_argument("--tables", nargs="+", choices=["I", "II", "III", "IV", "VI"], help="only the arms these tables need")
    ab.add_argument("--nodes", nargs="+", help="only these arms (and what they start from), e.g. for one cluster job")
    ab.add_argument("--workers", type=_positive_int, help="arms trained at once (default: the plan's)")
    ab.add_argument("--seed", type=int, help="every arm's training seed (default: each recipe's own: toy 0, paper 42)")
    ab.add_argument("--runs-root", help="where runs/<stage>/ live (default: $TINYRS_RUNS or runs/)")
    ab.add_argument("--no-progress", action="store_true")
    ab.set_defaults(func=cmd_ablations)

    rp = sub.add_parser("reproduce", help="execute the notebooks in order with papermill",
                        description="Execute the numbered notebooks with papermill (parameters injected, executed "
                        "copies kept); a failure stops and names the notebook. After the data notebooks (01, 02) every "
                        "training run (main chain and ablation arms) is made at once, in parallel, and Table V is "
                        "measured (results/<profile>/); the notebooks after that reuse those runs.")
    rp.add_argument("--profile", choices=["toy", "paper"], default="toy")
    rp.add_argument("--only", help="comma-separated notebook numbers, e.g. 01,02")
    rp.add_argument("--out", help="folder for the executed notebooks (default: results/<profile>/notebooks)")
    rp.add_argument("--param", action="append", metavar="KEY=VALUE", help="extra notebook parameter, read as YAML like --set (seed=3 is a number)")
    rp.add_argument("--no-ablations", action="store_true",
                    help="do not make every run first: stage notebooks train what they need, table notebooks read "
                    "results/<profile>/ as it is")
    rp.set_defaults(func=cmd_reproduce)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["serve"]:  # every argument belongs to transformers serve, --help included
        from .serve import main as serve_main

        return serve_main(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        from . import __version__

        print(__version__)
        return 0
    if not getattr(args, "func", None):
        # `tinyrs data` without a data command: show that group's help
        group = {"data": "data", "model": "model", "bench": "bench"}.get(args.command)
        if group:
            parser.parse_args([group, "--help"])
        parser.print_help()
        return 0
    from .config import ConfigError
    from .data.images import ImageLoadError
    from .data.vhm import DataError
    from .llm import LLMConfigError
    from .model import CheckpointError
    from .redact import redact

    try:
        args.func(args)
    except (DataError, ImageLoadError, ConfigError, LLMConfigError, CheckpointError, FileNotFoundError,
            FileExistsError, NotADirectoryError) as e:  # bad input: one line
        if isinstance(e, FileExistsError) and e.filename and Path(e.filename).is_file():  # makedirs on an --out file
            e = f"{e.filename} is a file; a folder is needed there (an --out folder, say)"
        print(f"error: {redact(e)}", file=sys.stderr)  # a key typed into an option is not echoed
        return 2
    except KeyboardInterrupt:
        print(f"\ninterrupted: {RESUME_HINTS.get(args.command, 'run the same command again')}", file=sys.stderr)
        return 130
    return 0


# What a second run of an interrupted command does with the work already done.
RESUME_HINTS = {
    "train": "run the same command again to continue from the last checkpoint",
    "think": "run the same command again: the captions made so far are in the journal and are not asked again",
    "eval": "run the same command again: finished predictions are kept and not generated again",
    "reproduce": "run the same command again: finished runs and evaluations are reused, cut-off ones continued",
    "ablations": "run the same command again: finished runs and evaluations are reused, cut-off ones continued",
    "data": "run the same command again: the build starts over",
}


if __name__ == "__main__":
    sys.exit(main())
