"""VHM entries -> `datasets.Dataset` in TRL's conversational prompt-completion format.

Each row: `prompt` (system? + user turn with the image first, then the question), `completion`
(the assistant's answer: the only tokens with loss), `images` (one file path). Images are decoded
lazily, through `load_rgb`, when a batch is drawn: a 100K-image set never sits in memory, and
GeoTIFF / RGBA / grey inputs reach the processor as RGB.
"""
from __future__ import annotations

from pathlib import Path

from .images import load_rgb
from .vhm import IMAGE_TOKEN, resolve_train_image


def to_messages(entry: dict, system: str | None = None) -> tuple[list[dict], list[dict]]:
    """(prompt, completion) messages of one VHM entry. Multi-turn conversations keep the earlier
    turns in the prompt; the loss falls on the last answer only."""
    prompt: list[dict] = [{"role": "system", "content": [{"type": "text", "text": system}]}] if system else []
    turns = entry["conversations"]
    last_gpt = max(i for i, t in enumerate(turns) if t["from"] == "gpt")
    for i, turn in enumerate(turns[:last_gpt]):
        text = turn["value"]
        if turn["from"] == "human":
            content = []
            if i == 0:  # the image comes first, as in the released harness
                content.append({"type": "image"})
            content.append({"type": "text", "text": text.replace(IMAGE_TOKEN, "").strip()})
            prompt.append({"role": "user", "content": content})
        else:
            prompt.append({"role": "assistant", "content": [{"type": "text", "text": text}]})
    completion = [{"role": "assistant", "content": [{"type": "text", "text": turns[last_gpt]["value"]}]}]
    return prompt, completion


class LoadImages:
    """A datasets transform: image paths -> RGB PIL images (picklable for dataloader workers)."""

    def __call__(self, batch: dict) -> dict:
        if "images" in batch:
            batch["images"] = [[load_rgb(p) for p in paths] for paths in batch["images"]]
        return batch


def to_sft_dataset(entries: list[dict], image_root: str | Path, system: str | None = None):
    """A TRL prompt-completion dataset (loss on the answer only) with lazily loaded images."""
    from datasets import Dataset

    prompts, completions, images, ids = [], [], [], []
    for k, e in enumerate(entries):
        p, c = to_messages(e, system)
        prompts.append(p)
        completions.append(c)
        images.append([str(resolve_train_image(e, image_root))])
        ids.append(str(e.get("id", k)))
    ds = Dataset.from_dict({"prompt": prompts, "completion": completions, "images": images, "id": ids})
    return ds.with_transform(LoadImages())
