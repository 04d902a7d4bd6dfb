"""A generic visual domain for the toy *base* model: plain shapes on flat backgrounds.

In the paper every chain starts from Qwen2-VL-2B-Instruct, a generalist that already follows
instructions and sees, but knows little of remote sensing. The toy base model is made the same
way: brief instruction tuning on this domain, which is not the remote-sensing world but uses the
same answer formats (yes/no, numbers, words from a list, option letters, `[[x1, y1, x2, y2]]`
boxes, descriptions, and `<reasoning>...</reasoning><answer>...</answer>` when asked to think).
"""
from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

from ..boxes import format_box, to_normalized
from ..prompts import THINK_INSTRUCTION
from .language import LETTERS, article, at_position, join_words, number_word
from .spec import position_name

SHAPES = ["circle", "square", "triangle", "diamond", "cross"]
COLORS = {"red": (210, 40, 40), "green": (40, 170, 60), "blue": (40, 80, 210), "yellow": (235, 210, 40),
          "white": (245, 245, 245), "black": (20, 20, 20), "orange": (240, 140, 30), "purple": (140, 50, 170)}
BACKGROUNDS = [(200, 200, 200), (120, 120, 120), (235, 225, 200), (60, 70, 90), (170, 200, 220)]


def render_shapes(rng: np.random.Generator, width: int, height: int):
    """An image with 1-5 non-overlapping shapes; returns (PIL image, [{shape, color, box}], 'bright' | 'dark')."""
    bg = BACKGROUNDS[rng.integers(len(BACKGROUNDS))]
    arr = np.full((height, width, 3), bg, np.float32) + rng.normal(0, 4, (height, width, 3))
    img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    d = ImageDraw.Draw(img)
    side = min(width, height)
    objs = []
    for _ in range(int(rng.integers(1, 6))):
        for _attempt in range(30):
            s = rng.uniform(0.14, 0.3) * side
            x1, y1 = rng.uniform(1, width - s - 1), rng.uniform(1, height - s - 1)
            box = [int(x1), int(y1), int(math.ceil(x1 + s)), int(math.ceil(y1 + s))]
            if all(box[2] + 2 <= o["box"][0] or o["box"][2] + 2 <= box[0] or box[3] + 2 <= o["box"][1] or
                   o["box"][3] + 2 <= box[1] for o in objs):
                break
        else:
            continue
        shape, color = SHAPES[rng.integers(len(SHAPES))], list(COLORS)[rng.integers(len(COLORS))]
        if COLORS[color] == bg:
            continue
        _draw(d, shape, box, COLORS[color])
        objs.append({"shape": shape, "color": color, "box": box})
    return img, objs, "bright" if float(np.mean(bg)) > 128 else "dark"


def _draw(d: ImageDraw.ImageDraw, shape: str, box, rgb):
    x1, y1, x2, y2 = box
    cx, cy, w = (x1 + x2) / 2, (y1 + y2) / 2, x2 - x1
    if shape == "circle":
        d.ellipse([x1, y1, x2 - 1, y2 - 1], fill=rgb)
    elif shape == "square":
        d.rectangle([x1, y1, x2 - 1, y2 - 1], fill=rgb)
    elif shape == "triangle":
        d.polygon([(cx, y1), (x2 - 1, y2 - 1), (x1, y2 - 1)], fill=rgb)
    elif shape == "diamond":
        d.polygon([(cx, y1), (x2 - 1, cy), (cx, y2 - 1), (x1, cy)], fill=rgb)
    else:  # cross
        t = w * 0.17
        d.rectangle([cx - t, y1, cx + t, y2 - 1], fill=rgb)
        d.rectangle([x1, cy - t, x2 - 1, cy + t], fill=rgb)


def _where(obj, w, h):
    x1, y1, x2, y2 = obj["box"]
    return at_position(position_name((x1 + x2) / 2, (y1 + y2) / 2, w, h))


def describe(objs, w, h) -> str:
    if not objs:
        return "The image is empty."
    parts = [f"{article(o['color'])} {o['color']} {o['shape']} {_where(o, w, h)}" for o in objs]
    return f"There {'is' if len(objs) == 1 else 'are'} {number_word(len(objs))} shape{'s' if len(objs) > 1 else ''}: {join_words(parts)}."


def _refs(o, objs, w, h) -> list[str]:
    """Descriptions that pick out `o` among `objs` (as the toy's referring expressions do)."""
    where = _where(o, w, h)
    same = [p for p in objs if p["shape"] == o["shape"]]
    refs = []
    if len(same) == 1:
        refs.append(f"the {o['shape']}")
    if sum(p["color"] == o["color"] for p in same) == 1:
        refs.append(f"the {o['color']} {o['shape']}")
    if sum(_where(p, w, h) == where for p in same) == 1:
        refs.append(f"the {o['shape']} {where}")
    return refs


def generic_qa(rng: np.random.Generator, objs: list[dict], w: int, h: int, background: str) -> tuple[str, str, str]:
    """(question, short answer, reasoning) about a shapes image, asked in the templates of the toy
    benchmarks (class lists, yes/no, comparisons, counts, referring expressions, option letters)."""
    pick = lambda seq: seq[int(rng.integers(len(seq)))]  # noqa: E731
    seen = describe(objs, w, h)
    count = lambda s: sum(o["shape"] == s for o in objs)  # noqa: E731
    kinds = ["classify", "presence", "comparison", "binary", "count", "ground", "attribute", "mc", "describe"]
    weights = np.array([3, 3, 2, 1, 2, 3, 2, 2, 2], float)
    for _ in range(20):
        kind = kinds[rng.choice(len(kinds), p=weights / weights.sum())]
        if kind == "classify" and objs:
            main = max(objs, key=lambda o: (o["box"][2] - o["box"][0]) * (o["box"][3] - o["box"][1]))["shape"]
            options = list(rng.permutation(SHAPES))
            return (f"Classify the image within one of the given classes: {', '.join(options)}. Answer with one word "
                    f"or short phrase.", main, f"{seen} The largest shape is {article(main)} {main}.")
        if kind == "presence":
            s = pick([o["shape"] for o in objs]) if objs and rng.random() < 0.5 else pick(SHAPES)
            q = pick([f"Is there {article(s)} {s}?", f"Are there any {s}s?", f"Is there {article(s)} {s} in the image?"])
            return q, "yes" if count(s) else "no", f"{seen} So there {'is' if count(s) else 'is no'} {s}."
        if kind == "comparison":
            a, b = rng.choice(SHAPES, 2, replace=False)
            form = int(rng.integers(3))
            q, yes = [(f"Are there more {a}s than {b}s?", count(a) > count(b)),
                      (f"Are there less {a}s than {b}s?", count(a) < count(b)),
                      (f"Is the number of {a}s equal to the number of {b}s?", count(a) == count(b))][form]
            return q, "yes" if yes else "no", f"{seen} There are {count(a)} {a}s and {count(b)} {b}s."
        if kind == "binary":
            return ("Is it a bright or a dark background?", background,
                    f"The background is a flat {background} colour, the shapes stand out against it.")
        if kind == "count":
            s = pick(SHAPES)
            q = pick([f"How many {s}s are there?", f"What is the number of {s}s?", f"How many {s}s are there in the image?"])
            return q, str(count(s)), f"{seen} Counting the {s}s gives {number_word(count(s))}."
        if kind == "ground" and objs:
            o = pick(objs)
            refs = _refs(o, objs, w, h)
            if refs:
                box = to_normalized(o["box"], w, h)
                return (pick(refs), format_box(box), f"The {o['color']} {o['shape']} is {_where(o, w, h)}, from "
                        f"{box[0]} to {box[2]} across and from {box[1]} to {box[3]} down, on a 0 to 1000 scale.")
        if kind == "attribute" and objs:
            o = pick(objs)
            refs = _refs(o, objs, w, h)
            if not refs:
                continue
            ref = pick(refs)
            form = int(rng.integers(3))
            if form == 0 and o["color"] not in ref:
                return f"What color is {ref}?", o["color"], f"{seen} It is {o['color']}."
            if form == 1 and _where(o, w, h) not in ref:
                return f"Where is {ref} located in the image?", _where(o, w, h), f"{seen}"
            uniq = [p for p in objs if sum(q["color"] == p["color"] for q in objs) == 1]
            if uniq:
                u = pick(uniq)
                return f"What shape is the {u['color']} object?", u["shape"], f"{seen} The {u['color']} one is {article(u['shape'])} {u['shape']}."
        if kind == "mc" and objs:
            o = pick(objs)
            form = int(rng.integers(3))
            if form == 0:
                q, correct, pool = f"What color is the {o['shape']} {_where(o, w, h)}?", o["color"], list(COLORS)
            elif form == 1:
                q, correct, pool = "Which of the following shapes can be seen in this image?", o["shape"], \
                    [s for s in SHAPES if not count(s)] + [o["shape"]]
            else:
                s = o["shape"]
                q, correct, pool = f"How many {s}s are in the image?", str(count(s)), [str(k) for k in range(0, 7)]
            wrong = [c for c in dict.fromkeys(pool) if c != correct]
            if len(wrong) < 3:
                continue
            options = [correct] + list(rng.choice(wrong, 3, replace=False))
            rng.shuffle(options)
            letter = LETTERS[options.index(correct)]
            q += "\n" + "\n".join(f"{LETTERS[i]}. {c}" for i, c in enumerate(options)) + \
                "\nAnswer with the option's letter from the given choices directly."
            return q, letter, f"{seen} The answer is {correct}, which is option {letter}."
        if kind == "describe":
            q = pick(["Describe the image in detail.", "Please describe this image.", "What can you see in this image?"])
            return q, seen, "I go over the shapes one by one, noting colour and place."
    return "Describe the image.", seen, "I go over the shapes one by one."


def generic_samples(n: int, seed: int, think_fraction: float = 0.25):
    """Yield (PIL image, question, answer) for the base model's instruction tuning. A share of the
    questions asks to think first, and is answered as <reasoning>...</reasoning><answer>...</answer>."""
    for i in range(n):
        rng = np.random.default_rng([seed, 7919, i])
        w, h = [[112, 112], [128, 128], [160, 128], [144, 144]][rng.integers(4)]
        img, objs, background = render_shapes(rng, w, h)
        q, a, why = generic_qa(rng, objs, w, h, background)
        if rng.random() < think_fraction:
            yield img, f"{q}\n{THINK_INSTRUCTION}", f"<reasoning>{why}</reasoning><answer>{a}</answer>"
        else:
            yield img, q, a
