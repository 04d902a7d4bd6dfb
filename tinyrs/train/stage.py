"""One entry point for every training stage: `run_stage("S", config="toy")`.

- base: the toy generalist (generic shapes domain, tokenizer trained here), SFTTrainer;
- P, S, C: supervised stages on TRL's SFTTrainer, loss on the answer only;
- R: GRPO on TRL's GRPOTrainer with the paper's rewards.

Full fine-tuning (vision tower included) by default; the recipe can freeze the vision tower, the
merger or the language model, train LoRA adapters (peft; merged into the saved checkpoint), set a
separate vision learning rate, or reproduce the released optimizer (`schedules`: one group, log warm-up, then constant).
"""
from __future__ import annotations

import ast
import hashlib
import json
import os
import resource
import sys
import time
import warnings
from datetime import timedelta
from pathlib import Path

import torch

from .. import paths
from ..config import ConfigError
from ..data.hf import read_qa_meta
from ..data.vhm import read_appended, resolve_train_image
from ..model import load_model, load_processor, save_checkpoint
from .callbacks import JsonlMetrics, RunClock, metrics_problem
from .recipes import FREEZABLE, load_recipe, trainer_config, training_entries
from .runs import (claim, finished_run, fingerprint, latest_run, link_arm, mark_complete, new_run_dir, package_versions,
                   point_latest, resolve_init, trainer_checkpoints, unfinished_runs, write_run_record)
from .schedules import RELEASED_OPTIMIZER, released_scheduler

VISION_TOWER = "model.visual."
MERGER = "model.visual.merger."


# --- modules: freezing, learning rates, LoRA --------------------------------------------------------

def module_of(name: str) -> str:
    if name.startswith(MERGER):
        return "merger"
    if name.startswith(VISION_TOWER):
        return "vision_tower"
    return "language_model"


def apply_freeze(model, freeze: dict | None) -> dict[str, int]:
    """Freeze whole modules; returns trainable parameter counts per module."""
    freeze = freeze or {}
    unknown = set(freeze) - set(FREEZABLE)
    if unknown:  # load_recipe has checked a recipe's; this is for a direct caller
        raise ConfigError(f"freeze: unknown module(s) {sorted(unknown)}; use {', '.join(FREEZABLE)}")
    counts = dict.fromkeys(FREEZABLE, 0)
    for name, p in model.named_parameters():
        m = module_of(name)
        p.requires_grad_(not freeze.get(m, False))
        counts[m] += getattr(p, "ds_numel", p.numel()) if p.requires_grad else 0  # ZeRO-3 leaves p empty
    if not any(counts.values()):
        raise ConfigError("freeze: every module is frozen, nothing would train")
    return counts


def lora_config(spec: dict | None):
    if not spec:
        return None
    from peft import LoraConfig

    return LoraConfig(r=int(spec.get("r", 16)), lora_alpha=int(spec.get("alpha", 32)),
                      lora_dropout=float(spec.get("dropout", 0.05)),
                      target_modules=spec.get("target_modules", ["q_proj", "k_proj", "v_proj", "o_proj"]),
                      task_type="CAUSAL_LM")


class ModuleLearningRates:
    """Trainer mixin: the vision tower gets `vision_lr` (the paper's intended 2e-6 beside 1e-5); or, with
    `released_optimizer`, what the released DeepSpeed config ran instead (`schedules`): one group of every
    parameter, weight decay on biases and norms too, and DeepSpeed's logarithmic warm-up to a constant rate."""

    vision_lr: float | None = None
    released_optimizer: bool = False

    def create_optimizer(self, *args, **kwargs):
        if (self.vision_lr is None and not self.released_optimizer) or self.optimizer is not None:
            return super().create_optimizer(*args, **kwargs)
        decay = set(self.get_decay_parameter_names(self.model))
        groups: dict[tuple[float, float], list] = {}
        for name, p in self.model.named_parameters():
            if not p.requires_grad:
                continue
            if self.released_optimizer:  # one group: one rate, and weight decay on every parameter
                lr, wd = self.args.learning_rate, self.args.weight_decay
            else:
                vision = module_of(name.removeprefix("base_model.model.")) == "vision_tower"
                lr = self.vision_lr if vision else self.args.learning_rate
                wd = self.args.weight_decay if name in decay else 0.0
            groups.setdefault((lr, wd), []).append(p)
        opt_cls, opt_kwargs = self.get_optimizer_cls_and_kwargs(self.args, self.model)
        opt_kwargs.pop("lr", None)
        self.optimizer = opt_cls([{"params": ps, "lr": lr, "weight_decay": wd} for (lr, wd), ps in groups.items()],
                                 **opt_kwargs)
        return self.optimizer

    def create_scheduler(self, num_training_steps: int, optimizer=None):
        if self.released_optimizer and self.lr_scheduler is None:
            self.lr_scheduler = released_scheduler(optimizer or self.optimizer, num_training_steps, self.args)
            self._created_lr_scheduler = True
        return super().create_scheduler(num_training_steps, optimizer)


class ResumeWeights:
    """Trainer mixin: `--resume` restores the trained weights. transformers 5 saves Qwen2-VL checkpoints in the
    published key layout (`model.layers.*`, `visual.*`) and the Trainer reloads them with a non-strict
    `load_state_dict` that matches none of those keys, so a resumed run went on from its *starting* weights
    (huggingface/transformers#43701). `from_pretrained` converts the keys; the strict load proves that every
    weight came back. LoRA adapters and FSDP shards keep the Trainer's own loading."""

    def _load_from_checkpoint(self, resume_from_checkpoint, model=None):
        from peft import PeftModel

        model = model if model is not None else self.model
        if self.is_fsdp_enabled or isinstance(model, PeftModel):
            return super()._load_from_checkpoint(resume_from_checkpoint, model)
        saved = load_model(resume_from_checkpoint, dtype=next(model.parameters()).dtype)
        model.load_state_dict(saved.state_dict(), strict=True)


def _trainer_class(kind: str):
    from trl import GRPOTrainer, SFTTrainer

    base = GRPOTrainer if kind == "grpo" else SFTTrainer
    return type(f"TinyRS{base.__name__}", (ModuleLearningRates, ResumeWeights, base), {})


# --- run folders that all processes of a distributed job agree on ------------------------------------

def _is_main() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def world_size() -> int:
    """The number of processes of this job (torchrun / accelerate launch set WORLD_SIZE; 1 otherwise)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def _shared_run_dir(stage: str, runs_root, resume: bool, timeout_s: int = 1800, arm: str | None = None,
                    key: str | None = None) -> tuple[Path, bool]:
    """Rank 0 picks (or creates) the run folder and tells the other ranks: (the folder, whether it resumes).
    --resume takes the newest unfinished run of the same ablation arm (arms of one stage may train at once);
    with a cache `key`, an unfinished run of the same recipe, data, starting checkpoint and code is continued
    instead of started again (an interrupted `tinyrs ablations`, `reproduce` or notebook picks up where it
    stopped). A run another live process is training is never taken (runs.claim). The process group made
    here is the one accelerate and DeepSpeed then use (they make none of their own): it gets the Trainer's
    `ddp_timeout`, not NCCL's 10 minutes (a rank waiting on another's judge calls or checkpoint write)."""
    run = None
    if _is_main():
        if resume:
            found = unfinished_runs(stage, runs_root, arm)
            if not found:
                raise FileNotFoundError(f"--resume: no unfinished run of stage {stage}{f' (arm {arm})' if arm else ''} "
                                        f"in {Path(runs_root or paths.runs_dir()) / stage}")
            if not claim(found[0]):
                raise ConfigError(f"--resume: {found[0]} is being trained by another process now")
            run = found[0]
        elif key is not None:
            run = next((r for r in unfinished_runs(stage, runs_root, arm, key) if claim(r)), None)
            if run is not None:
                resume = True
                print(f"stage {stage}: continuing the unfinished run {run} (same recipe, data and starting "
                      "checkpoint; --force starts a new run)", flush=True)
        run = run or new_run_dir(stage, runs_root)
    if world_size() > 1:
        import torch.distributed as dist

        if not dist.is_initialized():  # accelerate / the Trainer reuse this process group
            if torch.cuda.is_available():  # NCCL's collectives use the current device: each rank its own GPU
                torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
            dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo",
                                    timeout=timedelta(seconds=timeout_s))
        shared = [str(run) if run else None, resume]
        dist.broadcast_object_list(shared, src=0)
        run, resume = Path(shared[0]), shared[1]
    return run, resume


# --- data --------------------------------------------------------------------------------------------

def reused(stage: str, run: Path, mark_latest: bool, same: str) -> Path:
    """A finished run taken instead of training again; it becomes the stage's latest as a new run would, so the
    next stage of the chain starts from it."""
    print(f"stage {stage}: reusing finished run {run} ({same}; --force trains again)")
    if mark_latest:
        point_latest(run)
    return run


def stage_data(recipe: dict, progress: bool):
    """(entries, data folder, image root, qa metadata or None) of a recipe's training file."""
    entries, _, _, data_dir, image_root = training_entries(recipe, "exists", progress)
    return entries, data_dir, image_root, read_qa_meta(data_dir)


def training_modules(package_dir: Path = paths.PACKAGE_DIR) -> list[Path]:
    """The package's source files a training run can execute: this module and every package module it imports,
    directly or not (imports inside functions included), with the __init__ of each package on the way."""
    top = package_dir.name

    def source(module: str) -> Path | None:
        p = package_dir.parent.joinpath(*module.split("."))
        return next((f for f in (p / "__init__.py", p.with_suffix(".py")) if f.is_file()), None)

    found, todo = {}, [f"{top}.train.stage"]
    while todo:
        module = todo.pop()
        if module in found or (f := source(module)) is None:
            continue
        found[module] = f
        parts = module.split(".")
        package = parts if f.name == "__init__.py" else parts[:-1]
        todo += [".".join(parts[:i]) for i in range(1, len(parts))]
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.Import):
                todo += [a.name for a in node.names if a.name.split(".")[0] == top]
            elif isinstance(node, ast.ImportFrom):
                base = ".".join(package[:len(package) - node.level + 1] + [node.module or ""]) if node.level \
                    else node.module or ""
                base = base.rstrip(".")
                if base.split(".")[0] == top:  # `from . import x` may name a module x
                    todo += [base, *(f"{base}.{a.name}" for a in node.names)]
    return sorted(found.values())


def code_fingerprint(package_dir: Path = paths.PACKAGE_DIR) -> str:
    """A hash of the code a training run executes (`training_modules`), read as syntax: a run is reused only by
    the same code, but an edit to comments or layout, or to modules training never imports (the reports, the
    evaluation harness, the command line), reuses it. Docstrings are code here: editing one trains again."""
    h = hashlib.sha256()
    for f in training_modules(package_dir):
        h.update(f"{f.relative_to(package_dir)}\n{ast.dump(ast.parse(f.read_text()))}\n".encode())
    return h.hexdigest()[:16]


KEY_PACKAGES = ("torch", "transformers", "trl", "peft", "accelerate")  # a new version can train differently


def cache_key(recipe: dict, inputs: dict[str, str], init: str | None, settings: dict | None = None) -> str:
    """Identifies a run by what determines it: recipe, input data, starting checkpoint, the settings it reads
    outside the recipe (the judge of stage R, the toy base's model sizes, the training images' names and sizes,
    the process count and accelerate strategy it was launched with), code and library versions. The
    starting checkpoint counts by its content (however `init` named it: a stage, a folder) and the data
    folder by its resolved path (the default one too), so the same run asked for in two ways is found."""
    recipe = {k: v for k, v in recipe.items() if not k.startswith("_") and k != "init"}
    recipe["data_dir"] = str(Path(recipe.get("data_dir") or paths.data_dir(recipe.get("profile", "toy"))).resolve())
    versions = {k: v for k, v in package_versions().items() if k in KEY_PACKAGES}
    blob = json.dumps({"recipe": recipe, "settings": settings,
                       "inputs": {k: fingerprint(v) for k, v in inputs.items()},
                       "init": fingerprint(init) if init else None, "code": code_fingerprint(), "versions": versions},
                      sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def image_stamp(entries: list[dict], image_root: str | Path) -> str:
    """A digest of the training images' names and byte sizes: images replaced under the same names (exported
    again, tiled otherwise) make another run, while a rebuild that writes the same files does not (their times
    are left out; hashing every image's bytes at each start would take minutes on the paper's data)."""
    root = Path(image_root)
    h = hashlib.sha256()
    for path in sorted({resolve_train_image(e, root) for e in entries if e.get("image")}):
        h.update(f"{path.relative_to(root) if path.is_relative_to(root) else path}\t{path.stat().st_size}\n".encode())
    return h.hexdigest()


# what accelerate launch sets that changes how a run trains (strategy, precision); the process count is WORLD_SIZE
LAUNCH_ENV = ("ACCELERATE_MIXED_PRECISION", "ACCELERATE_USE_FSDP", "FSDP_VERSION", "ACCELERATE_USE_DEEPSPEED",
              "ACCELERATE_DEEPSPEED_ZERO_STAGE")


def launch_settings() -> dict | None:
    """How this process was launched, where it changes what trains: the number of processes (the global batch is
    per-device batch x accumulation x processes), accelerate's strategy and precision, and the content of a DeepSpeed
    config file it names (whose optimizer or scheduler block replaces the recipe's). None for one process
    started without accelerate, the default, whose runs' keys it leaves as they were."""
    launch = {k: os.environ[k] for k in LAUNCH_ENV if k in os.environ}
    if ds_file := os.environ.get("ACCELERATE_DEEPSPEED_CONFIG_FILE"):  # its optimizer or scheduler block wins
        launch["deepspeed_config"] = fingerprint(ds_file) if Path(ds_file).is_file() else ds_file
    if world_size() > 1:
        launch["world_size"] = world_size()
    return launch or None


def judge_settings(recipe: dict) -> dict | None:
    """What decides stage R's judge of open-ended answers: its LLM config section (and the server it reaches
    when the section names none). None for a supervised stage."""
    if recipe["kind"] != "grpo":
        return None
    from ..llm import llm_section

    section = llm_section(recipe.get("profile", "toy"), recipe.get("judge", "judge"))  # before a run folder is made
    server = os.environ.get("OPENAI_BASE_URL") if isinstance(section, dict) and not section.get("base_url") else None
    return {"judge": section, "server": server}


# --- running -----------------------------------------------------------------------------------------

def run_stage(stage: str, config: str = "toy", init: str | None = None, overrides: list[str] | None = None,
              resume: bool = False, runs_root: str | Path | None = None, reuse: bool = True,
              progress: bool | None = None, mark_latest: bool = True, arm: str | None = None) -> Path:
    """Train one stage; returns its run folder (runs/<stage>/<run-id>). With `reuse`, a finished run with
    the same recipe, data and starting checkpoint is returned instead of training again. `mark_latest`
    False leaves runs/<stage>/latest alone (ablation arms: `latest` is the main chain's run); `arm`
    names the finished run as that ablation arm (runs/arms/<arm>)."""
    run = _run_stage(stage, config, init, overrides, resume, runs_root, reuse, progress, mark_latest, arm)
    if arm and _is_main():
        link_arm(run, arm, runs_root)
    return run


def _run_stage(stage, config, init, overrides, resume, runs_root, reuse, progress, mark_latest, arm=None) -> Path:
    progress = sys.stderr.isatty() if progress is None else progress
    if not progress:  # checkpoint writes and dataset maps would otherwise print bars
        import datasets
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        datasets.disable_progress_bars()
    recipe = load_recipe(stage, config, overrides)
    if init is not None:
        recipe["init"] = init
    if recipe["kind"] == "base":
        from .base import run_base

        return run_base(recipe, runs_root=runs_root, resume=resume, reuse=reuse, progress=progress,
                        mark_latest=mark_latest)
    entries, data_dir, image_root, meta = stage_data(recipe, progress)
    init_path = resolve_init(recipe.get("init"), runs_root)
    inputs = {"train_file": str(data_dir / recipe["train_file"])}
    if recipe["kind"] == "grpo" and meta is not None:  # the answer types pick each sample's reward
        inputs["qa_meta"] = str(data_dir / "qa_meta.jsonl")
    settings = {"judge": judge_settings(recipe), "images": image_stamp(entries, image_root)}
    if launch := launch_settings():  # 2 GPUs train another run than 1 (twice the global batch)
        settings["launch"] = launch
    key = cache_key(recipe, inputs, init_path, settings)
    if reuse and not resume and (cached := finished_run(stage, key, runs_root)):
        return reused(stage, cached, mark_latest, "same recipe, data, starting checkpoint, code and library versions")
    t0 = time.time()
    img = recipe.get("image") or {}
    # the start is loaded before a run folder exists: a checkpoint that cannot be loaded leaves nothing behind
    processor = load_processor(init_path, img.get("min_pixels"), img.get("max_pixels"))
    # float32 weights even when training in bf16: the Trainer's autocast computes in bf16 while AdamW updates
    # fp32 weights (bf16 weights would lose every update under half a bf16 step: at lr 1e-6, nearly all of
    # them); ZeRO-3 and FSDP cast to bf16 themselves and keep fp32 masters
    model = load_model(init_path, dtype="float32")
    run, resume = _shared_run_dir(stage, runs_root, resume, int((recipe.get("trainer") or {}).get("ddp_timeout", 1800)),
                                  arm, key if reuse else None)
    seed = int(recipe.get("seed", 0))
    fields = dict(recipe.get("trainer") or {})
    if recipe.get("released_optimizer"):  # the nearest name; the trainer runs WarmupLR's log warm-up (run.json says)
        fields["lr_scheduler_type"] = "constant_with_warmup"
    args = trainer_config(recipe["kind"], run / "trainer", fields, seed=seed, disable_tqdm=not progress)
    if _is_main():
        write_run_record(run, stage, recipe, inputs, init_path, seed,
                         {"cache_key": key, "train_entries": len(entries), "data_dir": str(data_dir), "arm": arm,
                          "launch": launch,
                          "optimizer": RELEASED_OPTIMIZER if recipe.get("released_optimizer") else "intended"},
                         resume, trainer_args=args)
    trainable = apply_freeze(model, recipe.get("freeze"))
    trainer = build_trainer(recipe, model, processor, args, entries, image_root, meta, data_dir, run)
    trainer.add_callback(clock := RunClock(t0))
    with warnings.catch_warnings():  # deprecation notices between TRL and transformers, not the user's concern
        warnings.simplefilter("ignore", FutureWarning)
        trainer.train(resume_from_checkpoint=resume_point(run) if resume else None)
    final = trainer.model
    if recipe.get("lora"):
        final = final.merge_and_unload()
    weights = gathered_state_dict(trainer)
    if trainer.accelerator.is_main_process:
        save_checkpoint(final, processor, run / "checkpoint", state_dict=weights)
        logs = [r for r in trainer.state.log_history if "train_runtime" not in r]
        mark_complete(run, {"steps": trainer.state.global_step, "seconds": clock.seconds(),
                            "trainable_parameters": trainable, "last_log": logs[-1] if logs else {},
                            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)},
                      latest=mark_latest)
    trainer.accelerator.wait_for_everyone()  # the other processes leave once the run is saved, all together
    return run


def gathered_state_dict(trainer) -> dict | None:
    """The full weights where ZeRO-3 or FSDP shard them across processes, gathered as the Trainer's own
    `save_model` gathers them (every process must call this: the gather is collective; ZeRO-3 needs
    `zero3_save_16bit_model`, FSDP `FULL_STATE_DICT`, as the shipped accelerate configs set); None where the
    main process holds them whole (one process, DDP), as on the toy."""
    if trainer.is_deepspeed_enabled:
        return trainer.accelerator.get_state_dict(trainer.deepspeed)
    if trainer.is_fsdp_enabled:
        return trainer.accelerator.get_state_dict(trainer.model)
    return None


def resume_point(run: Path) -> str | None:
    """The checkpoint a resumed run continues from, said aloud (None: it trains again from step 0)."""
    ckpt = last_complete_checkpoint(run / "trainer")
    if _is_main():
        print(f"resuming {run} from {Path(ckpt).name} (step {ckpt.split('-')[-1]})" if ckpt else
              f"{run} saved no checkpoint before it stopped: training it again from step 0", flush=True)
    return ckpt


def last_complete_checkpoint(trainer_dir: Path) -> str | None:
    """The newest Trainer checkpoint that was written to the end. A run killed while saving leaves a
    folder without trainer_state.json; it is removed (on the main process) so resuming never reads it."""
    import shutil

    whole, torn = trainer_checkpoints(trainer_dir)
    for p in torn if _is_main() else []:
        print(f"removing {p}: its save was interrupted")
        shutil.rmtree(p, ignore_errors=True)
    return str(whole[-1]) if whole else None


def build_trainer(recipe: dict, model, processor, args, entries, image_root, meta, data_dir: Path, run: Path):
    from transformers import PrinterCallback

    from ..data.hf import to_grpo_dataset, to_sft_dataset

    kind = recipe["kind"]
    cls = _trainer_class(kind)
    cls.released_optimizer = bool(recipe.get("released_optimizer"))
    cls.vision_lr = None if cls.released_optimizer else recipe.get("vision_lr")
    callbacks = [JsonlMetrics(run / "metrics.jsonl")]
    common = dict(model=model, args=args, processing_class=processor, callbacks=callbacks,
                  peft_config=lora_config(recipe.get("lora")))
    if kind == "grpo":
        from ..llm import profile_judge
        from ..prompts import THINK_INSTRUCTION
        from ..rewards import make_rewards

        # the judge of open-ended answers: the section the recipe's `judge` names in the profile's LLM config
        judge = profile_judge(recipe.get("profile", "toy"), recipe.get("judge", "judge"), build_dir=data_dir,
                              cache_dir=run / "judge_cache")
        rewards = make_rewards(recipe.get("rewards", ["format", "accuracy"]), variant=recipe.get("reward_variant", "continuous"),
                               grounding=recipe.get("grounding_reward", "intended"), judge=judge,
                               judge_failure=recipe.get("judge_failure", "skip"))
        dataset = to_grpo_dataset(entries, image_root, THINK_INSTRUCTION, recipe.get("system_prompt"), meta)
        trainer = cls(reward_funcs=rewards, train_dataset=dataset, **common)
    else:
        from ..prompts import THINK_INSTRUCTION

        dataset = to_sft_dataset(entries, image_root, recipe.get("system_prompt"), THINK_INSTRUCTION,
                                 float(recipe.get("think_instruction_fraction") or 0.0), int(recipe.get("seed", 0)))
        trainer = cls(train_dataset=dataset, **common)
    if args.disable_tqdm:  # a quiet run logs to metrics.jsonl, not to stdout
        trainer.remove_callback(PrinterCallback)
    return trainer


def load_metrics(run: str | Path) -> list[dict]:
    """metrics.jsonl of a run (TRL's logs, one record per logging step)."""
    return [r for _, r in read_appended(Path(run) / "metrics.jsonl", metrics_problem, "delete that line")]


def stage_run(stage: str, profile: str, train: bool = True, overrides=(), runs_root=None) -> Path:
    """A stage notebook's run: trained (or an identical finished run reused) when `train`, else the stage's
    latest finished run."""
    if train:
        return run_stage(stage, profile, overrides=list(overrides), runs_root=runs_root, progress=False)
    run = latest_run(stage, runs_root)
    if run is None:
        raise FileNotFoundError(f"no finished run of stage {stage}: train it (tinyrs train {stage}) or set train=True")
    return run


def run_summary(run: str | Path) -> str:
    """One line: the run, its steps, wall time and peak memory (from complete.json)."""
    done = json.loads((Path(run) / "complete.json").read_text())
    return f"{run}: {done['steps']} steps in {done['seconds']} s, peak memory {done.get('peak_rss_mb')} MB"
