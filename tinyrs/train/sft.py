"""Supervised fine-tuning on TRL's SFTTrainer: prompt-completion data, loss on the answer only."""
from __future__ import annotations

from pathlib import Path

import torch


def sft_config(output_dir: str | Path, **overrides):
    """An SFTConfig with defaults that suit both a laptop CPU and a GPU node; any field can be overridden."""
    from trl import SFTConfig

    cuda = torch.cuda.is_available()
    defaults = dict(
        output_dir=str(output_dir), per_device_train_batch_size=16, gradient_accumulation_steps=1,
        learning_rate=1e-5, num_train_epochs=1.0, lr_scheduler_type="cosine", warmup_steps=0.03, weight_decay=0.1,
        logging_steps=10, save_strategy="no", report_to=[], use_cpu=not cuda, bf16=cuda,
        dataloader_num_workers=0, activation_checkpointing=False, max_length=None, seed=0,
        completion_only_loss=True,  # loss only on the assistant answer, as in the paper's recipe
        remove_unused_columns=True,
    )
    defaults.update(overrides)
    return SFTConfig(**defaults)


def train_sft(model, processor, train_dataset, args, callbacks=()):
    """Run TRL's SFTTrainer and return it (trained; the model is `trainer.model`)."""
    from trl import SFTTrainer

    from transformers import PrinterCallback

    trainer = SFTTrainer(model=model, args=args, train_dataset=train_dataset, processing_class=processor,
                         callbacks=list(callbacks))
    if args.disable_tqdm:  # no bar means a quiet run: the logs go to metrics files, not to stdout
        trainer.remove_callback(PrinterCallback)
    trainer.train()
    return trainer
