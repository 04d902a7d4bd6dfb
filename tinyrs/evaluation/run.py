"""Running a model over one benchmark file."""
from __future__ import annotations

from pathlib import Path

from ..data.images import load_rgb
from ..data.vhm import answer_text, human_text, read_eval_file, resolve_eval_image
from .benchmarks import BY_FILE, user_prompt
from .generate import generate


def answer_benchmark(model, processor, data_root: str | Path, file: str, limit: int | None = None,
                     max_new_tokens: int = 64, batch_size: int = 16, system: str | None = None,
                     progress: bool = True) -> list[dict]:
    """Predictions for the questions of one benchmark: [{image, question, answer, prediction}]."""
    bench = BY_FILE[file]
    path = Path(data_root) / file
    entries, _ = read_eval_file(path, check_images="exists", progress=False)
    entries = entries[:limit] if limit else entries
    prompts = [user_prompt(human_text(e), bench.tag, system) for e in entries]
    images = [[load_rgb(resolve_eval_image(e, path))] for e in entries]
    preds = generate(model, processor, prompts, images, batch_size=batch_size, max_new_tokens=max_new_tokens,
                     progress=progress)
    return [{"image": e["image"], "question": human_text(e), "answer": answer_text(e), "prediction": p}
            for e, p in zip(entries, preds)]
