"""Figures: every figure is saved as PNG, PDF and a CSV of the data it plots."""
from __future__ import annotations

import csv
from pathlib import Path

import matplotlib.pyplot as plt
from PIL import ImageDraw

from ..data.images import load_rgb
from ..paths import FIGURES


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
    for b in boxes:
        d.rectangle([b[0], b[1], b[2] - 1, b[3] - 1], outline=color, width=width)
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


def plot_caption_examples(rows: list[dict], width: int = 95):
    """The paper's Fig. 2: images with the original question and answer and the generated CoT caption.
    rows: {image (path), question, original, caption}."""
    import textwrap

    fig, axes = plt.subplots(len(rows), 2, figsize=(11, 2.9 * len(rows)), gridspec_kw={"width_ratios": [1, 3.2]})
    for (ax_img, ax_txt), r in zip(axes.reshape(len(rows), 2), rows):
        ax_img.imshow(load_rgb(r["image"]))
        ax_img.axis("off")
        ax_txt.axis("off")
        lines = (textwrap.wrap(f"Q: {r['question']}", width) + textwrap.wrap(f"Original answer: {r['original']}", width)
                 + [""] + textwrap.wrap(f"CoT caption: {r['caption']}", width))
        ax_txt.text(0, 1, "\n".join(lines), va="top", ha="left", fontsize=7.5, family="monospace")
    fig.tight_layout()
    return fig
