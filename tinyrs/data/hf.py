"""VHM entries -> `datasets.Dataset` in TRL's conversational prompt-completion format.

Each row: `prompt` (system? + user turn with the image first, then the question), `completion`
(the assistant's answer: the only tokens with loss), `images` (one file path). Images are decoded
lazily, through `load_rgb`, when a batch is drawn: a 100K-image set never sits in memory, and
GeoTIFF / RGBA / grey inputs reach the processor as RGB.
"""
from __future__ import annotations

from pathlib import Path

from ..boxes import parse_box
from .images import load_rgb
from .vhm import IMAGE_TOKEN, resolve_train_image, split_tag


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


def to_sft_dataset(entries: list[dict], image_root: str | Path, system: str | None = None,
                   instruction: str | None = None, instruction_fraction: float = 0.0, seed: int = 0):
    """A TRL prompt-completion dataset (loss on the answer only) with lazily loaded images.
    `instruction` is appended to a seeded `instruction_fraction` of the questions."""
    import numpy as np
    from datasets import Dataset

    rng = np.random.default_rng(seed)
    prompts, completions, images, ids = [], [], [], []
    for k, e in enumerate(entries):
        p, c = to_messages(e, system)
        if instruction and rng.random() < instruction_fraction:
            p[-1]["content"][-1]["text"] += f"\n{instruction}"
        prompts.append(p)
        completions.append(c)
        images.append([str(resolve_train_image(e, image_root))])
        ids.append(str(e.get("id", k)))
    ds = Dataset.from_dict({"prompt": prompts, "completion": completions, "images": images, "id": ids})
    return ds.with_transform(LoadImages())


OPEN_ENDED_MIN_WORDS = 6


def answer_type_of(entry: dict, meta: dict | None = None) -> str:
    """closed | grounding | open. The toy build records it (qa_meta.jsonl); for real VHM data:
    {VG} answers are grounding, long {IT} answers are open-ended, everything else is closed."""
    if meta and entry.get("id") in meta:
        return meta[entry["id"]]["answer_type"]
    from .think import last_turns

    _, question, answer = last_turns(entry)
    task = split_tag(question)[0]
    if task == "VG" or (parse_box(answer) is not None and len(answer.split()) <= 4):
        return "grounding"
    if task == "IT" and len(answer.split()) >= OPEN_ENDED_MIN_WORDS:
        return "open"
    return "closed"


def to_grpo_dataset(entries: list[dict], image_root: str | Path, instruction: str, system: str | None = None,
                    meta: dict | None = None):
    """A TRL GRPO dataset: prompts that ask for <reasoning> and <answer>, with each sample's answer type,
    truth (`solution`), question (for the judge) and image path (for the judge) as extra columns."""
    from datasets import Dataset

    from .think import last_turns

    rows = {"prompt": [], "images": [], "answer_type": [], "solution": [], "question": [], "image_path": [], "id": []}
    for k, e in enumerate(entries):
        _, question, answer = last_turns(e)
        text = question.replace(IMAGE_TOKEN, "").strip()
        prompt = [{"role": "system", "content": [{"type": "text", "text": system}]}] if system else []
        prompt.append({"role": "user", "content": [{"type": "image"}, {"type": "text", "text": f"{text}\n{instruction}"}]})
        path = str(resolve_train_image(e, image_root))
        rows["prompt"].append(prompt)
        rows["images"].append([path])
        rows["answer_type"].append(answer_type_of(e, meta))
        rows["solution"].append(answer)
        rows["question"].append(split_tag(question)[1])
        rows["image_path"].append(path)
        rows["id"].append(str(e.get("id", k)))
    return Dataset.from_dict(rows).with_transform(LoadImages())
