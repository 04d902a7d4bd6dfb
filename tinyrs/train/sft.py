"""Supervised fine-tuning on TRL's SFTTrainer: prompt-completion data, loss on the answer only."""
from __future__ import annotations

from pathlib import Path

from .recipes import trainer_config


def sft_config(output_dir: str | Path, **overrides):
    """An SFTConfig with the package's defaults (CPU or GPU, answer-only loss); any field can be overridden."""
    fields = dict(per_device_train_batch_size=16, learning_rate=1e-5, num_train_epochs=1.0, lr_scheduler_type="cosine",
                  warmup_steps=0.03, weight_decay=0.1, logging_steps=10, save_strategy="no")
    fields.update(overrides)
    return trainer_config("sft", output_dir, fields)


def train_sft(model, processor, train_dataset, args, callbacks=()):
    """Run TRL's SFTTrainer and return it (trained; the model is `trainer.model`)."""
    from transformers import PrinterCallback
    from trl import SFTTrainer

    trainer = SFTTrainer(model=model, args=args, train_dataset=train_dataset, processing_class=processor,
                         callbacks=list(callbacks))
    if args.disable_tqdm:  # no bar means a quiet run: the logs go to metrics files, not to stdout
        trainer.remove_callback(PrinterCallback)
    trainer.train()
    return trainer
