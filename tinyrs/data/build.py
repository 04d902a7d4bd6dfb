"""`tinyrs data build`: the datasets of the paper's Section II, in the real formats.

toy:   the synthetic world renders every image and writes pretrain.json, instruct.json,
       instruct_balanced.json, rl.json, eval/<benchmark>.json (+ images), scenes.jsonl,
       qa_meta.jsonl and build.json.
paper: real VHM JSON + image folder -> the same training files (VHM-Instruct sampled by
       image, a disjoint VHM-RL), balanced; images stay where they are.
"""
from __future__ import annotations

import io
import json
import math
import multiprocessing as mp
import platform
import signal
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from .. import __version__
from ..config import ConfigError, is_number, is_whole
from ..evaluation.benchmarks import ALL_EVAL_FILES
from ..world import World
from ..world.language import LHRS_TYPES, caption, make_qa
from .balance import balance, balance_settings, task_counts
from .inspect import verify_disjoint
from .vhm import (TASKS, DataError, ValidationReport, make_entry, make_eval_entry, read_eval_file, read_training_file,
                  resolve_train_image, write_json, write_jsonl)

# scenes drawn for one image until one supports its questions: a request few scenes support (LHRS-Bench's
# orientation: a runway, a river, or a ship or plane of its own kind) failed 12 draws in a row with seeds 1 and 3
MAX_SCENE_ATTEMPTS = 48


def image_root_of(build_dir: str | Path) -> Path:
    """The image root a build recorded in build.json (absolute, or relative to the build), else <build>/images.
    A toy build without build.json (written last) was interrupted: its images may be another world's."""
    build_dir = Path(build_dir)
    manifest = build_dir / "build.json"
    if manifest.exists():
        try:
            root = Path(json.loads(manifest.read_text())["image_root"])
        except (ValueError, KeyError, TypeError) as e:
            raise DataError(manifest, None, f"not a build record with an image_root ({type(e).__name__}: {e}); "
                            "run the same tinyrs data build again") from e
        return root if root.is_absolute() else build_dir / root
    check_build_finished(build_dir)
    return build_dir / "images"


def check_build_finished(build_dir: str | Path) -> None:
    """A toy build (it has scenes.jsonl) writes build.json last; without it the build was interrupted and its
    files (questions, images) may come from two different worlds."""
    build_dir = Path(build_dir)
    if (build_dir / "scenes.jsonl").exists() and not (build_dir / "build.json").exists():
        raise DataError(build_dir, None, "a toy build without its build.json, which is written last: the build was "
                        "interrupted and its files may not belong together; run the same tinyrs data build again")


# --- rendering jobs (run in worker processes) ---------------------------------------------------

@dataclass
class ImageJob:
    split: str  # 'pretrain', 'instruct', 'rl' or 'eval/<stem>'
    index: int
    source: str
    rel_path: str  # image path relative to the build directory
    requests: list = field(default_factory=list)  # [(task, subtype)], or [('caption', None)]


_WORLD: World | None = None
_OUT: Path | None = None
_QUALITY = 92


def _init_worker(seed, sources, out, quality):
    global _WORLD, _OUT, _QUALITY
    _WORLD, _OUT, _QUALITY = World(seed, sources), Path(out), quality


def _init_pool_worker(*args):
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the main process's to handle (one message, no tracebacks)
    _init_worker(*args)


def _ask(world: World, job: ImageJob, scene, attempt: int):
    """Answer every request of the job about `scene`; None if one cannot be asked."""
    src = world.sources[job.source]
    results, seen = [], set()
    for k, (task, subtype) in enumerate(job.requests):
        if task == "caption":
            results.append({"task": "caption", "text": caption(scene, world.question_rng(job.split, job.index, k, attempt))})
            continue
        qa = None
        for t in range(6):  # a few draws, so two questions about one image differ
            rng = world.question_rng(job.split, job.index, 10 * k + t, attempt)
            sub = subtype
            if sub is None and task == "VQA" and src.subtypes:
                sub = src.subtypes[rng.integers(len(src.subtypes))]
            qa = make_qa(scene, rng, task, sub, classes=src.class_names, alias=src.alias)
            # two questions about one image must differ in substance and in wording
            if qa is not None and not {(qa.qa_type, repr(qa.evidence)), qa.question} & seen:
                break
            qa = None
        if qa is None:
            return None
        seen |= {(qa.qa_type, repr(qa.evidence)), qa.question}
        results.append(asdict(qa))
    return results


def _run_job(job: ImageJob) -> dict:
    world = _WORLD
    for attempt in range(MAX_SCENE_ATTEMPTS):
        image, scene = world.render(job.split, job.index, job.source, image_name=Path(job.rel_path).name,
                                    attempt=attempt)
        answers = _ask(world, job, scene, attempt)
        if answers is not None:
            break
    else:
        raise RuntimeError(f"{job.split} image {job.index} ({job.source}): no scene supports {job.requests} "
                           f"after {MAX_SCENE_ATTEMPTS} attempts")
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=_QUALITY)
    data = buf.getvalue()
    path = _OUT / job.rel_path
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    scene_row = {"path": job.rel_path, "split": job.split, "source": job.source, **scene.to_dict()}
    return {"job": job, "scene": scene_row, "answers": answers}


def render_jobs(jobs: list[ImageJob], cfg: dict, out: Path, workers: int, progress: bool = True) -> list[dict]:
    args = (cfg["seed"], cfg["sources"], str(out), cfg.get("jpeg_quality", 92))
    bar = dict(total=len(jobs), desc="rendering images", disable=not progress, mininterval=1.0)
    if workers <= 1:
        _init_worker(*args)
        return [_run_job(j) for j in tqdm(jobs, **bar)]
    ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else mp.get_context()
    with ctx.Pool(workers, initializer=_init_pool_worker, initargs=args) as pool:
        return list(tqdm(pool.imap(_run_job, jobs, chunksize=32), **bar))


# --- planning the toy splits ----------------------------------------------------------------------

def _task_counts(n: int, mix: dict[str, float], name: str = "mix") -> dict[str, int]:
    if not isinstance(mix, dict) or not all(is_number(w) and w >= 0 for w in mix.values()):
        raise ConfigError(f"data config {name}: {mix!r} is not a task mix (task: weight >= 0)")
    unknown = set(mix) - set(TASKS)
    if unknown:
        raise ConfigError(f"data config {name}: unknown tasks {sorted(unknown)}; tasks are {TASKS}")
    total = sum(mix.values())
    if total <= 0 < n:
        raise ConfigError(f"data config {name}: every weight is 0, so {n} entries have no task")
    return {t: int(round(n * w / total)) for t, w in mix.items() if w > 0}


def plan_training_split(split: str, n_entries: int, mix: dict, task_sources: dict, per_image: int) -> list[ImageJob]:
    jobs, index = [], 0
    for task, n_task in _task_counts(n_entries, mix, f"{split}.mix").items():
        q = 1 if task == "CLS" else per_image  # a classification question has one answer per image
        sources = task_sources[task]
        for k in range(math.ceil(n_task / q)):
            source = sources[k % len(sources)]
            n_q = min(q, n_task - k * q)
            jobs.append(ImageJob(split, index, source, f"images/{source}/{split}_{index:06d}.jpg", [(task, None)] * n_q))
            index += 1
    return jobs


def count(value, name: str, least: int = 0) -> int:
    """A count from the data config (`name` as in --set, e.g. rl.entries); anything but a whole number >= `least`
    is an error (a negative one would quietly build an empty split)."""
    if not is_whole(value) or value < least:
        raise ConfigError(f"data config {name}: {value!r} is not a count (a whole number >= {least})")
    return value


def plan_eval(stem: str, spec: dict) -> list[ImageJob]:
    jobs = []
    for i in range(count(spec["n"], f"eval.{stem}.n", least=1)):  # an empty benchmark file scores nothing
        subtype = LHRS_TYPES[i % len(LHRS_TYPES)] if spec["task"] == "MC" else spec.get("subtype")
        jobs.append(ImageJob(f"eval/{stem}", i, spec["source"], f"eval/{stem}/{stem}_{i:05d}.jpg",
                             [(spec["task"], subtype)]))
    return jobs


# --- assembling the files -------------------------------------------------------------------------

def _training_entries(results: list[dict]) -> tuple[list[dict], list[dict]]:
    entries, meta = [], []
    for r in results:
        job = r["job"]
        for k, qa in enumerate(r["answers"]):
            eid = f"{job.split}-{job.index:06d}-{k}"
            image = Path(job.rel_path).name
            if qa["task"] == "caption":
                entries.append(make_entry(image, job.source, "Describe this image.", qa["text"], None, eid))
                continue
            entries.append(make_entry(image, job.source, qa["question"], qa["answer"], qa["task"], eid))
            meta.append({"id": eid, "path": job.rel_path, "task": qa["task"], "qa_type": qa["qa_type"],
                         "answer_type": qa["answer_type"], "evidence": qa["evidence"]})
    return entries, meta


def _eval_entries(stem: str, results: list[dict]) -> tuple[list[dict], list[dict]]:
    entries, meta = [], []
    for r in results:
        job, scene, qa = r["job"], r["scene"], r["answers"][0]
        image = Path(job.rel_path).name
        size, qtype, answer = None, None, qa["answer"]
        if qa["task"] == "VG":  # ground truth in pixels with the image size, as in DIOR-RSVG's file
            answer = "[{}, {}, {}, {}]".format(*qa["evidence"]["box_pixels"])
            size = (scene["height"], scene["width"])
        if qa["task"] == "MC":
            qtype = [str(LHRS_TYPES.index(qa["qa_type"]) + 1)]
        entries.append(make_eval_entry(image, qa["question"], answer, size, qtype))
        meta.append({"id": f"{stem}:{len(entries) - 1}", "path": job.rel_path, "task": qa["task"],
                     "qa_type": qa["qa_type"], "answer_type": qa["answer_type"], "evidence": qa["evidence"]})
    return entries, meta


def build_toy(cfg: dict, out: str | Path, workers: int | None = None, progress: bool = True,
              cards_dir: str | Path | None = None) -> dict:
    """Render the toy world and write every file of the data layout. Returns the build report."""
    from .cards import write_cards

    t0 = time.time()
    out = Path(out)
    workers = int(workers or cfg.get("workers", 1))
    ts = cfg["task_sources"]
    plans = {
        "pretrain": [ImageJob("pretrain", i, "VersaD", f"images/VersaD/pretrain_{i:06d}.jpg", [("caption", None)])
                     for i in range(count(cfg["pretrain"]["images"], "pretrain.images"))],
        "instruct": plan_training_split("instruct", count(cfg["instruct"]["entries"], "instruct.entries"),
                                        cfg["instruct"]["mix"], ts, count(cfg["instruct"].get("questions_per_image", 1),
                                                                        "instruct.questions_per_image", least=1)),
        "rl": plan_training_split("rl", count(cfg["rl"]["entries"], "rl.entries"), cfg["rl"]["mix"], ts, 1),
    }
    cap, target = balance_settings(cfg.get("balance"), "data config")
    unknown = [f for f in cfg["eval"] if f not in ALL_EVAL_FILES]
    if unknown:
        raise ConfigError(f"data config eval: unknown benchmark files {unknown}; known: {ALL_EVAL_FILES}")
    for fname, spec in cfg["eval"].items():
        plans[f"eval/{fname[:-5]}"] = plan_eval(fname[:-5], spec)
    all_jobs = [j for jobs in plans.values() for j in jobs]
    out.mkdir(parents=True, exist_ok=True)
    (out / "build.json").unlink(missing_ok=True)  # written last: a build.json always describes the files beside it
    results = render_jobs(all_jobs, cfg, out, workers, progress)
    by_split: dict[str, list[dict]] = {}
    for r in results:
        by_split.setdefault(r["job"].split, []).append(r)
    t_render = time.time() - t0

    files: dict[str, list[dict]] = {}
    meta_rows: list[dict] = []
    for split in ("pretrain", "instruct", "rl"):
        files[f"{split}.json"], meta = _training_entries(by_split.get(split, []))
        meta_rows += meta
    files["instruct_balanced.json"], balance_report = balance(files["instruct.json"], cap, target, seed=cfg["seed"])
    for name, entries in files.items():
        write_json(out / name, entries)
    eval_counts = {}
    for fname in cfg["eval"]:
        stem = fname[:-5]
        entries, meta = _eval_entries(stem, by_split.get(f"eval/{stem}", []))
        write_json(out / "eval" / fname, entries)
        eval_counts[fname] = len(entries)
        meta_rows += meta
    write_jsonl(out / "scenes.jsonl", (r["scene"] for r in results))
    write_jsonl(out / "qa_meta.jsonl", meta_rows)

    disjoint = verify_disjoint(out)
    if not disjoint["disjoint"]:
        raise RuntimeError(f"toy build is not disjoint: {disjoint}")
    report = {
        "profile": "toy", "tinyrs_version": __version__, "python": platform.python_version(),
        "seed": cfg["seed"], "image_root": "images", "eval_root": "eval",
        "files": {n: len(e) for n, e in files.items()}, "eval_files": eval_counts,
        "images": len(results), "task_counts": {n: dict(task_counts(files[n])) for n in ("instruct.json", "rl.json")},
        "balance": {"cap": cap, "target": target, "tasks": balance_report},
        "disjointness": disjoint, "seconds": {"render": round(t_render, 1)}, "workers": workers,
        "config": {k: v for k, v in cfg.items() if not k.startswith("_")},
    }
    report["cards"] = [str(p) for p in write_cards(out, report, cards_dir)]
    report["seconds"]["total"] = round(time.time() - t0, 1)
    write_json(out / "build.json", report)
    return report


# --- the paper profile: real VHM JSON --------------------------------------------------------------

def _check_eval_link(out: Path, eval_root: Path) -> bool:
    """Whether `<out>/eval` must be made (False: it already links to `eval_root`); anything else there is an error."""
    link = out / "eval"
    if link.is_symlink() and link.resolve() == eval_root:
        return False
    if link.exists() or link.is_symlink():
        raise DataError(link, None, f"exists and is not a link to --eval-root {eval_root}; move it away")
    return True


def read_benchmark_folder(eval_root: Path, progress: bool, skip_invalid: bool = False
                          ) -> tuple[dict[str, int], list[ValidationReport]]:
    """Validate every benchmark file of `eval_root` whole (a benchmark with entries skipped would not be the
    benchmark; --skip-invalid applies to training files only). JSON files that are no benchmark of the paper
    are named, with the closest benchmark name, rather than ignored in silence."""
    import difflib

    if not eval_root.is_dir():
        raise DataError(eval_root, None, "--eval-root is not a folder")
    counts, reports = {}, []
    for fname in ALL_EVAL_FILES:
        p = eval_root / fname
        if p.exists():
            try:
                es, rep = read_eval_file(p, "exists", False, progress)
            except DataError as e:
                if not skip_invalid:
                    raise
                raise DataError(e.file, e.index, e.problem + " (a benchmark is read whole: --skip-invalid skips "
                                "training entries only)", e.kind) from None
            counts[fname] = len(es)
            reports.append(rep)
    others = sorted(p.name for p in eval_root.glob("*.json") if p.name not in ALL_EVAL_FILES)
    for name in others:
        close = difflib.get_close_matches(name, ALL_EVAL_FILES, n=1, cutoff=0.6)
        print(f"warning: {eval_root / name} is not a benchmark file of the paper, not read"
              + (f" (did you mean {close[0]}?)" if close else ""))
    if not counts:
        raise DataError(eval_root, None, "holds none of the benchmark files (" + ", ".join(ALL_EVAL_FILES) + ")")
    return counts, reports


def build_from_vhm(vhm_json: str | Path, image_root: str | Path, out: str | Path, cfg: dict,
                   pretrain_json: str | Path | None = None, eval_root: str | Path | None = None,
                   skip_invalid: bool = False, check_images: str = "decode", progress: bool = True,
                   cards_dir: str | Path | None = None) -> dict:
    """Sample VHM-Instruct (by image) and a disjoint VHM-RL from real VHM JSON, balance, write."""
    from .cards import write_cards

    t0 = time.time()
    out = Path(out)
    cap, target = balance_settings(cfg.get("balance"), "data config")
    n_inst, n_rl = count(cfg["instruct"]["images"], "instruct.images"), count(cfg["rl"]["images"], "rl.images")
    image_root = Path(image_root).resolve()
    # Everything is read and checked before the first file is written: a failure leaves an earlier build whole.
    eval_counts, eval_reports, link = {}, [], False
    if eval_root:
        eval_root = Path(eval_root).resolve()
        eval_counts, eval_reports = read_benchmark_folder(eval_root, progress, skip_invalid)
        link = _check_eval_link(out, eval_root)
    entries, vreport = read_training_file(vhm_json, image_root, check_images, skip_invalid, progress)
    validations: list[ValidationReport] = [vreport]
    duplicates = len(entries) - len({json.dumps(e, sort_keys=True) for e in entries})
    if duplicates:  # kept (VHM may repeat a sample on purpose), but said: they weigh twice in training
        print(f"warning: {vhm_json}: {duplicates} entries repeat an earlier entry exactly; kept")
    rng = np.random.default_rng(cfg["seed"])
    by_image: dict[str, list[dict]] = {}  # keyed by the resolved file, so equal names in two sources stay apart
    for e in entries:
        by_image.setdefault(str(resolve_train_image(e, image_root)), []).append(e)
    keys = sorted(by_image)
    rng.shuffle(keys)
    if n_inst + n_rl > len(keys):
        raise DataError(vhm_json, None, f"{len(keys)} distinct images, fewer than instruct {n_inst} + rl {n_rl}; "
                        "lower them with --set instruct.images=N --set rl.images=M")
    instruct = [e for k in keys[:n_inst] for e in by_image[k]]
    # VHM-RL: one question per image (the paper: 10K images, answers without reasoning).
    rl = [by_image[k][rng.integers(len(by_image[k]))] for k in keys[n_inst:n_inst + n_rl]]
    files = {"instruct.json": instruct, "rl.json": rl}
    if pretrain_json:
        pre, prep = read_training_file(pretrain_json, image_root, check_images, skip_invalid, progress)
        files["pretrain.json"] = pre
        validations.append(prep)
    files["instruct_balanced.json"], balance_report = balance(instruct, cap, target, seed=cfg["seed"])
    out.mkdir(parents=True, exist_ok=True)
    (out / "build.json").unlink(missing_ok=True)  # written last: a build.json always describes the files beside it
    if not pretrain_json and (out / "pretrain.json").exists():
        (out / "pretrain.json").unlink()  # an earlier build's: stage P must not train on it
        print(f"removed {out / 'pretrain.json'}, left by an earlier build (this one has no --pretrain-json)")
    for name, es in files.items():
        write_json(out / name, es)
    if link:
        (out / "eval").symlink_to(eval_root, target_is_directory=True)
    disjoint = verify_disjoint(out, image_root, eval_root, content=False)
    if disjoint["rl_vs_instruct"]["shared_files"]:  # cannot happen by construction; checked, not assumed
        raise RuntimeError(f"VHM-RL and VHM-Instruct share images: {disjoint}")
    if disjoint["train_vs_eval"]["shared_files"]:
        print(f"warning: {disjoint['train_vs_eval']['shared_files']} training images are also evaluation images")
    validations += eval_reports
    report = {
        "profile": "paper", "tinyrs_version": __version__, "seed": cfg["seed"], "image_root": str(image_root),
        "eval_root": str(eval_root) if eval_root else None,
        "source": {"vhm_json": str(vhm_json), "pretrain_json": str(pretrain_json) if pretrain_json else None},
        "files": {n: len(e) for n, e in files.items()}, "eval_files": eval_counts,
        "task_counts": {n: dict(task_counts(files[n])) for n in ("instruct.json", "rl.json")},
        "balance": {"cap": cap, "target": target, "tasks": balance_report},
        "disjointness": disjoint, "duplicate_entries": duplicates,
        "validation": [{"file": v.file, "total": v.total, "valid": v.valid, "skipped": dict(v.skipped),
                        "examples": v.examples} for v in validations],
        "config": {k: v for k, v in cfg.items() if not k.startswith("_")},
    }
    report["cards"] = [str(p) for p in write_cards(out, report, cards_dir)]
    report["seconds"] = {"total": round(time.time() - t0, 1)}
    write_json(out / "build.json", report)
    return report
