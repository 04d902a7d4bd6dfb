"""Figures: every figure is saved as PNG, PDF and a CSV of the data it plots."""
from __future__ import annotations

import csv
from pathlib import Path

import matplotlib.pyplot as plt
from PIL import ImageDraw

from ..data.images import load_rgb
from ..paths import FIGURES
from .paper import CAPABILITIES


def save_figure(fig, stem: str, rows: list[dict] | None = None, folder: str | Path | None = None) -> list[Path]:
    folder = Path(folder) if folder else FIGURES
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{stem}.png", folder / f"{stem}.pdf"]
    fig.savefig(paths[0], dpi=150, bbox_inches="tight")
    fig.savefig(paths[1], bbox_inches="tight", metadata={"CreationDate": None})
    if rows:
        paths.append(folder / f"{stem}.csv")
        with open(paths[-1], "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
    return paths


def draw_boxes(image, boxes, color=(255, 0, 255), width: int = 1):
    im = image.copy()
    d = ImageDraw.Draw(im)
    for b in boxes:  # a predicted box may come with its corners reversed
        x1, x2 = sorted((b[0], b[2]))
        y1, y2 = sorted((b[1], b[3]))
        d.rectangle([x1, y1, max(x1, x2 - 1), max(y1, y2 - 1)], outline=color, width=width)
    return im


def plot_scene_grid(build_dir: str | Path, scenes: list[dict], cols: int = 6, scale: float = 1.6):
    """Images of a build with every object's exact box drawn, titled by scene class."""
    rows = (len(scenes) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(cols * scale, rows * scale * 1.12))
    for ax in axes.ravel():
        ax.axis("off")
    for ax, s in zip(axes.ravel(), scenes):
        im = draw_boxes(load_rgb(Path(build_dir) / s["path"]), [o["box"] for o in s["objects"]])
        ax.imshow(im)
        ax.set_title(f"{s['scene_class']}\n{s['width']}x{s['height']}, {len(s['objects'])} obj."
                     + ("" if s["modality"] == "optical" else f", {s['modality']}"), fontsize=7)
    fig.tight_layout()
    return fig


def plot_task_balance(rows: list[dict], cap: float):
    """Entries per task before and after balancing (grouped bars), with each factor written on top."""
    fig, ax = plt.subplots(figsize=(6, 3.2))
    tasks = [r["task"] for r in rows]
    x = range(len(tasks))
    ax.bar([i - 0.2 for i in x], [r["before"] for r in rows], width=0.4, label="VHM-Instruct (as sampled)")
    ax.bar([i + 0.2 for i in x], [r["after"] for r in rows], width=0.4, label=f"balanced (cap {cap:g}x)")
    for i, r in zip(x, rows):
        ax.text(i + 0.2, r["after"], f"{r['factor']:.2f}x", ha="center", va="bottom", fontsize=8)
    ax.set_xticks(list(x), tasks)
    ax.set_ylabel("entries")
    ax.set_ylim(0, max(r["after"] for r in rows) * 1.15)
    ax.set_title("Task mix before and after balancing")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2, frameon=False)
    fig.tight_layout()
    return fig


def plot_caption_examples(rows: list[dict], image_root: str | Path, width: int = 95):
    """The paper's Fig. 2: images with the original question and answer and the generated CoT caption.
    rows: {image (path under image_root), question, original, caption}."""
    import textwrap

    fig, axes = plt.subplots(len(rows), 2, figsize=(11, 2.9 * len(rows)), gridspec_kw={"width_ratios": [1, 3.2]})
    for (ax_img, ax_txt), r in zip(axes.reshape(len(rows), 2), rows):
        ax_img.imshow(load_rgb(Path(image_root) / r["image"]))
        ax_img.axis("off")
        ax_txt.axis("off")
        lines = (textwrap.wrap(f"Q: {r['question']}", width) + textwrap.wrap(f"Original answer: {r['original']}", width)
                 + [""] + textwrap.wrap(f"CoT caption: {r['caption']}", width))
        ax_txt.text(0, 1, "\n".join(lines), va="top", ha="left", fontsize=7.5, family="monospace")
    fig.tight_layout()
    return fig


def plot_curves(metrics: list[dict], keys: dict[str, str], title: str, smooth: int = 1):
    """One panel per metric from a run's metrics.jsonl: keys maps a log key to its panel title."""
    present = {k: v for k, v in keys.items() if any(k in m for m in metrics)}
    fig, axes = plt.subplots(1, len(present), figsize=(3.4 * len(present), 2.8), squeeze=False)
    rows = []
    for ax, (key, label) in zip(axes[0], present.items()):
        pts = [(m["step"], m[key]) for m in metrics if key in m and isinstance(m[key], (int, float))]
        xs, ys = [p[0] for p in pts], [p[1] for p in pts]
        # a trailing mean only where there are enough points for it not to bend the ends (it would make a short
        # run's last logs look like a trend): the logged values are always drawn, and written to the CSV
        smoothed = ([sum(ys[max(0, i - smooth + 1):i + 1]) / len(ys[max(0, i - smooth + 1):i + 1]) for i in range(len(ys))]
                    if smooth > 1 and len(ys) >= 3 * smooth else None)
        if smoothed:
            ax.plot(xs, ys, "o", markersize=2, alpha=0.35, color="C0", label="logged")
            ax.plot(xs, smoothed, color="C0", label=f"mean of the last {smooth}")
            ax.legend(fontsize=6)
        else:
            ax.plot(xs, ys, marker="o", markersize=2.5, color="C0")
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.grid(alpha=0.3)
        rows += [{"metric": key, "step": x, "value": round(y, 5),
                  "smoothed": round(smoothed[i], 5) if smoothed else None} for i, (x, y) in enumerate(zip(xs, ys))]
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig, rows


def plot_schedules(rows: list[dict], title: str, zoom: int):
    """`train.schedules.schedule_curves` rows: each curve's learning rate per step over the run (left) and over its
    first `zoom` steps, where the warm-ups differ (right)."""
    curves = [k for k in rows[0] if k != "step"]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.0))
    for ax, part in zip(axes, (rows, rows[:zoom])):
        for i, key in enumerate(curves):
            ax.plot([r["step"] for r in part], [r[key] for r in part], color=f"C{i}", label=key,
                    linestyle="--" if key.startswith("released") else "-")
        ax.set_xlabel("optimizer step", fontsize=8)
        ax.set_ylabel("learning rate", fontsize=8)
        ax.grid(alpha=0.3)
    axes[1].set_title(f"the first {zoom} steps", fontsize=9)
    axes[0].legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_probe(rows: list[dict], probes: dict | None = None):
    """The stage notebooks' before/after probe (`probes.probe_table` rows) as paired bars, one colour per model:
    the training rewards, greedy and sampled (left), and grounding IoU with its other-image control (right).
    With `probes` (probe_table's second result) each reward bar carries its standard error over the prompts."""
    import numpy as np

    from ..train.probes import mean_se

    models = list(dict.fromkeys(r["model"] for r in rows))
    by = {(r["model"], r["decoding"]): r for r in rows}
    decodings = list(dict.fromkeys(r["decoding"] for r in rows))
    grounding = "grounding IoU" in rows[0]
    fig, axes = plt.subplots(1, 2 if grounding else 1, figsize=(10 if grounding else 6, 3.2), squeeze=False,
                             gridspec_kw={"width_ratios": [2, 1]} if grounding else None)
    per_prompt = {"format": "format", "accuracy": "accuracy", "total reward": "total"}
    title = "reward on VHM-RL prompts"
    if probes:
        some = next(iter(probes.values()))
        title += f" ({some['prompts']} prompts; sampled: {max(p['samples'] for p in probes.values())} each; bars: ±1 SE)"
    panels = [(axes[0][0], [(f"{m}\n{d}", d, m) for d in decodings for m in per_prompt], title)]
    if grounding:
        panels.append((axes[0][1], [(d, d, "grounding IoU") for d in decodings] +
                       [("other image\n(greedy)", decodings[0], "IoU, other image")], "toy DIOR-RSVG, asked as R asks"))
    plotted, width = [], 0.8 / len(models)
    for ax, groups, title in panels:
        x = np.arange(len(groups))
        for k, model in enumerate(models):
            vals = [by[(model, d)][key] for _, d, key in groups]
            errs = None
            if probes and ax is axes[0][0]:
                errs = [mean_se(probes[(model, d)]["per_prompt"][per_prompt[key]])[1] for _, d, key in groups]
            _labelled_bars(ax, x + k * width, vals, width, "{:.3f}", color=f"C{k}", label=model, yerr=errs,
                           error_kw={"elinewidth": 0.8, "capsize": 2})
            plotted += [{"model": model, "decoding": d, "measure": key, "value": v, "se": e}
                        for (_, d, key), v, e in zip(groups, vals, errs or [None] * len(vals))]
        ax.set_xticks(x + width * (len(models) - 1) / 2, [g[0] for g in groups], fontsize=7)
        ax.set_title(title, fontsize=8)
        ax.set_ylabel("mean reward" if ax is axes[0][0] else "mean IoU", fontsize=8)
        ax.margins(y=0.15)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    return fig, plotted


def plot_reward_variants():
    """Table III's reward variants as functions of the score (IoU for grounding, judge/10 for open answers)."""
    import numpy as np

    from ..rewards import shape_score

    xs = np.linspace(0, 1, 201)
    lines = {"continuous": [shape_score(x, "continuous", 0.5) for x in xs],
             "binary (grounding, IoU >= 0.5)": [shape_score(x, "binary", 0.5) for x in xs],
             "binary (open-ended, judge >= 0.7)": [shape_score(x, "binary", 0.7) for x in xs],
             "quantized": [shape_score(x, "quantized", 0.5) for x in xs]}
    fig, ax = plt.subplots(figsize=(5.2, 3.2))
    for (name, ys), style in zip(lines.items(), ["-", "--", ":", "-."]):
        ax.plot(xs, ys, style, label=name, linewidth=1.8)
    ax.set_xlabel("IoU, or judge score / 10")
    ax.set_ylabel("accuracy reward")
    ax.set_title("Accuracy reward variants (Table III)")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    rows = [{"score": round(float(x), 3), **{k: round(v[i], 4) for k, v in lines.items()}} for i, x in enumerate(xs)]
    return fig, rows


def plot_released_grounding(n: int = 300, seed: int = 0):
    """The released grounding reward beside the intended IoU, for random predictions against one true box."""
    import numpy as np

    from ..boxes import format_box
    from ..rewards import grounding_score

    rng = np.random.default_rng(seed)
    truth = "[[300, 300, 600, 650]]"
    rows = []
    for _ in range(n):
        x1, y1 = rng.integers(0, 900, 2)
        w, h = rng.integers(-60, 500, 2)  # some boxes come out reversed or empty
        pred = format_box([x1, y1, x1 + w, y1 + h])
        rows.append({"prediction": pred, "iou_intended": grounding_score(pred, truth),
                     "released": grounding_score(pred, truth, released=True)})
    fig, ax = plt.subplots(figsize=(4.8, 3.2))
    ax.scatter([r["iou_intended"] for r in rows], [r["released"] for r in rows], s=10, alpha=0.6, label="released reward")
    ax.plot([0, 1], [0, 1], color="gray", linewidth=1, label="intended reward (= IoU)")
    piled = sum(r["iou_intended"] == 0 and r["released"] == 1 for r in rows)  # one dot on the plot, many boxes
    ax.annotate(f"{piled} of {n} boxes here:\nno overlap, reward 1", (0, 1), (0.08, 0.8), fontsize=7,
                arrowprops={"arrowstyle": "->", "linewidth": 0.8})
    ax.set_xlabel("IoU with the true box")
    ax.set_ylabel("grounding reward")
    ax.set_title("Released grounding reward vs. intended")
    ax.legend(fontsize=7, loc="center right")
    fig.tight_layout()
    return fig, rows


def plot_grounding_predictions(rows: list[dict], data_root: str | Path, n: int = 8, cols: int = 4, scale: float = 2.0,
                               ask: str = "tinyrs"):
    """Grounding answers drawn over their images: truth in green, prediction in magenta (none if unparsable).
    rows: saved predictions of VG_DOIR_RSVG_test (with `size`); returns (figure, table rows)."""
    from ..boxes import iou, parse_pixel_box
    from ..data.vhm import resolve_eval_image
    from ..evaluation.benchmarks import BY_NAME
    from ..evaluation.scoring import predicted_pixel_box

    path = Path(data_root) / BY_NAME["DIOR-RSVG"].file
    rows = rows[:n]
    nrows = max(1, -(-len(rows) // cols))
    fig, axes = plt.subplots(nrows, cols, figsize=(cols * scale, nrows * (scale + 0.5)), squeeze=False)
    table = []
    for ax in axes.flat:
        ax.axis("off")
    for ax, r in zip(axes.flat, rows):
        truth = parse_pixel_box(r["answer"])
        pred = predicted_pixel_box(r["prediction"], r["size"], "strict", ask)  # the box strict scoring counts
        im = draw_boxes(load_rgb(resolve_eval_image({"image": r["image"]}, path)), [truth], (40, 220, 60), 2)
        # corners out of order (x1 > x2 or y1 > y2): the harness scores it 0 however it overlaps the truth
        reversed_ = pred is not None and (pred[0] > pred[2] or pred[1] > pred[3])
        if pred is not None:
            im = draw_boxes(im, [pred], (255, 150, 0) if reversed_ else (255, 0, 255), 2)
        score = iou(pred, truth) if pred is not None else None
        ax.imshow(im)
        q = r["question"].replace("<image>", "").strip()
        said = "no box" if score is None else f"IoU {score:.2f}" + (" (corners reversed)" if reversed_ else "")
        ax.set_title(f"{q[:34]}\n{said}", fontsize=7)
        table.append({"image": r["image"], "question": r["question"], "truth": r["answer"],
                      "prediction": r["prediction"], "iou": score, "corners_reversed": reversed_})
    fig.suptitle("Grounding: truth (green), prediction (magenta; orange: corners reversed, scored 0)", fontsize=9)
    fig.tight_layout()
    return fig, table


def plot_scores_by_mode(results: dict[str, dict]):
    """Capability averages per model, strict (solid) beside compat (hatched). results: model -> scores.json."""
    models = list(results)
    groups = [g for g in next(iter(results.values()))["averages"]["strict"]]
    fig, ax = plt.subplots(figsize=(1.2 + 1.4 * len(groups), 3.2))
    width = 0.8 / (2 * len(models))
    table = []
    for k, m in enumerate(models):
        for j, mode in enumerate(("strict", "compat")):
            vals = [results[m]["averages"][mode].get(g) for g in groups]  # None: no score (see capability_averages)
            pos = [i + (2 * k + j) * width for i in range(len(groups))]
            ax.bar(pos, [v or 0.0 for v in vals], width, color=f"C{k}", hatch="//" if mode == "compat" else None,
                   alpha=0.6 if j else 1.0, label=f"{m} ({mode})")
            _mark_missing(ax, pos, vals, 0.01)
            table += [{"model": m, "mode": mode, "group": g, "score": v} for g, v in zip(groups, vals)]
    from ..evaluation.harness import commonest_answer_scores

    floor = commonest_answer_scores(next(iter(results.values())))
    _draw_floor(ax, [(i - width / 2, i + 0.8 - width / 2, floor.get(f"avg {g}")) for i, g in enumerate(groups)])
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(groups))], groups)
    ax.set_ylabel("score")
    ax.set_title("Table I capability averages: strict vs the released (compat) scoring", fontsize=9)
    ax.legend(fontsize=6, ncol=2)
    return fig, table


def _mark_missing(ax, positions, values, y: float) -> None:
    """'n/a' where a bar has no score (drawn at 0, it would read as a score of 0)."""
    for x, v in zip(positions, values):
        if v is None:
            ax.text(x, y, "n/a", rotation=90, ha="center", va="bottom", fontsize=6, color="gray")


def _labelled_bars(ax, positions, values, width, fmt: str = "{:.1f}", **style):
    """Bars with each value written on top; a missing value (None) is marked 'n/a', not drawn as a 0."""
    bars = ax.bar(positions, [v or 0.0 for v in values], width, **style)
    ax.bar_label(bars, [fmt.format(v) if v is not None else "" for v in values], fontsize=5, rotation=90, padding=1)
    _mark_missing(ax, positions, values, 1)
    return bars


def _draw_floor(ax, spans) -> None:
    """The score of always giving the commonest answer, a dotted line over each group's bars: (x0, x1, value)."""
    drawn = [(x0, x1, v) for x0, x1, v in spans if v is not None]
    for k, (x0, x1, v) in enumerate(drawn):
        ax.hlines(v, x0, x1, colors="k", linestyles=":", linewidth=1.2, label="commonest answer" if k == 0 else None)


def plot_paper_vs_toy(paper: list[dict], toy: list[dict], title: str, label: str = "row",
                      caps=CAPABILITIES, toy_floor: dict[str, float] | None = None):
    """A table as grouped bars: the paper's rows (left) beside the toy run's rows (right), one bar per
    capability, each bar's value written on it (the tables compare differences of a few points). paper / toy:
    rows with `label` and the capability columns (percent); toy_floor: the toy score of always giving the
    commonest answer per capability (percent), drawn as a dotted line."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.5), sharey=True)
    table = []
    for ax, (source, rows) in zip(axes, (("paper", paper), ("toy", toy))):
        names = [str(r[label]) for r in rows]
        width = 0.8 / len(caps)
        for k, cap in enumerate(caps):
            vals = [r.get(cap) for r in rows]
            _labelled_bars(ax, [i + k * width for i in range(len(rows))], vals, width, color=f"C{k}", label=cap)
            table += [{"source": source, label: n, "capability": cap, "percent": v} for n, v in zip(names, vals)]
        if source == "toy" and toy_floor:
            _draw_floor(ax, [(i + k * width - width / 2, i + k * width + width / 2, toy_floor.get(cap))
                             for i in range(len(rows)) for k, cap in enumerate(caps)])
        ax.set_xticks([i + 0.4 - width / 2 for i in range(len(rows))], names, rotation=30, ha="right", fontsize=7)
        ax.set_title(f"{source}", fontsize=9)
        ax.set_ylim(0, 105)
    axes[0].set_ylabel("percent")
    axes[1].legend(fontsize=7, ncol=2)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig, table


def plot_per_benchmark(rows: list[dict], title: str):
    """A per-benchmark table (`tables.reproduced_table1`) as bars: each model's strict score per benchmark, the
    commonest answer's score as a dotted black line across each benchmark's bars (the floor; none for
    grounding)."""
    import numpy as np

    rows = [r for r in rows if r["benchmark"] != "Average"]
    models = [k.removesuffix(" strict") for k in rows[0] if k.endswith(" strict")]
    x, width = np.arange(len(rows)), 0.8 / len(models)
    fig, ax = plt.subplots(figsize=(1.0 + 0.75 * len(rows), 3.4))
    plotted = []
    for k, m in enumerate(models):
        vals = [r[f"{m} strict"] for r in rows]
        _labelled_bars(ax, x + k * width, vals, width, color=f"C{k}", label=f"{m} (strict)")
        plotted += [{"benchmark": r["benchmark"], "model": m, "percent": v} for r, v in zip(rows, vals)]
    _draw_floor(ax, [(i - width / 2, i + 0.8 - width / 2, r.get("commonest answer")) for i, r in enumerate(rows)])
    plotted += [{"benchmark": r["benchmark"], "model": "commonest answer", "percent": r.get("commonest answer")}
                for r in rows]
    ax.set_xticks(x + width * (len(models) - 1) / 2, [f"{r['benchmark']}\n({r['group']})" for r in rows], fontsize=6)
    ax.set_ylabel("percent")
    ax.set_ylim(0, 105)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.18), frameon=False)
    fig.tight_layout()
    return fig, plotted


def plot_table_vs_paper(table: str, arms: dict, plan: dict, profile: str, title: str | None = None):
    """A table notebook's figure: the paper's capability averages beside this run's (strict)."""
    from .reproduced import paper_capabilities
    from .tables import reproduced_rows

    paper = [{"row": r, **v} for r, v in paper_capabilities(table).items()]
    prior = next(iter(arms["nodes"].values())).get("commonest_answer") or {}  # the same questions for every arm
    floor = {cap: 100 * prior[f"avg {cap}"] for cap in CAPABILITIES if f"avg {cap}" in prior}
    return plot_paper_vs_toy(paper, reproduced_rows(table, arms, plan, "strict"),
                             title or f"Table {table}: the paper beside the {profile} run (strict)", toy_floor=floor)


def plot_group_scores(scores: dict[str, dict[str, float]], groups: tuple[str, ...], title: str):
    """Capability averages (strict) of a few models, as bars. scores: model -> {benchmark file: score}."""
    from ..evaluation.benchmarks import BENCHMARKS
    from ..evaluation.scoring import capability_averages

    summary = []
    for m, s in scores.items():
        avg = capability_averages({f: {"score": v} for f, v in s.items()}, BENCHMARKS)
        summary.append({"model": m, **{g: avg.get(g) for g in groups}})
    fig, ax = plt.subplots(figsize=(5.5, 3))
    width = 0.76 / len(groups)
    for i, g in enumerate(groups):
        pos = [k + width * i for k in range(len(summary))]
        ax.bar(pos, [r[g] or 0.0 for r in summary], width=width, label=g)
        _mark_missing(ax, pos, [r[g] for r in summary], 0.01)
    ax.set_xticks([k + width * (len(groups) - 1) / 2 for k in range(len(summary))], [r["model"] for r in summary])
    ax.set_ylabel("strict accuracy")
    ax.set_title(title)
    ax.legend()
    return fig, summary


def plot_table5(rows: list[dict], profile: str):
    """Table V as measured here: latency and throughput of the small and the larger model, per kind of model."""
    fig, axes = plt.subplots(1, 2, figsize=(9, 3))
    plotted = []
    for ax, key in zip(axes, ("ms/sample", "tokens/s")):
        for k, size in enumerate(("small", "larger")):
            sel = [r for r in rows if r["size"] == size]
            ax.bar([i + 0.4 * k for i in range(len(sel))], [r[key] for r in sel], 0.4, label=size)
            plotted += [{"size": size, "kind": r["kind"], "measure": key, "value": r[key]} for r in sel]
        kinds = [r["kind"] for r in rows if r["size"] == "small"]
        ax.set_xticks([i + 0.2 for i in range(len(kinds))], kinds)
        ax.set_title(key, fontsize=9)
    axes[0].legend(fontsize=7)
    fig.suptitle(f"Table V on this machine ({profile}): latency and throughput, one question at a time", fontsize=10)
    fig.tight_layout()
    return fig, plotted
