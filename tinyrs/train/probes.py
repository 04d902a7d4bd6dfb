"""Quick measurements of what a stage changed, for the stage notebooks (the full protocol is `tinyrs eval`).

- `reward_probe`: the GRPO rewards (format, accuracy, total) of a checkpoint's completions to VHM-RL
  prompts, greedy or sampled with stage R's settings; the same reward functions as training.
- `grounding_probe`: mean IoU and Acc@0.5 on the toy DIOR-RSVG, asked as stage R asks.
- `scene_naming_rate`: how often a caption names the right scene class (stage P's visible effect).
- `judge_failure_rows`: the rewards of open-ended answers when one judgement fails, intended beside released.
- `image_token_spread`: how much an image's tokens differ from one another where the vision tower hands
  them to the LLM (notebook 07 asks whether the vision features are what limits toy grounding).

Each probe takes a checkpoint (path or hub id) or what `load` returns, so a notebook that probes one
checkpoint several times loads it once (a 2B model takes minutes to load).
"""
from __future__ import annotations

from pathlib import Path

import torch

from ..data.build import image_root_of
from ..data.hf import grpo_prompt, read_qa_meta, reward_columns
from ..data.images import load_rgb
from ..data.vhm import read_json_list, read_jsonl, resolve_train_image
from ..evaluation.benchmarks import BY_NAME
from ..model import load_model, load_processor
from ..prompts import THINK_INSTRUCTION
from ..rewards import OPEN, ReleasedJudgeCrash, format_reward, make_accuracy_reward, make_rewards

GROUNDING_FILE = BY_NAME["DIOR-RSVG"].file  # the toy DIOR-RSVG the grounding probes ask


def load(checkpoint) -> tuple:
    """(model in eval mode, processor) of a checkpoint; a pair already loaded is returned as it is."""
    if isinstance(checkpoint, tuple):
        return checkpoint
    model, processor = load_model(checkpoint), load_processor(checkpoint)
    model.eval()
    return model, processor


@torch.no_grad()
def complete(model, processor, prompts, images, sample: bool, max_new_tokens: int, seed: int = 0,
             batch_size: int = 16) -> list[str]:
    """Completions, greedy or sampled like stage R (temperature 1.0, top_k 50, top_p 1.0)."""
    torch.manual_seed(seed)
    tok = processor.tokenizer
    out = []
    for i in range(0, len(prompts), batch_size):
        texts = [processor.apply_chat_template(p, add_generation_prompt=True, tokenize=False)
                 for p in prompts[i:i + batch_size]]
        inputs = processor(text=texts, images=[im for ims in images[i:i + batch_size] for im in ims], padding=True,
                           padding_side="left", return_tensors="pt")
        kw = dict(do_sample=True, temperature=1.0, top_k=50, top_p=1.0) if sample else \
            dict(do_sample=False, temperature=None, top_k=None, top_p=None)
        gen = model.generate(**inputs, max_new_tokens=max_new_tokens, pad_token_id=tok.pad_token_id, **kw)
        out += [t.strip() for t in tok.batch_decode(gen[:, inputs["input_ids"].shape[1]:], skip_special_tokens=True)]
    return out


def rl_prompts(build_dir: str | Path, n: int, instruction: bool = True, spread: bool = True,
               system: str | None = None):
    """n VHM-RL samples as stage R prompts them (`data.hf.grpo_prompt`: image, question, the think
    instruction, the recipe's system prompt if any): spread over the file, which is grouped by task, or
    (spread=False) the first n."""
    build_dir = Path(build_dir)
    root = image_root_of(build_dir)
    entries = read_json_list(build_dir / "rl.json")
    entries = entries[::max(1, len(entries) // n)][:n] if spread else entries[:n]
    prompts, images = [], []
    for e in entries:
        prompts.append(grpo_prompt(e, THINK_INSTRUCTION if instruction else None, system))
        images.append([load_rgb(resolve_train_image(e, root))])
    return entries, prompts, images


def reward_batch(build_dir: Path, entries: list[dict]) -> dict[str, list]:
    """The reward functions' columns for VHM-RL entries of a build, as stage R passes them."""
    meta = read_qa_meta(build_dir)
    rows = [reward_columns(e, image_root_of(build_dir), meta) for e in entries]
    return {key: [r[key] for r in rows] for key in rows[0]} if rows else {}


def reward_probe(checkpoint, build_dir: str | Path, n: int = 48, sample: bool = True, judge=None, seed: int = 0,
                 max_new_tokens: int = 128, samples: int = 1) -> dict:
    """Mean format, accuracy and total reward (the training reward functions) on n VHM-RL prompts, with
    `samples` completions per prompt when sampling; `per_prompt` holds each prompt's means (for paired
    comparisons: two checkpoints are asked the same prompts)."""
    build_dir = Path(build_dir)
    model, processor = load(checkpoint)
    entries, prompts, images = rl_prompts(build_dir, n)
    k = max(1, samples) if sample else 1
    texts = complete(model, processor, prompts * k, images * k, sample, max_new_tokens, seed)
    columns = {key: values * k for key, values in reward_batch(build_dir, entries).items()}
    fmt = format_reward(texts)
    acc = make_accuracy_reward(judge=judge)(texts, **columns)
    n = len(entries)
    per_prompt = {"format": [], "accuracy": [], "total": []}
    by_type = {}
    for i in range(n):  # completion j * n + i answers prompt i
        f = [fmt[j * n + i] for j in range(k)]
        pairs = [(fmt[j * n + i], acc[j * n + i]) for j in range(k) if acc[j * n + i] is not None]
        per_prompt["format"].append(sum(f) / k)
        if pairs:  # a prompt whose every grade failed has no accuracy (as GRPO leaves it out)
            per_prompt["accuracy"].append(sum(a for _, a in pairs) / len(pairs))
            per_prompt["total"].append(sum(f + a for f, a in pairs) / len(pairs))
            by_type.setdefault(columns["answer_type"][i], []).append(per_prompt["accuracy"][-1])
        else:
            per_prompt["accuracy"].append(None)
            per_prompt["total"].append(None)
    return {"prompts": n, "samples": k, "sampled": sample, "format": mean_se(per_prompt["format"])[0],
            "accuracy": mean_se(per_prompt["accuracy"])[0], "total": mean_se(per_prompt["total"])[0],
            "per_prompt": per_prompt,
            "accuracy_by_type": {t: round(sum(v) / len(v), 3) for t, v in sorted(by_type.items())},
            "mean_length_words": sum(len(t.split()) for t in texts) / len(texts), "examples": texts[:3]}


def mean_se(values: list) -> tuple[float, float, int]:
    """(mean, its standard error, count) of the values that are not None."""
    v = [x for x in values if x is not None]
    if len(v) < 2:
        return (v[0] if v else float("nan")), float("nan"), len(v)
    m = sum(v) / len(v)
    return m, (sum((x - m) ** 2 for x in v) / (len(v) - 1) / len(v)) ** 0.5, len(v)


def paired_change(before: list, after: list) -> tuple[float, float, int]:
    """(mean change, its standard error, prompts) over the prompts both have a value for."""
    return mean_se([b - a for a, b in zip(before, after) if a is not None and b is not None])


def judge_failure_rows(build_dir: str | Path, judge, n: int = 3, failing: int = 1) -> tuple[list[dict], str]:
    """Stage R's rewards (format, accuracy) on n open-ended VHM-RL prompts of a build, graded by a real
    judge, with judgement number `failing` made to fail (its image path names no file, so no judge can see
    it), under `judge_failure` skip (intended) and released. Each prompt is answered with its own truth
    except the last, which gets the first one's (another image's description), so the grades differ. Also
    returns what the released handling does when the failing judgement comes first (it crashes)."""
    build_dir = Path(build_dir)
    columns = reward_batch(build_dir, read_json_list(build_dir / "rl.json"))
    chosen = [i for i, kind in enumerate(columns["answer_type"]) if kind == OPEN][:n]
    if len(chosen) < 2 or not 0 <= failing < len(chosen):
        raise ValueError(f"{build_dir / 'rl.json'}: {len(chosen)} open-ended prompts; need 2 or more and failing < n")
    batch = {key: [values[i] for i in chosen] for key, values in columns.items()}
    answers = batch["solution"][:-1] + batch["solution"][:1]
    completions = [f"<reasoning>What the image shows.</reasoning><answer>{a}</answer>" for a in answers]
    batch["image_path"][failing] = str(build_dir / "no-such-image.png")
    scored = {how: dict(zip(("format", "accuracy"), (f(completions, **batch) for f in
                                                     make_rewards(["format", "accuracy"], judge=judge, judge_failure=how))))
              for how in ("skip", "released")}
    shown = lambda v: "None" if v is None else v  # noqa: E731
    rows = [{"prompt": k, "question": q[:36], "answer": a[:44], "image": "unreadable" if k == failing else "its own",
             **{f"{what} ({how})": shown(values[k]) for how in scored for what, values in scored[how].items()}}
            for k, (q, a) in enumerate(zip(batch["question"], answers))]
    first = [failing] + [k for k in range(len(chosen)) if k != failing]
    reordered = {key: [v[k] for k in first] for key, v in batch.items()}
    try:
        make_accuracy_reward(judge=judge, judge_failure="released")([completions[k] for k in first], **reordered)
        crash = "no crash"
    except ReleasedJudgeCrash as e:
        crash = f"{type(e).__name__}: {e}"
    return rows, crash


def grounding_probe(checkpoint, eval_root: str | Path, limit: int = 100, instruction: bool = True,
                    max_new_tokens: int = 128, samples: int = 0, seed: int = 0, other_images: bool = False) -> dict:
    """Mean IoU and Acc@0.5 on the toy DIOR-RSVG, with the question asked as stage R asks it: greedy
    (samples=0) or over `samples` completions per question sampled as in stage R (what GRPO optimises).
    other_images=True is a control: each question is shown the next question's image, so the IoU that
    remains is what the boxes get from the words alone."""
    from ..evaluation.run import benchmark_entries, benchmark_images, benchmark_prompt, prediction_row
    from ..evaluation.scoring import score_rows

    model, processor = load(checkpoint)
    file = GROUNDING_FILE
    path, entries = benchmark_entries(eval_root, file, limit)
    suffix = f"\n{THINK_INSTRUCTION}" if instruction else ""
    prompts = [benchmark_prompt(e, file, suffix=suffix) for e in entries]
    images = benchmark_images(entries, path)
    if other_images:
        images = images[1:] + images[:1]
    if samples:
        prompts, images, entries = prompts * samples, images * samples, entries * samples
    texts = complete(model, processor, prompts, images, bool(samples), max_new_tokens, seed)
    s = score_rows([prediction_row(i, e, t) for i, (e, t) in enumerate(zip(entries, texts))], "acc@0.5", "strict")
    return {"samples": s["n"], "sampled": bool(samples), "parsed_boxes": s["n"] - s["unparsed"],
            "mean_iou": s["mean_iou"], "acc@0.5": s["score"]}


def probe_table(models: dict, build_dir: str | Path, n: int, judge=None, seed: int = 0, grounding_limit: int = 0,
                grounding_samples: int = 0, reward_samples: int = 4) -> tuple[list[dict], dict]:
    """The stage notebooks' before/after table: for each named checkpoint, the training rewards on `n` VHM-RL
    prompts, greedy and sampled as in stage R (`reward_samples` completions per prompt), with each later model's
    change of total reward from the first, paired over the prompts, and its standard error (a change within about
    two of them is noise); with `grounding_limit`, grounding IoU on the toy DIOR-RSVG asked as R asks (greedy;
    `grounding_samples` sampled completions per question) and the other-image control.
    Returns the rows and the probes' results by (name, decoding)."""
    build_dir = Path(build_dir)
    rows, probes = [], {}
    first = next(iter(models), None)
    for name, checkpoint in models.items():
        loaded = load(checkpoint)  # once for every probe
        ground = {}
        if grounding_limit and (build_dir / "eval").is_dir():
            ev = build_dir / "eval"
            ground = {"greedy": grounding_probe(loaded, ev, grounding_limit),
                      "sampled (R)": grounding_probe(loaded, ev, grounding_limit, samples=grounding_samples, seed=seed),
                      "control": grounding_probe(loaded, ev, grounding_limit, other_images=True)}
        for decoding in ("greedy", "sampled (R)"):
            r = reward_probe(loaded, build_dir, n, sample=decoding != "greedy", judge=judge, seed=seed,
                             samples=reward_samples)
            probes[(name, decoding)] = r
            row = {"model": name, "decoding": decoding, "format": r["format"], "accuracy": r["accuracy"],
                   "total reward": r["total"], "words": round(r["mean_length_words"], 1)}
            if len(models) > 1:
                change, se, _ = paired_change(probes[(first, decoding)]["per_prompt"]["total"], r["per_prompt"]["total"])
                row["total change (SE)"] = "-" if name == first else f"{change:+.3f} ({se:.3f})"
            if ground:
                g = ground[decoding]
                row |= {"grounding IoU": g["mean_iou"], "boxes parsed": f"{g['parsed_boxes']}/{g['samples']}",
                        "IoU, other image": ground["control"]["mean_iou"] if decoding == "greedy" else "-"}
            rows.append(row)
    return rows, probes


def scene_naming_rate(checkpoint, build_dir: str | Path, n: int = 60) -> dict:
    """How often the answer to 'Describe this image.' names the right scene class (held-out images)."""
    from ..world.language import SCENE_PHRASES

    build_dir = Path(build_dir)
    model, processor = load(checkpoint)
    scenes = [s for s in read_jsonl(build_dir / "scenes.jsonl") if s["split"].startswith("eval/cls_NWPU")][:n]
    prompts = [[{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Describe this image."}]}]
               for _ in scenes]
    texts = complete(model, processor, prompts, [[load_rgb(build_dir / s["path"])] for s in scenes], False, 32)
    hits = sum(SCENE_PHRASES[s["scene_class"]] in t for s, t in zip(scenes, texts))
    return {"images": len(scenes), "named_correctly": hits, "rate": hits / max(1, len(scenes)),
            "chance": 1 / len(SCENE_PHRASES), "examples": list(zip([s["scene_class"] for s in scenes[:3]], texts[:3]))}


@torch.no_grad()
def image_token_spread(checkpoint, eval_root: str | Path, limit: int = 20) -> dict:
    """How distinct an image's tokens are where the vision tower hands them to the LLM (the merger's
    output), over the first `limit` toy DIOR-RSVG images: `spread` = |per-dimension std over the image's
    tokens| / |its mean token| (0: every token is the same vector, and attention cannot single out a
    place), and `norm_ratio` = mean image-token norm / mean text-embedding norm."""
    from ..evaluation.run import benchmark_entries, benchmark_images

    model, processor = load(checkpoint)
    path, entries = benchmark_entries(eval_root, GROUNDING_FILE, limit)
    spreads, norms = [], []
    for (img,) in benchmark_images(entries, path):
        inputs = processor.image_processor(images=[img], return_tensors="pt")
        tokens = model.model.visual(inputs["pixel_values"], grid_thw=inputs["image_grid_thw"]).pooler_output
        spreads.append((tokens.std(0).norm() / tokens.mean(0).norm()).item())
        norms.append(tokens.norm(dim=-1).mean().item())
    text_norm = model.get_input_embeddings().weight.norm(dim=-1).mean().item()
    return {"images": len(spreads), "spread": sum(spreads) / len(spreads),
            "norm_ratio": sum(norms) / len(norms) / text_norm}
