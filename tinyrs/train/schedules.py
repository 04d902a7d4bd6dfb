"""The released SFT optimizer as the authors' DeepSpeed config ran it, and both learning-rate schedules step by step.

The released ZeRO-3 config (`sft/scripts/zero3_offload.json`) carries an `optimizer` block (AdamW) and a
`scheduler` block (WarmupLR), every value "auto". With them the Trainer hands DeepSpeed all parameters as one
group: the intended per-module rates (vision tower 2e-6 beside 1e-5) and the exclusion of biases and norms from
weight decay are lost, and DeepSpeed's WarmupLR replaces the cosine schedule. Its default warm-up is logarithmic,
from 0 (transformers fills `warmup_min_lr` with 0) up to the learning rate, which it then keeps to the end.
"""
from __future__ import annotations

import math

RELEASED_OPTIMIZER = "released: one AdamW group of every parameter; DeepSpeed WarmupLR (log warm-up, then constant)"


def released_lr_factor(step: int, warmup_steps: int) -> float:
    """The learning rate of optimizer step `step` (from 0) as a fraction of the peak under DeepSpeed's WarmupLR
    (warmup_type "log"): it sets the minimum when built and steps after each update, so step k runs at
    log(k) / log(W) (the first two steps at 0), W = max(2, warm-up steps), and at the peak from step W on."""
    return min(1.0, math.log(max(step, 1)) / math.log(max(2, warmup_steps)))


def released_scheduler(optimizer, num_training_steps: int, args):
    """WarmupLR as transformers' "auto" fills it: the warm-up steps are the Trainer's (at least 1)."""
    from torch.optim.lr_scheduler import LambdaLR

    warmup = max(1, args.get_warmup_steps(num_training_steps))
    return LambdaLR(optimizer, lambda step: released_lr_factor(step, warmup))


def schedule_curves(args, vision_lr: float | None, total_steps: int) -> list[dict]:
    """The learning rate of each optimizer step of a run of `total_steps`: intended (the Trainer's schedule from
    `args`, a TrainingArguments; the vision tower at `vision_lr` when given) and released (one rate everywhere)."""
    import torch
    from transformers import get_scheduler

    def rates(groups: list[float], make) -> list[list[float]]:
        opt = torch.optim.SGD([{"params": [torch.zeros(1, requires_grad=True)], "lr": lr} for lr in groups])
        sched, out = make(opt), []
        for _ in range(total_steps):
            out.append([g["lr"] for g in opt.param_groups])
            opt.step()
            sched.step()
        return out

    lr = args.learning_rate
    intended = rates([lr, vision_lr or lr], lambda opt: get_scheduler(
        args.lr_scheduler_type, optimizer=opt, num_warmup_steps=args.get_warmup_steps(total_steps),
        num_training_steps=total_steps, scheduler_specific_kwargs=args.lr_scheduler_kwargs))
    released = rates([lr], lambda opt: released_scheduler(opt, total_steps, args))
    return [{"step": k, "intended: language model and merger": i[0], "intended: vision tower": i[1],
             "released: every parameter": r[0]} for k, (i, r) in enumerate(zip(intended, released))]
