"""Benchmarks (measurements, not timed tests).

`rollout_throughput`: GRPO rollouts the released trainer's way (the 4 completions of a group one
after another, one prompt at a time) against TRL's way (all completions of the generation batch in
one `generate` call), on the same prompts, with the same sampling settings and the same number of new
tokens per completion (min_new_tokens = max_new_tokens), so only the batching differs. A third mode
batches only each group (the 4 completions of one prompt per call).
"""
from __future__ import annotations

import resource
import time
from pathlib import Path

import torch


def _rollout_inputs(processor, build_dir: Path, n_prompts: int):
    """The first n VHM-RL prompts as stage R asks them, rendered with the chat template."""
    from .train.probes import rl_prompts

    _, prompts, images = rl_prompts(build_dir, n_prompts, spread=False)
    texts = [processor.apply_chat_template(p, add_generation_prompt=True, tokenize=False) for p in prompts]
    return texts, [ims[0] for ims in images]


@torch.no_grad()
def rollout_throughput(checkpoint: str | Path, build_dir: str | Path, n_prompts: int = 8, generations: int = 4,
                       new_tokens: int = 64, seed: int = 0) -> dict:
    from .model import load_model, load_processor

    model, processor = load_model(checkpoint), load_processor(checkpoint)
    model.eval()
    texts, images = _rollout_inputs(processor, Path(build_dir), n_prompts)
    sampling = dict(do_sample=True, temperature=1.0, top_k=50, top_p=1.0, max_new_tokens=new_tokens,
                    min_new_tokens=new_tokens, pad_token_id=processor.tokenizer.pad_token_id)

    def run(batch_texts, batch_images):
        inputs = processor(text=batch_texts, images=batch_images, padding=True, padding_side="left", return_tensors="pt")
        out = model.generate(**inputs, **sampling)
        return out[:, inputs["input_ids"].shape[1]:].numel()

    def timed(fn):
        t0 = time.perf_counter()
        tokens = fn()
        return tokens, time.perf_counter() - t0

    torch.manual_seed(seed)
    run(texts[:1], images[:1])  # warm-up
    # the released trainer: each completion of each group on its own
    seq_tokens, t_seq = timed(lambda: sum(run([t], [im]) for t, im in zip(texts, images) for _ in range(generations)))
    # a group per call: the 4 completions of one prompt batched together
    grp_tokens, t_grp = timed(lambda: sum(run([t] * generations, [im] * generations) for t, im in zip(texts, images)))
    # TRL: the whole generation batch (all prompts x all generations) in one call
    bat_tokens, t_bat = timed(lambda: run([t for t in texts for _ in range(generations)],
                                          [im for im in images for _ in range(generations)]))
    assert seq_tokens == grp_tokens == bat_tokens == n_prompts * generations * new_tokens
    return {"prompts": n_prompts, "generations": generations, "new_tokens": new_tokens,
            "completions": n_prompts * generations, "threads": torch.get_num_threads(),
            "sequential_seconds": round(t_seq, 2), "group_batched_seconds": round(t_grp, 2),
            "batched_seconds": round(t_bat, 2), "sequential_tokens_per_s": round(seq_tokens / t_seq, 1),
            "group_batched_tokens_per_s": round(grp_tokens / t_grp, 1),
            "batched_tokens_per_s": round(bat_tokens / t_bat, 1),
            "speedup_group": round(t_seq / t_grp, 2), "speedup": round(t_seq / t_bat, 2),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}


def eval_throughput(checkpoint: str | Path, data_root: str | Path, benchmark: str = "AID", n: int = 48,
                    batch_size: int = 16, max_new_tokens: int = 16, think: str | None = None) -> dict:
    """Samples per second of the evaluation engine (batched, left padding, KV cache, greedy) against a
    one-sample-at-a-time `generate` loop, on the same questions, and whether both give the same answers.
    think: ask as a reasoning model is asked ("instruction" or "system"), so answers carry their reasoning."""
    from .config import ConfigError
    from .evaluation.benchmarks import BY_NAME
    from .evaluation.generate import generate
    from .evaluation.run import benchmark_entries, benchmark_images, benchmark_prompt, think_prompting
    from .model import load_model, load_processor

    if benchmark not in BY_NAME:
        raise ConfigError(f"--benchmark {benchmark!r}: not a Table I benchmark; one of {', '.join(BY_NAME)}")
    bench = BY_NAME[benchmark]
    path, entries = benchmark_entries(data_root, bench.file, n)
    system, suffix = think_prompting(think)
    prompts = [benchmark_prompt(e, bench.file, system, suffix) for e in entries]
    images = benchmark_images(entries, path)
    model, processor = load_model(checkpoint), load_processor(checkpoint)
    kw = dict(max_new_tokens=max_new_tokens, progress=False)
    generate(model, processor, prompts[:2], images[:2], batch_size=2, **kw)  # warm-up
    t0 = time.perf_counter()
    single = [generate(model, processor, [p], [im], batch_size=1, **kw)[0] for p, im in zip(prompts, images)]
    t_single = time.perf_counter() - t0
    t0 = time.perf_counter()
    batched = generate(model, processor, prompts, images, batch_size=batch_size, **kw)
    t_batched = time.perf_counter() - t0
    same = sum(a == b for a, b in zip(single, batched))
    tokens = sum(len(processor.tokenizer(a)["input_ids"]) for a in batched)
    return {"benchmark": bench.name, "think": think, "samples": len(entries), "batch_size": batch_size,
            "max_new_tokens": max_new_tokens, "mean_answer_tokens": round(tokens / len(entries), 1),
            "threads": torch.get_num_threads(), "one_at_a_time_samples_per_s": round(len(entries) / t_single, 2),
            "batched_samples_per_s": round(len(entries) / t_batched, 2), "speedup": round(t_single / t_batched, 2),
            "identical_predictions": same, "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}
