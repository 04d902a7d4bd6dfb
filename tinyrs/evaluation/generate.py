"""Batched greedy generation: left padding, KV cache, no sampling (the released harness decodes greedily)."""
from __future__ import annotations

import torch
from tqdm import tqdm


@torch.no_grad()
def generate(model, processor, prompts: list[list[dict]], images: list[list], batch_size: int = 16,
             max_new_tokens: int = 64, progress: bool = True) -> list[str]:
    """Answers to chat `prompts` (each with its list of PIL images), in input order.

    Prompts are grouped by length so a batch carries little padding."""
    model.eval()
    texts = [processor.apply_chat_template(p, add_generation_prompt=True, tokenize=False) for p in prompts]
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    answers: list[str | None] = [None] * len(texts)
    tok = processor.tokenizer
    for start in tqdm(range(0, len(order), batch_size), desc="generating", disable=not progress, mininterval=1.0):
        idx = order[start:start + batch_size]
        batch_images = [im for i in idx for im in images[i]] or None
        inputs = processor(text=[texts[i] for i in idx], images=batch_images, padding=True, padding_side="left",
                           return_tensors="pt").to(model.device)
        out = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False, top_p=None, top_k=None,
                             temperature=None, pad_token_id=tok.pad_token_id)
        new = out[:, inputs["input_ids"].shape[1]:]
        for i, text in zip(idx, tok.batch_decode(new, skip_special_tokens=True)):
            answers[i] = text.strip()
    return answers
