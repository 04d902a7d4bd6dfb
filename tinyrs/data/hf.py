"""VHM entries -> `datasets.Dataset` in TRL's conversational prompt-completion format.

Each row: `prompt` (system? + user turn with the image first, then the question), `completion`
(the assistant's answer: the only tokens with loss; a multi-turn conversation gives a row per answer),
`images` (one file path). Images are decoded
lazily, through `load_rgb`, when a batch is drawn: a 100K-image set never sits in memory, and
GeoTIFF / RGBA / grey inputs reach the processor as RGB.
"""
from __future__ import annotations

from pathlib import Path

from ..boxes import parse_box
from .images import load_rgb
from .vhm import IMAGE_TOKEN, DataError, read_jsonl, resolve_train_image, split_tag


def answer_turns(entry: dict) -> list[int]:
    """The positions of an entry's assistant answers in its conversation."""
    return [i for i, t in enumerate(entry["conversations"]) if t["from"] == "gpt"]


def to_messages(entry: dict, system: str | None = None, answer: int | None = None) -> tuple[list[dict], list[dict]]:
    """(prompt, completion) messages of one VHM entry for its answer at conversation position `answer`
    (default: the last). The turns before that answer are the prompt; the loss falls on the answer."""
    prompt: list[dict] = [{"role": "system", "content": [{"type": "text", "text": system}]}] if system else []
    turns = entry["conversations"]
    answer = answer_turns(entry)[-1] if answer is None else answer
    for i, turn in enumerate(turns[:answer]):
        text = turn["value"]
        if turn["from"] == "human":
            content = []
            if i == 0:  # the image comes first, as in the released harness
                content.append({"type": "image"})
            content.append({"type": "text", "text": text.replace(IMAGE_TOKEN, "").strip()})
            prompt.append({"role": "user", "content": content})
        else:
            prompt.append({"role": "assistant", "content": [{"type": "text", "text": text}]})
    completion = [{"role": "assistant", "content": [{"type": "text", "text": turns[answer]["value"]}]}]
    return prompt, completion


class LoadImages:
    """A datasets transform: image paths -> RGB PIL images (picklable for dataloader workers)."""

    def __call__(self, batch: dict) -> dict:
        if "images" in batch:
            batch["images"] = [[load_rgb(p) for p in paths] for paths in batch["images"]]
        return batch


def to_sft_dataset(entries: list[dict], image_root: str | Path, system: str | None = None,
                   instruction: str | None = None, instruction_fraction: float = 0.0, seed: int = 0):
    """A TRL prompt-completion dataset (loss on the answers only) with lazily loaded images.
    A multi-turn conversation gives one row per answer, the turns before it as the prompt: every answer
    gets loss, as the released trainer labels every assistant turn (there, in one sequence).
    `instruction` is appended to a seeded `instruction_fraction` of the questions."""
    import numpy as np
    from datasets import Dataset

    rng = np.random.default_rng(seed)
    prompts, completions, images, ids = [], [], [], []
    for k, e in enumerate(entries):
        answers = answer_turns(e)
        for answer in answers:
            p, c = to_messages(e, system, answer)
            if instruction and rng.random() < instruction_fraction:
                p[-1]["content"][-1]["text"] += f"\n{instruction}"
            prompts.append(p)
            completions.append(c)
            images.append([str(resolve_train_image(e, image_root))])
            ids.append(str(e.get("id", k)) + (f"#{answer}" if len(answers) > 1 else ""))
    ds = Dataset.from_dict({"prompt": prompts, "completion": completions, "images": images, "id": ids})
    return ds.with_transform(LoadImages())


OPEN_ENDED_MIN_WORDS = 6


ANSWER_TYPES = ("closed", "grounding", "open")


def read_qa_meta(build_dir: str | Path) -> dict[str, dict] | None:
    """A toy build's question metadata by id (qa_meta.jsonl; None where there is none, as for real VHM data),
    each row checked: a mistyped answer type would silently pick the wrong reward."""
    path = Path(build_dir) / "qa_meta.jsonl"
    if not path.exists():
        return None
    meta = {}
    for n, row in enumerate(read_jsonl(path), 1):
        if not isinstance(row, dict) or "id" not in row:
            raise DataError(path, None, f"row {n}: no id")
        if row.get("answer_type") not in ANSWER_TYPES:
            raise DataError(path, None, f"row {n} (id {row['id']!r}): answer_type {row.get('answer_type')!r} "
                                        f"is not one of {', '.join(ANSWER_TYPES)}")
        meta[row["id"]] = row
    return meta


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


def grpo_prompt(entry: dict, instruction: str | None, system: str | None = None) -> list[dict]:
    """Stage R's prompt for one VHM-RL entry: its last question alone, with the image and the instruction to
    answer in <reasoning> and <answer> (None: without it), after the recipe's system prompt if any."""
    from .think import last_turns

    _, question, _ = last_turns(entry)
    text = question.replace(IMAGE_TOKEN, "").strip() + (f"\n{instruction}" if instruction else "")
    prompt = [{"role": "system", "content": [{"type": "text", "text": system}]}] if system else []
    return prompt + [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": text}]}]


def to_grpo_dataset(entries: list[dict], image_root: str | Path, instruction: str, system: str | None = None,
                    meta: dict | None = None):
    """A TRL GRPO dataset: prompts that ask for <reasoning> and <answer>, with each sample's answer type,
    truth (`solution`), question (for the judge) and image path (for the judge) as extra columns."""
    from datasets import Dataset

    rows = {"prompt": [], "images": [], "answer_type": [], "solution": [], "question": [], "image_path": [], "id": []}
    for k, e in enumerate(entries):
        columns = reward_columns(e, image_root, meta)
        rows["prompt"].append(grpo_prompt(e, instruction, system))
        rows["images"].append([columns["image_path"]])
        for key, value in columns.items():
            rows[key].append(value)
        rows["id"].append(str(e.get("id", k)))
    return Dataset.from_dict(rows).with_transform(LoadImages())


def reward_columns(entry: dict, image_root: str | Path, meta: dict | None = None) -> dict:
    """The columns stage R's reward functions receive for one VHM-RL entry."""
    from .think import last_turns

    _, question, answer = last_turns(entry)
    return {"answer_type": answer_type_of(entry, meta), "solution": answer, "question": split_tag(question)[1],
            "image_path": str(resolve_train_image(entry, image_root))}
