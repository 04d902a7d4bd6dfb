"""Stage recipes: tinyrs/configs/<profile>/<stage>.yaml (or any YAML file), with overrides.

`--set key=value` sets a recipe key (`init=S`, `reward_variant=binary`, `freeze.vision_tower=true`)
or, when the key is not a recipe key, a trainer field (`max_steps=30`, `learning_rate=1e-4`): any
field of TRL's SFTConfig / GRPOConfig. Both are checked (name, kind of value, counts > 0) when the recipe
loads, so also before a --dry-run: check_recipe, which calls check_trainer_fields."""
from __future__ import annotations

import copy
import typing
from pathlib import Path

from .. import paths
from ..config import CONFIGS, ConfigError, is_number, is_whole, load_yaml_file, parse_override
from ..data.balance import balance, balance_settings, is_target
from ..data.build import image_root_of
from ..data.vhm import DataError, read_training_file
from ..rewards import GROUNDING_REWARDS, JUDGE_FAILURES, REGISTRY, VARIANTS

STAGES = ("base", "P", "S", "C", "R")
FREEZABLE = ("vision_tower", "merger", "language_model")  # the modules a recipe's freeze: section names


def recipe_path(stage: str, config: str) -> Path:
    if config in ("toy", "paper"):
        p = CONFIGS / config / f"{stage}.yaml"
        if not p.exists():
            raise ConfigError(f"the {config} profile has no recipe for stage {stage!r} ({p})")
        return p
    p = Path(config)
    if not p.is_file():
        raise ConfigError(f"no recipe {config!r}: give a profile (toy, paper) or a YAML file")
    return p


def set_override(recipe: dict, item: str) -> None:
    key, value = parse_override(item)
    if key.startswith("trainer."):
        recipe.setdefault("trainer", {})[key[len("trainer."):]] = value
    elif "." in key:
        section, leaf = key.split(".", 1)
        if recipe.get(section) is None and isinstance(RECIPE_KEYS.get(section), dict):
            recipe[section] = {}  # an empty section (lora: null) starts with its first key
        if not isinstance(recipe.get(section), dict):
            raise ConfigError(f"override {item!r}: the recipe has no section {section!r}")
        recipe[section][leaf] = value
    elif key in recipe or key in RECIPE_KEYS:
        recipe[key] = value
    else:  # not a recipe key: a trainer field (validated by the trainer config)
        recipe.setdefault("trainer", {})[key] = value


def load_recipe(stage: str, config: str = "toy", overrides: list[str] | None = None) -> dict:
    if stage not in STAGES:
        raise ConfigError(f"unknown stage {stage!r}; stages are {', '.join(STAGES)}")
    path = recipe_path(stage, config)
    recipe = load_yaml_file(path) or {}
    if not isinstance(recipe, dict):
        raise ConfigError(f"{path} is not a recipe (a mapping of recipe keys)")
    if recipe.get("stage") != stage:
        raise ConfigError(f"{path} is a recipe for stage {recipe.get('stage')!r}, not {stage!r}")
    recipe = copy.deepcopy(recipe)
    for item in overrides or []:
        set_override(recipe, item)
    check_recipe(recipe, f"recipe {path}" + (" with --set" if overrides else ""))
    recipe["_source"] = str(path)
    return recipe


# What each recipe key takes: a kind of value, a tuple of choices, or a section (a mapping of its keys).
NULLABLE = {"data_dir", "init", "system_prompt", "balance", "vision_lr", "lora", "image"}
RECIPE_KEYS = {
    "stage": STAGES, "kind": ("base", "sft", "grpo"), "profile": ("toy", "paper"), "model": "text",
    "data_dir": "text", "train_file": "text", "init": "text", "system_prompt": "text", "judge": "text",
    "seed": "whole", "gpus": "count", "nodes": "count", "strategy": ("ddp", "fsdp", "zero3"),
    "think_instruction_fraction": "fraction", "vision_lr": "positive", "released_optimizer": "flag",
    "rewards": "rewards", "reward_variant": VARIANTS, "grounding_reward": GROUNDING_REWARDS,
    "judge_failure": JUDGE_FAILURES, "trainer": "mapping",
    "freeze": {module: "flag" for module in FREEZABLE},
    "balance": {"cap": "one or more", "target": "balance target"},
    "lora": {"r": "count", "alpha": "count", "dropout": "fraction", "target_modules": "list"},
    "image": {"min_pixels": "count", "max_pixels": "count"},
    "generic": {"samples": "count", "think_fraction": "fraction", "seed": "whole"},
}


KINDS = {
    "text": (lambda v: isinstance(v, str), "text"),
    "whole": (lambda v: is_whole(v) and v >= 0, "a whole number >= 0"),
    "count": (lambda v: is_whole(v) and v > 0, "a whole number > 0"),
    "positive": (lambda v: is_number(v) and v > 0, "a number > 0"),
    "one or more": (lambda v: is_number(v) and v >= 1, "a number >= 1"),
    "fraction": (lambda v: is_number(v) and 0 <= v <= 1, "a number from 0 to 1"),
    "balance target": (is_target, "max, median or a number of entries > 0"),
    "flag": (lambda v: isinstance(v, bool), "true or false"),
    "list": (lambda v: isinstance(v, list), "a list"),
    "mapping": (lambda v: isinstance(v, dict), "a mapping"),
    "rewards": (lambda v: isinstance(v, list) and v and all(n in REGISTRY for n in v),
                f"a list of reward names ({', '.join(REGISTRY)})"),
}


def training_entries(recipe: dict, check_images: str = "exists", progress: bool = False):
    """(entries, read report, training file, data folder, image root) of a recipe's training file, the entries
    balanced where the recipe balances. A missing or empty file is an error that says what makes it."""
    profile = recipe.get("profile", "toy")
    data_dir = Path(recipe.get("data_dir") or paths.data_dir(profile))
    path = data_dir / recipe["train_file"]
    if not path.exists():
        make = "tinyrs think" if "think" in path.name else f"tinyrs data build --profile {profile}"
        if profile == "paper" and path.name == "pretrain.json":  # a paper build writes it from VHM's captions only
            make += " --pretrain-json VHM_PRETRAIN.json"
        raise FileNotFoundError(f"training file {path} is missing: `{make}` makes it; a build elsewhere is "
                                f"named with --set data_dir=DIR")
    image_root = image_root_of(data_dir)
    entries, report = read_training_file(path, image_root, check_images=check_images, progress=progress)
    if not entries:
        raise DataError(path, None, "no entries: nothing to train on")
    if "think" in path.name:
        from ..data.think import stale_captions

        if problem := stale_captions(path, entries):  # the file as just read, not read again
            raise DataError(path, None, problem)
    if recipe.get("balance"):
        cap, target = balance_settings(recipe["balance"], "recipe")
        entries, _ = balance(entries, cap, target, seed=int(recipe.get("seed", 0)))
    return entries, report, path, data_dir, image_root


def check_recipe(recipe: dict, where: str) -> None:
    """Every key known and every value of the kind it takes, before any data, model or run folder is touched:
    a typo (`reward_variant: binry`, `freeze.vision_towr`) or a word (`freeze.vision_tower=maybe`, which is
    truthy) would otherwise train something else silently or fail deep inside a job."""
    for key, value in recipe.items():
        if key not in RECIPE_KEYS:
            raise ConfigError(f"{where}: unknown recipe key {key!r} (trainer fields go under trainer:); "
                              f"recipe keys are {', '.join(RECIPE_KEYS)}")
        spec = RECIPE_KEYS[key]
        if value is None and key in NULLABLE:
            continue
        if isinstance(spec, dict):
            if not isinstance(value, dict):
                raise ConfigError(f"{where}: {key} takes a mapping of {', '.join(spec)}, not {value!r}")
            for leaf, v in value.items():
                if leaf not in spec:
                    raise ConfigError(f"{where}: unknown key {key}.{leaf}; {key} takes {', '.join(spec)}")
                _check_value(f"{key}.{leaf}", v, spec[leaf], where)
        else:
            _check_value(key, value, spec, where)
    required = ("kind",) if recipe.get("kind") == "base" else ("kind", "train_file")  # the base makes its own data
    if missing := [k for k in required if k not in recipe]:
        raise ConfigError(f"{where}: missing recipe key(s) {', '.join(missing)}")
    if isinstance(recipe.get("trainer"), dict):
        try:
            check_trainer_fields(recipe.get("kind", "sft"), recipe["trainer"])
        except ConfigError as e:
            raise ConfigError(f"{where}: {e}") from None
    if recipe.get("lora") and recipe.get("strategy") in ("fsdp", "zero3"):
        raise ConfigError(f"{where}: LoRA runs need strategy ddp: the adapters are merged into the full weights "
                          "at the end, which sharded weights (fsdp, zero3) are not")


def _check_value(name: str, value, spec, where: str) -> None:
    if isinstance(spec, tuple):
        if value not in spec:
            raise ConfigError(f"{where}: {name} is one of {', '.join(spec)}, not {value!r}")
        return
    ok, wanted = KINDS[spec]
    if not ok(value):
        raise ConfigError(f"{where}: {name} takes {wanted}, not {value!r}")


def trainer_config(kind: str, output_dir: str | Path, fields: dict, **defaults):
    """SFTConfig / GRPOConfig from the recipe's trainer fields; an unknown field is a clear error."""
    import torch

    cuda = torch.cuda.is_available()
    base = dict(output_dir=str(output_dir), report_to=[], use_cpu=not cuda, bf16=cuda, save_strategy="steps",
                save_total_limit=2, dataloader_num_workers=0, activation_checkpointing=False, seed=0)
    if kind in ("sft", "base"):
        base.update(max_length=None, completion_only_loss=True)
    base.update(defaults)
    base.update(fields)
    cls = check_trainer_fields(kind, base)
    try:
        return cls(**base)
    except ValueError as e:  # TRL's own checks, e.g. a batch not divisible by num_generations
        raise ConfigError(f"{cls.__name__}: {e}") from e


def check_trainer_fields(kind: str, fields: dict):
    """The stage's TRL config class (SFTConfig or GRPOConfig); a clear error for a field it does not have
    (a typo in --set, say) or a word where it takes a number or true/false, also on --dry-run, before a
    cluster job is queued."""
    from trl import GRPOConfig, SFTConfig

    cls = SFTConfig if kind in ("sft", "base") else GRPOConfig
    known = cls.__dataclass_fields__
    unknown = sorted(set(fields) - set(known))
    if unknown:
        raise ConfigError(f"unknown {cls.__name__} field(s) {unknown}")
    if "hub_token" in fields:  # a recipe is written to run.json and into the printed launch line
        raise ConfigError("hub_token is refused: give the Hub token through $HF_TOKEN, not a recipe or --set")
    reports = fields.get("report_to") or []
    reports = {reports} if isinstance(reports, str) else set(reports)
    if not reports & {"none", "all"}:  # a logger that is not installed fails only when the trainer starts
        from transformers.integrations import get_available_reporting_integrations

        if absent := sorted(reports - set(get_available_reporting_integrations())):
            raise ConfigError(f"{cls.__name__} field report_to: {absent} not installed here (pip install it, or "
                              "leave report_to out: every run logs to its metrics.jsonl)")
    from transformers.training_args import OptimizerNames, SchedulerType

    for key, names in (("lr_scheduler_type", SchedulerType), ("optim", OptimizerNames)):
        if key in fields:  # a name the config would refuse only when built (after a cluster job has queued)
            choices = [e.value for e in names]
            if str(getattr(fields[key], "value", fields[key])) not in choices:
                raise ConfigError(f"{cls.__name__} field {key}: {fields[key]!r} is not one of {choices}")
    hints = typing.get_type_hints(cls)
    for key, value in fields.items():
        allowed = set(typing.get_args(hints[key]) or [hints[key]])
        if allowed <= {bool, int, float, type(None)} and not _fits(value, allowed):
            wanted = "true/false" if bool in allowed else "a number" if float in allowed else "a whole number"
            raise ConfigError(f"{cls.__name__} field {key}: {value!r} is not {wanted}")
        if key in POSITIVE_FIELDS and value is not None and not (value > 0 or (key == "max_steps" and value == -1)):
            raise ConfigError(f"{cls.__name__} field {key}: {value!r} must be > 0"
                              + (" (or -1: no limit)" if key == "max_steps" else ""))
    return cls


# Fields whose 0 or negative value fails deep inside a job, or trains nothing (0 epochs finishes "done").
POSITIVE_FIELDS = ("per_device_train_batch_size", "gradient_accumulation_steps", "num_train_epochs", "max_steps",
                   "learning_rate", "num_generations", "max_completion_length", "logging_steps", "save_steps")


def _fits(value, allowed: set) -> bool:
    if isinstance(value, bool):  # a bool is an int to Python, not to a trainer field
        return bool in allowed
    if isinstance(value, int):
        return int in allowed or float in allowed
    return isinstance(value, tuple(allowed))
