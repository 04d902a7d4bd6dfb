"""`python -m tinyrs.train <stage> ...` (the same as `tinyrs train`); what accelerate and torchrun launch."""
from __future__ import annotations

import argparse
import json
import sys


def add_arguments(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p.add_argument("stage", choices=["base", "P", "S", "C", "R"], help="base (toy generalist), P, S, C or R")
    p.add_argument("--config", default="toy", help="recipe: a profile (toy, paper) or a YAML file")
    p.add_argument("--init", help="starting checkpoint: a folder, a stage name (its latest run) or a hub id")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override a recipe key or any trainer field, e.g. max_steps=30, reward_variant=binary")
    p.add_argument("--resume", action="store_true", help="continue the stage's newest unfinished run from its last "
                   "checkpoint (without --resume, an unfinished run of the same recipe, data and starting checkpoint "
                   "is continued too)")
    p.add_argument("--dry-run", action="store_true", help="build on the meta device, check data, estimate, print launch")
    p.add_argument("--force", action="store_true",
                   help="start a new run even if a finished or interrupted run with the same inputs exists")
    p.add_argument("--runs-root", help="folder of runs/<stage>/ (default: $TINYRS_RUNS or runs/)")
    p.add_argument("--arm", metavar="NAME", help="an ablation arm of tinyrs/configs/<profile>/ablations.yaml: name the run "
                   "runs/arms/NAME (later --init arm:NAME); an arm off the main chain does not become the stage's latest")
    p.add_argument("--no-progress", action="store_true")
    return p


def run(args) -> int:
    from .dryrun import dry_run, format_dry_run
    from .recipes import load_recipe
    from .stage import run_stage

    main_chain = True
    if args.arm:
        from ..config import ConfigError
        from ..report.ablations import load_plan

        plan = load_plan(args.config if args.config in ("toy", "paper") else "paper")
        if args.arm not in plan["nodes"]:
            raise ConfigError(f"--arm {args.arm}: not an arm of the plan ({', '.join(plan['nodes'])})")
        main_chain = args.arm in plan["main_chain"]
    if args.dry_run:
        recipe = load_recipe(args.stage, args.config, args.set)
        if args.init:
            recipe["init"] = args.init
        # the launch line trains exactly what was checked, named as it was asked
        train_args = [args.stage, "--config", args.config, *(["--init", args.init] if args.init else []),
                      *[a for item in args.set or [] for a in ("--set", item)],
                      *(["--arm", args.arm] if args.arm else []), *(["--runs-root", args.runs_root] if args.runs_root else []),
                      *(["--resume"] if args.resume else [])]
        report = dry_run(recipe, train_args)
        print(format_dry_run(report))
        print(json.dumps(report, default=str))
        return 0
    progress = False if args.no_progress else None
    run_dir = run_stage(args.stage, args.config, init=args.init, overrides=args.set, resume=args.resume,
                        runs_root=args.runs_root, reuse=not args.force, progress=progress, mark_latest=main_chain,
                        arm=args.arm)
    print(f"stage {args.stage}: {run_dir}")
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():  # an orderly end: a process group left to the interpreter's
        dist.destroy_process_group()                    # exit can abort a rank ("terminate called ...")
    return 0


def main(argv: list[str] | None = None) -> int:
    from ..cli import main as cli_main

    return cli_main(["train", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
