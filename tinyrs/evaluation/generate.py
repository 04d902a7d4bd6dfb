"""Batched greedy generation: left padding, KV cache, no sampling (the released harness decodes greedily)."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import torch
from tqdm import tqdm


@torch.no_grad()
def generate(model, processor, prompts: list[list[dict]], images: list[list], batch_size: int = 16,
             max_new_tokens: int = 64, progress: bool = True) -> list[str]:
    """Answers to chat `prompts` (each with its list of PIL images), in input order.

    Prompts are grouped by length so a batch carries little padding, and the next batch's images are
    preprocessed in a background thread while the current batch generates."""
    model.eval()
    texts = [processor.apply_chat_template(p, add_generation_prompt=True, tokenize=False) for p in prompts]
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    batches = [order[s:s + batch_size] for s in range(0, len(order), batch_size)]
    answers: list[str | None] = [None] * len(texts)
    tok = processor.tokenizer

    def prepare(idx):
        return processor(text=[texts[i] for i in idx], images=[im for i in idx for im in images[i]] or None,
                         padding=True, padding_side="left", return_tensors="pt")

    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(prepare, batches[0]) if batches else None
        for k, idx in enumerate(tqdm(batches, desc="generating", disable=not progress, mininterval=1.0)):
            inputs = pending.result().to(model.device)
            pending = pool.submit(prepare, batches[k + 1]) if k + 1 < len(batches) else None
            out = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False, top_p=None, top_k=None,
                                 temperature=None, pad_token_id=tok.pad_token_id)
            new = out[:, inputs["input_ids"].shape[1]:]
            for i, text in zip(idx, tok.batch_decode(new, skip_special_tokens=True)):
                answers[i] = text.strip()
    return answers


class TransformersEngine:
    """The transformers backend of `tinyrs eval`: a loaded model and processor, batched greedy decoding."""

    name = "transformers"

    def __init__(self, model, processor):
        self.model, self.processor = model, processor

    def generate(self, prompts: list[list[dict]], images: list[list], batch_size: int = 16, max_new_tokens: int = 64,
                 progress: bool = True) -> list[str]:
        return generate(self.model, self.processor, prompts, images, batch_size=batch_size,
                        max_new_tokens=max_new_tokens, progress=progress)


def load_engine(model_path, backend: str = "auto", **vllm_kwargs):
    """The evaluation engine for a checkpoint: vLLM where it can run (backend auto / vllm), else transformers."""
    from ..model import load_for_inference, load_processor
    from .vllm_backend import VLLMEngine, choose_backend

    processor = load_processor(model_path)
    if choose_backend(backend) == "vllm":
        return VLLMEngine(str(model_path), processor, **vllm_kwargs)
    return TransformersEngine(load_for_inference(model_path), processor)
