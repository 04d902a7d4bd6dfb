"""Stage recipes: tinyrs/configs/<profile>/<stage>.yaml (or any YAML file), with overrides.

`--set key=value` sets a recipe key (`init=S`, `reward_variant=binary`, `freeze.vision_tower=true`)
or, when the key is not a recipe key, a trainer field (`max_steps=30`, `learning_rate=1e-4`): any
field of TRL's SFTConfig / GRPOConfig, checked when the trainer config is built."""
from __future__ import annotations

import copy
import typing
from pathlib import Path

from ..config import CONFIGS, ConfigError, load_yaml, parse_override

STAGES = ("base", "P", "S", "C", "R")


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
        if not isinstance(recipe.get(section), dict):
            raise ConfigError(f"override {item!r}: the recipe has no section {section!r}")
        recipe[section][leaf] = value
    elif key in recipe:
        recipe[key] = value
    else:  # not a recipe key: a trainer field (validated by the trainer config)
        recipe.setdefault("trainer", {})[key] = value


def load_recipe(stage: str, config: str = "toy", overrides: list[str] | None = None) -> dict:
    if stage not in STAGES:
        raise ConfigError(f"unknown stage {stage!r}; stages are {', '.join(STAGES)}")
    path = recipe_path(stage, config)
    recipe = load_yaml(path.read_text()) or {}
    if recipe.get("stage") != stage:
        raise ConfigError(f"{path} is a recipe for stage {recipe.get('stage')!r}, not {stage!r}")
    recipe = copy.deepcopy(recipe)
    for item in overrides or []:
        set_override(recipe, item)
    recipe["_source"] = str(path)
    return recipe


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
    hints = typing.get_type_hints(cls)
    for key, value in fields.items():
        allowed = set(typing.get_args(hints[key]) or [hints[key]])
        if allowed <= {bool, int, float, type(None)} and not _fits(value, allowed):
            wanted = "true/false" if bool in allowed else "a number" if float in allowed else "a whole number"
            raise ConfigError(f"{cls.__name__} field {key}: {value!r} is not {wanted}")
    return cls


def _fits(value, allowed: set) -> bool:
    if isinstance(value, bool):  # a bool is an int to Python, not to a trainer field
        return bool in allowed
    if isinstance(value, int):
        return int in allowed or float in allowed
    return isinstance(value, tuple(allowed))
