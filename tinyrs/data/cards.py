"""Data cards in the Hugging Face dataset-card format (YAML header + Markdown), written from
the files of a build: every number in a card is counted from the data, not typed in."""
from __future__ import annotations

import statistics
from collections import Counter
from pathlib import Path

import yaml

from .vhm import answer_text, human_text, read_json_list, split_tag, task_of

LIMITATIONS_TOY = """\
- The images are synthetic: flat textures and simple silhouettes drawn by `tinyrs.world`, not
  photographs. Scores on them say whether a pipeline learns, not how a model does on real imagery.
- The scene classes, object kinds, colours and sensors are a small closed set ({n_classes} scene
  classes, {n_kinds} object kinds); the language is templated, so answers are short and regular.
- The toy benchmarks mirror the real ones in file format, task and relative resolution, not in
  difficulty or class names (the toy METER-ML, for example, has no methane-source classes)."""
LIMITATIONS_PAPER = """\
- Inherits the biases of VHM and its source datasets (mostly optical, mostly Chinese and US scenes).
- Balancing replicates samples; it adds no new information and can over-fit rare tasks."""


def _toy_limitations() -> str:
    from ..world.spec import OBJECT_KINDS, SCENE_CLASSES

    return LIMITATIONS_TOY.format(n_classes=len(SCENE_CLASSES), n_kinds=len(OBJECT_KINDS))


def _size_category(n: int) -> str:
    for bound, name in [(1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")]:
        if n < bound:
            return name
    return "1M<n<10M"


def _header(pretty_name: str, n: int, data_files, task_categories, toy: bool = True) -> str:
    # The toy data is ours (the package's licence); the paper build is sampled from VHM and its source datasets,
    # which come under their own terms.
    license_ = {"license": "apache-2.0"} if toy else {
        "license": "other", "license_name": "vhm-and-source-datasets",
        "license_link": "https://github.com/opendatalab/VHM"}
    meta = {
        "pretty_name": pretty_name, "language": ["en"], **license_,
        "size_categories": [_size_category(n)], "task_categories": task_categories,
        "tags": ["remote-sensing", "vision-language", "tinyrs"],
        "configs": [{"config_name": "default", "data_files": data_files}],
    }
    return "---\n" + yaml.safe_dump(meta, sort_keys=False) + "---\n"


def _table(rows: list[list], header: list[str]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def _words(texts: list[str]) -> str:
    if not texts:
        return "-"
    lens = [len(t.split()) for t in texts]
    return f"{statistics.median(lens):g} (max {max(lens)})"


def _image_key(e: dict) -> tuple[str, str]:
    return str(e.get("source_dataset", "")), e["image"]  # equal names in two sources are two images


def _layout(entries: list[dict]) -> str:
    """The entries' keys as the data has them ('?': not in every entry) and their turns."""
    keys: dict[str, int] = {}
    for e in entries:
        for k in e:
            keys[k] = keys.get(k, 0) + 1
    fields = ", ".join(f'"{k}"' + ("" if n == len(entries) else "?") for k, n in keys.items() if k != "conversations")
    multi = sum(len(e["conversations"]) > 2 for e in entries)
    turns = "[human, gpt]" if not multi else f"[human, gpt, ...] ({multi} with more than one exchange)"
    return "{" + fields + f', "conversations": {turns}' + "}"


def training_card(out: Path, name: str, pretty: str, report: dict, purpose: str) -> str:
    entries = read_json_list(out / name)
    toy = report["profile"] == "toy"
    by_task: dict[str, list[dict]] = {}
    for e in entries:
        by_task.setdefault(task_of(e), []).append(e)
    rows = []
    for task in sorted(by_task):
        es = by_task[task]
        srcs = Counter(str(e.get("source_dataset", "")) for e in es)
        rows.append([task, len(es), len(set(map(_image_key, es))), _words([answer_text(e) for e in es]),
                     ", ".join(f"{s} ({n})" for s, n in srcs.most_common(3))])
    examples = []
    for task in sorted(by_task):
        e = by_task[task][0]
        q = split_tag(human_text(e))[1].replace("\n", " ")
        examples.append(f"- **{task}** ({e.get('source_dataset', '')}/{e['image']}): {q[:160]!r} -> "
                        f"{answer_text(e)[:160]!r}")
    bal = ""
    if name.startswith("instruct"):
        b = report["balance"]
        bal = ("\n### Task balancing\n\nUnder-represented tasks are replicated at most "
               f"{b['cap']}x per epoch (the paper's cap), towards the {b['target']} task count "
               "(the target is our choice; the paper does not give it).\n\n"
               + _table([[r["task"], r["before"], r["factor"], r["after"]] for r in b["tasks"]],
                        ["task", "before", "factor", "after"]) + "\n")
    creation = (
        f"Rendered by `tinyrs data build --profile toy` (seed {report['seed']}) from the synthetic world "
        "`tinyrs.world`: each image is a scene of one land-use class with objects placed by the world's rules "
        "(ships on water, airplanes on aprons, ...); every question is generated from the scene's exact metadata, "
        "so every answer is true by construction. Task tags and layout follow VHM: "
        "`<image>\\n{TAG} question`, grounding answers `[[x1, y1, x2, y2]]` in 0..1000."
        if toy else
        f"Sampled by `tinyrs data build --profile paper` (seed {report['seed']}) from the VHM JSON "
        f"`{report['source']['vhm_json']}`; images stay under `{report['image_root']}`.")
    licence = "" if toy else ("\n\n**Licence:** the entries and images are VHM's and its source datasets'; "
                              "their terms apply (see VHM's repository), not this package's.")
    return (_header(pretty, len(entries), name, ["visual-question-answering", "image-to-text"], toy)
            + f"\n# {pretty}\n\n{purpose}{licence}\n\n## Dataset structure\n\n"
            f"`{name}`: a JSON list of {len(entries)} entries, {len(set(map(_image_key, entries)))} distinct images, "
            f"each `{_layout(entries)}`; images under "
            f"`<image root>/<source_dataset>/<image>`.\n\n"
            + _table(rows, ["task", "entries", "images", "answer words (median)", "main sources"]) + "\n"
            + bal + "\n### Examples\n\n" + "\n".join(examples) + "\n\n## Dataset creation\n\n" + creation + "\n\n"
            "## Intended use\n\nTraining and testing the `tinyrs` pipeline (stages P, S, C, R of TinyRS-R1) "
            + ("end to end on a laptop. Not for measuring real remote-sensing ability." if toy else "at full scale.")
            + "\n\n## Limitations\n\n"
            + (_toy_limitations() if toy else LIMITATIONS_PAPER) + "\n")


def benchmarks_card(out: Path, report: dict) -> str:
    rows, total = [], 0
    for fname in report["eval_files"]:
        entries = read_json_list(out / "eval" / fname)
        total += len(entries)
        answers = Counter(answer_text(e) for e in entries)
        top = ", ".join(f"{a} ({n})" for a, n in answers.most_common(3)) if not fname.startswith("VG_") else "pixel boxes"
        sizes = Counter(tuple(e["size"]) for e in entries if "size" in e)
        rows.append([fname, len(entries), len({e["image"] for e in entries}), top,
                     ", ".join(f"{h}x{w}" for (h, w), _ in sizes.most_common(2)) or "-"])
    cfg = report["config"]
    res = [[f, spec["source"], ", ".join(f"{w}x{h}" for w, h in cfg["sources"][spec["source"]]["sizes"]),
            "{:.2f}-{:.2f}".format(*cfg["sources"][spec["source"]]["zoom"])] for f, spec in cfg["eval"].items()]
    return (_header("tinyrs toy benchmarks (Table I mirrors)", total, [f"eval/{f}" for f in report["eval_files"]],
                    ["image-classification", "visual-question-answering", "object-detection"])
            + "\n# tinyrs toy benchmarks\n\nToy mirrors of the 12 benchmarks of the paper's Table I, with the real "
            "file names and the released harness's layout: `eval/<file>.json`, images in `eval/<stem>/`. Entries are "
            "`{\"image\", \"conversations\": [question, answer]}` plus `size` = [h, w] and pixel boxes "
            "`[x1, y1, x2, y2]` for grounding, and `type` = [question-type id] for LHRS-Bench. Questions carry no "
            "task tag: the evaluation adds it, as the released harness does.\n\n## Dataset structure\n\n"
            + _table(rows, ["file", "entries", "images", "most common answers", "size [h x w]"])
            + "\n\n## Dataset creation\n\nRendered from the synthetic world on image streams of their own, and "
            "checked disjoint from every training image by file name and by content hash "
            f"(shared: {report['disjointness']['train_vs_eval']}). Resolution differs per benchmark as in the real "
            "ones (width x height, zoom = object scale):\n\n"
            + _table(res, ["file", "source", "image size", "zoom"])
            + "\n\n## Intended use\n\nRunning the real evaluation code path on the toy profile.\n\n## Limitations\n\n"
            + _toy_limitations() + "\n")


def write_cards(out: Path, report: dict, cards_dir: str | Path | None = None) -> list[Path]:
    """Write the cards into <out>/data_cards/ (and into `cards_dir` too when given)."""
    profile = report["profile"]
    cards = {
        f"{profile}-vhm-instruct.md": training_card(
            out, "instruct.json", f"tinyrs {profile} VHM-Instruct", report,
            "The supervised fine-tuning set of stages S and C (VHM-Instruct in the paper); "
            "`instruct_balanced.json` is the same set after task balancing."),
        f"{profile}-vhm-rl.md": training_card(
            out, "rl.json", f"tinyrs {profile} VHM-RL", report,
            "The GRPO set of stage R (VHM-RL): images disjoint from VHM-Instruct, answers without reasoning."),
    }
    if "pretrain.json" in report["files"]:
        cards[f"{profile}-pretrain.md"] = training_card(
            out, "pretrain.json", f"tinyrs {profile} pre-training captions", report,
            "Image captions for stage P (VHM's pre-training captions in the paper).")
    if profile == "toy":
        cards["toy-benchmarks.md"] = benchmarks_card(out, report)
    written = []
    for d in [out / "data_cards"] + ([Path(cards_dir)] if cards_dir else []):
        d.mkdir(parents=True, exist_ok=True)
        if "pretrain.json" not in report["files"]:  # a card an earlier build of this folder left
            (d / f"{profile}-pretrain.md").unlink(missing_ok=True)
        for name, text in cards.items():
            (d / name).write_text(text)
            written.append(d / name)
    return written
