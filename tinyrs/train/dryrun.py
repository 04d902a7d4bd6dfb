"""`tinyrs train <stage> --config paper --dry-run`: everything but the training, without a GPU.

Builds the model on the meta device (Qwen2-VL-2B from its published dimensions when the start is a
hub id or a later stage; a local checkpoint's own config otherwise), checks the training file's
schema, and prints the parameter count, the per-GPU memory estimate for the chosen strategy, the
steps per epoch and the launch command.

Memory model (mixed-precision AdamW, per parameter): bf16 weights 2 B + bf16 gradients 2 B + fp32
master weights 4 B + Adam moments 8 B = 16 B (DDP trains fp32 weights under bf16 autocast: fp32 weights
4 B + gradients 4 B + moments 8 B, the same 16 B). DDP keeps all of it on every GPU; FSDP and ZeRO-3 shard
it over the GPUs; ZeRO-3 with offload keeps master weights and moments in CPU memory (zero3.yaml offloads
the bf16 weight shards too; this estimate counts them on the GPU). GRPO adds the
frozen reference model, which TRL builds in the policy's dtype: fp32 under DDP and FSDP (we load fp32 weights),
bf16 once DeepSpeed's bf16 engine holds it. Activations are estimated with activation checkpointing: the layer inputs
(2 B x hidden x tokens x layers) plus one layer's working set (~34 B x hidden x tokens). The result is a
planning estimate, not a measurement.
"""
from __future__ import annotations

import math
import shlex
from pathlib import Path

from ..config import CONFIGS, ConfigError
from ..data.hf import answer_turns
from ..model import PUBLISHED, QWEN2VL_2B, QWEN2VL_7B, count_parameters, named_checkpoint_errors
from ..redact import redact
from .recipes import STAGES, load_recipe, training_entries
from .runs import resolve_init

GIB = 1024 ** 3


def chain_root(recipe: dict, profile: str) -> str | None:
    """Where the chain that leads to this stage starts (P starts from a hub id or a folder; S from P; ...):
    the architecture of every stage is the architecture of that start."""
    init, seen = recipe.get("init"), {recipe["stage"]}
    while init in STAGES and init not in seen:
        seen.add(init)
        init = load_recipe(init, profile).get("init")
    return init


def meta_model(init: str | None):
    """The model to be trained, on the meta device (no weights, no memory, no download)."""
    import torch
    from transformers import AutoConfig, Qwen2VLConfig, Qwen2VLForConditionalGeneration

    local = init and Path(init).is_dir() and (Path(init) / "config.json").exists()
    if local:
        with named_checkpoint_errors(init):
            config = AutoConfig.from_pretrained(init)
        source = f"config of {init}"
    else:
        dims = PUBLISHED.get(str(init), QWEN2VL_2B)
        config = Qwen2VLConfig(text_config=dims["text"], vision_config=dims["vision"],
                               tie_word_embeddings=dims["text"]["tie_word_embeddings"])
        name = "Qwen2-VL-7B-Instruct" if dims is QWEN2VL_7B else "Qwen2-VL-2B-Instruct"
        source = f"{name}'s published dimensions"
    with torch.device("meta"):
        model = Qwen2VLForConditionalGeneration(config)
    return model, config, source


def memory_estimate(params: int, strategy: str, gpus: int, tokens_per_gpu: int, hidden: int, layers: int,
                    grpo: bool, logit_tokens: int = 0, vocab: int = 0, vision_tokens: int = 0, vision_hidden: int = 0,
                    vision_layers: int = 0) -> dict[str, float]:
    """Bytes per GPU, in GiB: model states by strategy, the GRPO reference model, the language model's and the
    vision tower's activations under activation checkpointing, and the logits (a vocabulary of 152K makes them as
    large as the rest: bf16 plus the fp32 copy the SFT loss takes, 6 bytes each; GRPO's temperature-scaled bf16
    copy, 4). A planning estimate: the generation KV cache, temporary buffers and the allocator's slack come on
    top, while ZeRO-3's offloaded weight shards are counted on the GPU."""
    n = max(1, gpus)
    # ZeRO-3 with offload (the paper's setting) moves master weights and moments to CPU memory; the bf16 weight
    # and gradient shards are counted as if on the GPU (zero3.yaml offloads the weight shards too, so this
    # overstates by at most 2 B per parameter / n, while a layer's gathered weights come on top)
    states = {"ddp": 16 * params, "fsdp": 16 * params / n, "zero3": 4 * params / n}
    if strategy not in states:
        raise ValueError(f"unknown strategy {strategy!r}: use ddp, fsdp or zero3")
    model_states = states[strategy]
    # the reference model in the policy's dtype (TRL): fp32 under DDP / FSDP, bf16 inside DeepSpeed's engine
    reference = {"ddp": 4 * params, "fsdp": 4 * params / n, "zero3": 2 * params / n}[strategy] if grpo else 0
    activations = 2 * hidden * tokens_per_gpu * layers + 34 * hidden * tokens_per_gpu
    vision = 2 * vision_hidden * vision_tokens * vision_layers + 34 * vision_hidden * vision_tokens
    logits = (4 if grpo else 6) * logit_tokens * vocab
    total = model_states + reference + activations + vision + logits
    return {"model_states_gib": model_states / GIB, "reference_model_gib": reference / GIB,
            "activations_gib": activations / GIB, "vision_activations_gib": vision / GIB, "logits_gib": logits / GIB,
            "total_gib": total / GIB}


def dry_run(recipe: dict, train_args: list[str] | None = None) -> dict:
    """The dry-run report of a recipe from `load_recipe` (which has checked its keys and trainer fields);
    `train_args` are the `tinyrs.train` arguments the printed launch command passes on (the stage, --config,
    --init, --set as given), so that it trains what was checked."""
    stage, kind = recipe["stage"], recipe["kind"]
    if kind == "base":
        raise ConfigError("the toy base has no dry run: it trains from generic data it makes itself, in one process "
                          "(about a minute on 2 cores); run `tinyrs train base`")
    from .stage import judge_settings

    judge_settings(recipe)  # stage R's judge section exists
    init = recipe.get("init")
    if init and init not in STAGES and not init.startswith("arm:"):  # a stage or arm is trained first, on the cluster
        recipe = {**recipe, "init": resolve_init(init)}  # a folder must exist now (a run folder: its checkpoint)
    model, config, source = meta_model(chain_root(recipe, recipe.get("profile", "paper")))
    params = count_parameters(model)
    entries, report, train_file, _, _ = training_entries(recipe, check_images="none")
    t = recipe.get("trainer", {})
    gpus, nodes = int(recipe.get("gpus", 1)), int(recipe.get("nodes", 1))
    per_device, accum = int(t.get("per_device_train_batch_size", 8)), int(t.get("gradient_accumulation_steps", 1))
    max_pixels = (recipe.get("image") or {}).get("max_pixels", 1003520)
    prompt_tokens = max_pixels // (28 * 28) + 256  # the image's tokens at the pixel limit, and the text
    if kind == "grpo":
        n = len(entries)  # one prompt per entry: its last question
        prompts_per_step = per_device * gpus * accum / int(t.get("num_generations", 4))
        steps = math.ceil(n / prompts_per_step)
        completion = int(t.get("max_completion_length", 512))
        tokens = per_device * (completion + prompt_tokens)
        logit_tokens = per_device * completion  # TRL asks the model for the completion's logits only
    else:
        n = sum(len(answer_turns(e)) for e in entries)  # the SFT dataset has one row per answer of a conversation
        steps = math.ceil(n / (per_device * gpus * accum))
        tokens = logit_tokens = per_device * prompt_tokens
    text, vision = config.text_config, config.vision_config
    mem = memory_estimate(params["total"], recipe.get("strategy", "ddp"), gpus, tokens, text.hidden_size,
                          text.num_hidden_layers, kind == "grpo", logit_tokens, text.vocab_size,
                          per_device * (max_pixels // (14 * 14)), vision.embed_dim, vision.depth)
    strategy = recipe.get("strategy", "ddp")
    launch = (f"accelerate launch --config_file {CONFIGS / 'accelerate' / f'{strategy}.yaml'} "
              f"--num_processes {gpus} --num_machines {nodes}" +
              (" --machine_rank $SLURM_NODEID --main_process_ip $MASTER_ADDR --main_process_port $MASTER_PORT"
               if nodes > 1 else "") + " -m tinyrs.train " +
              redact(shlex.join(train_args or [stage, "--config", recipe.get("profile", "paper")])))
    return {"stage": stage, "kind": kind, "model_source": source, "init": init, "parameters": params,
            "train_file": str(train_file), "entries": report.valid, "rows_per_epoch": n, "balanced": bool(recipe.get("balance")),
            "gpus": gpus, "nodes": nodes, "strategy": strategy,
            "global_batch": per_device * gpus * accum, "steps_per_epoch": steps,
            "memory_per_gpu": {k: round(v, 1) for k, v in mem.items()}, "launch": launch}


def format_dry_run(r: dict) -> str:
    p, m = r["parameters"], r["memory_per_gpu"]
    return "\n".join([
        f"stage {r['stage']} ({r['kind']}), starting from {r['init']} ({r['model_source']})",
        f"parameters: {p['total'] / 1e9:.3f} B total (vision {p['vision'] / 1e6:.0f} M, language {p['language'] / 1e6:.0f} M)",
        f"data: {r['train_file']}: {r['entries']} entries, schema ok ({r['rows_per_epoch']} "
        f"{'prompts' if r['kind'] == 'grpo' else 'training rows, one per answer,'} per epoch"
        f"{' after balancing' if r['balanced'] else ''})",
        f"batch: global {r['global_batch']} on {r['gpus']} GPU(s) / {r['nodes']} node(s) -> {r['steps_per_epoch']} steps per epoch",
        f"memory per GPU ({r['strategy']}): about {m['total_gib']} GiB = model states {m['model_states_gib']} + "
        f"reference {m['reference_model_gib']} + activations {m['activations_gib']} + vision tower "
        f"{m['vision_activations_gib']} + logits {m['logits_gib']} (an estimate: the generation cache and the "
        "allocator's slack come on top)",
        f"launch: {r['launch']}",
    ])
