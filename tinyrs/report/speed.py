"""Table V's speed and memory, measured on the machine at hand (CPU here, the same code on a GPU).

- Memory of the paper's architectures from their published configurations, on the meta device (no
  weights are loaded): parameters x 2 bytes (bf16), plus the KV cache of a full context, to compare with
  the paper's 4.4 GB (2B) and 16.6 GB (7B).
- Latency per sample and tokens per second: one question at a time (batch 1, greedy), as an edge device
  answers, for a model without training, after S, and after R answering with reasoning. On the toy
  profile the 2B / 7B pair is a small and a larger toy model; the larger one is untrained, so it is made
  to produce exactly as many tokens per answer as the small one did in the same mode (min = max new
  tokens): both do the same decoding work and only the model size differs. The models take turns, one
  timed pass each per round, and each reports its fastest pass: on a shared CPU noise only adds time, and
  a drift of the machine's speed then touches every model alike.
"""
from __future__ import annotations

import resource
import time
from pathlib import Path

from ..data.vhm import write_json

PAPER_MODELS = {"2B": "Qwen/Qwen2-VL-2B-Instruct", "7B": "Qwen/Qwen2-VL-7B-Instruct"}
GB = 1e9


def published_memory(model_id: str, context_tokens: int = 8192) -> dict:
    """Parameters and bf16 memory of a published Qwen2-VL configuration, built on the meta device."""
    from ..train.dryrun import meta_model

    model, config, source = meta_model(model_id)
    params = sum(p.numel() for p in model.parameters())
    text = config.text_config
    head_dim = text.hidden_size // text.num_attention_heads
    kv_per_token = 2 * text.num_hidden_layers * text.num_key_value_heads * head_dim * 2  # K and V, bf16
    return {"model": model_id, "source": source, "parameters": params, "weights_gb": params * 2 / GB,
            "kv_cache_gb": kv_per_token * context_tokens / GB, "context_tokens": context_tokens,
            "total_gb": (params * 2 + kv_per_token * context_tokens) / GB}


def speed_questions(data_root: str | Path, per_benchmark: int = 4) -> list[tuple[str, dict]]:
    """A fixed mix of questions: a few from each capability (classification, VQA, grounding, knowledge)."""
    from ..evaluation.benchmarks import BY_NAME
    from ..evaluation.run import benchmark_entries

    files = [BY_NAME[name].file for name in ("AID", "LR-Presence", "DIOR-RSVG", "LHRS-Bench")]
    return [(f, e) for f in files for e in benchmark_entries(data_root, f, per_benchmark)[1]]


def timed_pass(checkpoint, data_root: str | Path, think: str | None = None, max_new_tokens: int = 160,
               exact_new_tokens: int | None = None, per_benchmark: int = 4) -> dict:
    """One timed pass over the questions, one at a time, after a warm-up answer (loading is not timed).
    `exact_new_tokens` forces every answer to that length (the untrained larger toy model)."""
    import torch

    from ..evaluation.benchmarks import asking_style
    from ..evaluation.run import benchmark_images, benchmark_prompt, think_prompting
    from ..model import load_for_inference, load_processor

    cuda = torch.cuda.is_available()
    model = load_for_inference(checkpoint)
    processor = load_processor(checkpoint)
    system, suffix = think_prompting(think)
    ask = asking_style(checkpoint)
    questions = speed_questions(data_root, per_benchmark)
    length = dict(max_new_tokens=exact_new_tokens, min_new_tokens=exact_new_tokens) if exact_new_tokens else \
        dict(max_new_tokens=max_new_tokens)

    def answer(f, e):
        prompt = benchmark_prompt(e, f, system, suffix, ask)
        text = processor.apply_chat_template(prompt, add_generation_prompt=True, tokenize=False)
        inputs = processor(text=[text], images=benchmark_images([e], Path(data_root) / f)[0], return_tensors="pt")
        inputs = inputs.to(model.device)
        with torch.no_grad():
            out = model.generate(**inputs, do_sample=False, top_p=None, top_k=None, temperature=None,
                                 pad_token_id=processor.tokenizer.pad_token_id, **length)
        return out.shape[1] - inputs["input_ids"].shape[1]

    answer(*questions[0])  # warm-up
    if cuda:
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    tokens = sum(answer(f, e) for f, e in questions)
    if cuda:
        torch.cuda.synchronize()
    params = sum(p.numel() for p in model.parameters())
    return {"seconds": time.perf_counter() - t0, "tokens": tokens, "samples": len(questions), "parameters": params,
            "weights_mb": params * next(model.parameters()).element_size() / 1e6,
            "device": "cuda" if cuda else f"cpu ({torch.get_num_threads()} threads)"}


def latency_of(checkpoint, think: str | None, passes: list[dict]) -> dict:
    """Milliseconds per sample and tokens per second from the fastest of a model's timed passes (on a shared
    CPU, noise only adds time). Greedy decoding: every pass generates the same tokens."""
    first, seconds = passes[0], min(p["seconds"] for p in passes)
    n = first["samples"]
    return {"checkpoint": str(checkpoint), "think": think, "samples": n, "passes": len(passes),
            "ms_per_sample": 1000 * seconds / n, "tokens_per_s": first["tokens"] / seconds,
            "ms_per_sample_range": [round(1000 * p / n, 1) for p in (seconds, max(p["seconds"] for p in passes))],
            "mean_new_tokens": first["tokens"] / n, "parameters": first["parameters"],
            "weights_mb": first["weights_mb"], "device": first["device"]}


LARGER_TOY = ["text.hidden_size=192", "text.intermediate_size=512", "text.num_hidden_layers=8",
              "text.num_attention_heads=4", "vision.depth=4", "vision.embed_dim=128"]


def larger_toy_checkpoint(small_checkpoint, out_dir: str | Path, overrides: list[str] | None = None, seed: int = 0) -> Path:
    """An untrained larger toy Qwen2-VL with the small model's tokenizer and processor (the toy's '7B')."""
    from ..config import apply_overrides, load_config
    from ..model import build_toy_model, load_processor, save_checkpoint

    cfg = apply_overrides(load_config("toy", "model"), overrides or LARGER_TOY)
    processor = load_processor(small_checkpoint)
    model = build_toy_model(processor.tokenizer, cfg["text"], cfg["vision"], seed)
    return save_checkpoint(model, processor, out_dir)


def measure_table5(profile: str = "toy", data_dir: str | Path | None = None, results_dir: str | Path | None = None,
                   progress: bool = True, per_benchmark: int | None = None, max_new_tokens: int | None = None) -> dict:
    """Table V on the machine at hand: published memory of 2B and 7B, and measured latency of the plan's
    models (`speed` in ablations.yaml; the nodes come from arms.json). Writes `<results>/table5.json`.
    `per_benchmark` and `max_new_tokens` override the plan's (a short run)."""
    from .. import paths
    from .ablations import is_reasoning, load_arms, load_plan

    plan, arms = load_plan(profile), load_arms(profile, results_dir)
    spec = plan["speed"]
    data_dir = Path(data_dir) if data_dir else paths.data_dir(profile)
    results_dir = Path(results_dir) if results_dir else paths.RESULTS / profile
    eval_root = data_dir / "eval"
    think_prompt = plan["evaluation"].get("think_prompt")
    say = print if progress else (lambda *a, **k: None)
    n = int(per_benchmark or spec.get("questions_per_benchmark", 4))
    repeats = int(spec.get("repeats", 3))
    max_new_tokens = int(max_new_tokens or plan["evaluation"]["max_new_tokens"])
    # The models take turns (see the module's note), so the size and reasoning ratios compare like with like.
    jobs = [{"size": "small", "kind": kind, "node": node, "checkpoint": arms["nodes"][node]["checkpoint"],
             "think": think_prompt if is_reasoning(plan, node) else None} for kind, node in spec["small"].items()]
    larger = spec["larger"]
    if larger == "toy":
        big = larger_toy_checkpoint(arms["nodes"][spec["small"]["none"]]["checkpoint"], results_dir / "larger_toy")
        jobs += [{"size": "larger", "kind": j["kind"], "node": None, "forced_length_of": j["node"], "checkpoint": big,
                  "think": j["think"], "small": i} for i, j in enumerate(list(jobs))]
    else:
        jobs += [{"size": "larger", "kind": kind, "node": None, "checkpoint": ck,
                  "think": think_prompt if kind == "reasoning" else None} for kind, ck in larger.items() if ck]
    passes = [[] for _ in jobs]
    for round_ in range(max(1, repeats)):
        for done, job in zip(passes, jobs):
            exact = None
            if "small" in job:  # answer at the small model's length in the same mode
                first = passes[job["small"]][0]
                exact = max(1, round(first["tokens"] / first["samples"]))
            done.append(timed_pass(job["checkpoint"], eval_root, job["think"], max_new_tokens, exact, per_benchmark=n))
            say(f"round {round_ + 1}/{repeats} {job['size']} {job['kind']}: "
                f"{1000 * done[-1]['seconds'] / done[-1]['samples']:.1f} ms/sample")
    rows = [{**{k: v for k, v in job.items() if k not in ("think", "small")},
             **latency_of(job["checkpoint"], job["think"], p)} for job, p in zip(jobs, passes)]
    result = {"profile": profile, "published": {size: published_memory(mid) for size, mid in PAPER_MODELS.items()},
              "measured": rows, "rounds": max(1, repeats),
              "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}
    write_json(results_dir / "table5.json", result, default=str)
    return result
