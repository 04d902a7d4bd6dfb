"""`tinyrs eval` and `tinyrs rescore`: the Table I protocol over saved, resumable predictions.

For each benchmark, predictions are appended to `<out>/predictions/<stem>.jsonl` one batch at a time
(flushed and fsync'ed), so an interrupted evaluation started again generates only what is missing.
`<out>/eval.json` records which model (path and weights' SHA-256) and settings made them: predictions of
another model or other settings are never mixed in (an error, or `overwrite=True` to start afresh).
Scores in both modes go to `<out>/scores.json`; `rescore` recomputes them from the predictions alone.
Open-ended QA (metric "judge") is graded by the judge at scoring time.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

from tqdm import tqdm

from ..config import ConfigError
from ..data.vhm import DataError, answer_text, human_text, is_image_size, read_appended, resolve_eval_image, write_json
from .benchmarks import ALL_BENCHMARKS, ASKING, BENCHMARKS, BY_FILE, BY_NAME, asking_style
from .run import benchmark_entries, benchmark_images, benchmark_prompt, prediction_row, think_prompting
from .scoring import MODES, capability_averages, judge_grades, score_rows

GROUP_ALIASES = {"cls": "CLS", "vqa": "VQA", "vg": "Ground.", "lhrs": "Gen. Know.", "open": "Open-ended"}


def select_benchmarks(names: list[str]) -> list:
    """`all` (Table I's twelve), a group (cls, vqa, vg, lhrs, open), a benchmark name (AID, HR-Compare,
    Open-ended, ...) or a file name."""
    chosen = []
    for n in names or ["all"]:
        if n == "all":
            found = BENCHMARKS
        elif n.lower() in GROUP_ALIASES:
            found = [b for b in ALL_BENCHMARKS if b.group == GROUP_ALIASES[n.lower()]]
        elif n in BY_NAME or n in BY_FILE:
            found = [BY_NAME.get(n) or BY_FILE[n]]
        else:
            raise ConfigError(f"unknown benchmark {n!r}: use all, {', '.join(GROUP_ALIASES)}, "
                              f"or one of {', '.join(BY_NAME)}")
        chosen += [b for b in found if b not in chosen]
    return chosen


PREDICTION_KEYS = ("index", "question", "answer", "prediction")


def _prediction_problem(r) -> str | None:
    missing = [k for k in PREDICTION_KEYS if k not in r] if isinstance(r, dict) else list(PREDICTION_KEYS)
    if missing or not isinstance(r["index"], int) or isinstance(r["index"], bool) or r["index"] < 0:
        problem = f"lacks {', '.join(missing)}" if missing else f"index {r['index']!r} is not a whole number >= 0"
        return f"not a prediction row of tinyrs eval ({problem})"
    texts = [k for k in PREDICTION_KEYS[1:] if not isinstance(r[k], str)]
    if texts:
        return f"not a prediction row of tinyrs eval ({', '.join(f'{k} {r[k]!r}' for k in texts)}: not text)"
    return None


def _size_problem(r: dict) -> str | None:
    """A grounding row's image size, [h, w] in pixels: what its 0..1000 box is scaled by."""
    if is_image_size(r.get("size")):
        return None
    return f"size {r.get('size')!r} is not the image's [h, w] in pixels (a grounding row's box is scaled by it)"


def _prediction_rows(path: Path, cut_torn_tail: bool = False, grounding: bool = False,
                     torn: list | None = None) -> dict[int, dict]:
    """Finished predictions of one benchmark by entry index (a later row of an index wins). A torn last line
    (a run killed mid-write) is not one; any other line that is not a prediction row is an error naming it."""
    def problem(r):
        return _prediction_problem(r) or (_size_problem(r) if grounding else None)

    rows = read_appended(path, problem, "fix or delete the line (tinyrs eval then answers that question again)",
                         cut_torn_tail, torn)
    return {r["index"]: r for _, r in rows}


def predict_benchmark(engine, data_root: Path, bench, out: Path, limit: int | None, system: str | None,
                      max_new_tokens: int, batch_size: int, progress: bool, suffix: str = "",
                      ask: str = "tinyrs") -> tuple[list[dict], int]:
    """The rows of every question of a benchmark (answered now, or already in `out`) and how many were already."""
    path, entries = benchmark_entries(data_root, bench.file, limit)
    pred_path = out / "predictions" / f"{bench.stem}.jsonl"
    pred_path.parent.mkdir(parents=True, exist_ok=True)
    done = _prediction_rows(pred_path, cut_torn_tail=True, grounding=bench.metric == "acc@0.5")
    # A row answers the question and image it records: rows of an evaluation file that has changed since, or whose
    # image was replaced under its name (another byte size), are answered again (a later row of an index wins when
    # the file is read; a row written before image_bytes was recorded is checked by its question only).
    image_bytes = [resolve_eval_image(e, path).stat().st_size for e in entries]
    stale = [i for i, r in done.items() if i < len(entries) and
             ((r["question"], r["answer"]) != (human_text(entries[i]), answer_text(entries[i]))
              or r.get("image_bytes", image_bytes[i]) != image_bytes[i])]
    for i in stale:
        del done[i]
    if stale:
        print(f"{pred_path}: {len(stale)} predictions were made for other questions or images (the evaluation "
              "files changed since): answering them again")
    todo = [i for i in range(len(entries)) if i not in done]
    chunk = batch_size * 4
    with open(pred_path, "a") as f, tqdm(total=len(entries), initial=len(entries) - len(todo), desc=bench.name,
                                         disable=not progress, mininterval=1.0) as bar:
        for start in range(0, len(todo), chunk):
            idx = todo[start:start + chunk]
            prompts = [benchmark_prompt(entries[i], bench.file, system, suffix, ask) for i in idx]
            preds = engine.generate(prompts, benchmark_images([entries[i] for i in idx], path, idx),
                                    batch_size=batch_size, max_new_tokens=max_new_tokens, progress=False)
            for i, p in zip(idx, preds):
                row = {**prediction_row(i, entries[i], p), "image_bytes": image_bytes[i]}
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
                done[i] = row
            f.flush()
            os.fsync(f.fileno())
            bar.update(len(idx))
    # a kept row from before image_bytes was recorded takes the size of its image now (its scores' question
    # digest is then a fresh row's); a row's own size wins
    return [{"image_bytes": image_bytes[i], **done[i]} for i in range(len(entries))], len(entries) - len(todo)


def score_predictions(rows_by_file: dict[str, list[dict]], modes=MODES, judge=None,
                      data_root: str | Path | None = None, ask: str = "tinyrs") -> dict:
    """Both modes for every benchmark, and the capability averages. Open-ended rows are graded by
    `judge` (their images are found under `data_root`, the folder of the evaluation files); `ask`: how
    the model was asked (benchmarks.ASKING), which says how its boxes are read."""
    from ..data.vhm import resolve_eval_image

    benches = [BY_FILE[f] for f in rows_by_file]
    per = {}
    for f, rows in rows_by_file.items():
        grades = None
        if BY_FILE[f].metric == "judge" and judge is not None:
            path = Path(data_root or ".") / f
            grades = judge_grades(judge, rows, lambda r: str(resolve_eval_image(r, path)))
        per[f] = {m: score_rows(rows, BY_FILE[f].metric, m, grades, BY_FILE[f].rule, ask) for m in modes}
    averages = {m: capability_averages({f: s[m] for f, s in per.items()}, benches) for m in modes}
    return {"benchmarks": per, "averages": averages}


def _check_record(out: Path, record: dict, overwrite: bool) -> None:
    """Predictions already in `out` must come from the same model and settings; else stop (or clear them).
    A record without predictions (a run that stopped before its first answer) is simply replaced."""
    import shutil

    path = out / "eval.json"
    if path.exists():
        old = read_record(path)
        # a key a record written before it existed lacks counts as its default, or else as unknown (not compared)
        differs = {k: (old.get(k, RECORD_DEFAULTS.get(k)), v) for k, v in record.items()
                   if k in SAME_RUN_KEYS and (k in old or k in RECORD_DEFAULTS)
                   and old.get(k, RECORD_DEFAULTS.get(k)) != v}
        if differs and not overwrite and any((out / "predictions").glob("*.jsonl")):
            raise ConfigError(f"{out} holds predictions made with other settings "
                              f"({'; '.join(f'{k}: {a!r} there, {b!r} now' for k, (a, b) in differs.items())}): "
                              "choose another output folder, or overwrite them (--overwrite)")
        if differs:
            shutil.rmtree(out / "predictions", ignore_errors=True)
    write_json(path, record)


SAME_RUN_KEYS = ("model_sha256", "think", "ask", "max_new_tokens", "data_root", "prompt_sha256", "backend")
RECORD_DEFAULTS = {"ask": "tinyrs", "backend": "transformers"}  # what a record written before a key existed meant


def evaluate(model_path: str | Path, data_root: str | Path, out: str | Path, benchmarks: list[str] | None = None,
             modes=MODES, think: str | None = None, max_new_tokens: int = 1024, batch_size: int = 16,
             limit: int | None = None, progress: bool = True, backend: str = "auto", judge=None,
             overwrite: bool = False, ask: str = "auto") -> dict:
    """Predictions and scores of one model on the chosen benchmarks; resumable.

    think: None for a plain model; "system" (the released harness: a system prompt asks for the two
    tags) or "instruction" (the GRPO think instruction after the question, as stage R prompts; the toy
    chain never sees a system prompt in training, and a tiny model does not generalise to one).
    ask: how the released harness asks this model (benchmarks.ASKING), "auto": chosen by its name as the
    harness chooses (`asking_style`: Qwen/Qwen2-VL-2B-Instruct gets plain questions, TinyRS models tags).
    backend: "auto" (vLLM where installed with a GPU, else transformers), "vllm" or "transformers".
    judge: grades the open-ended benchmark (an object with `score(question, answer, image)`)."""
    from ..train.runs import fingerprint
    from .generate import load_engine
    from .vllm_backend import choose_backend

    system, suffix = think_prompting(think)
    ask = asking_style(model_path) if ask == "auto" else ask
    if ask not in ASKING:
        raise ConfigError(f"ask must be auto or one of {', '.join(ASKING)}, not {ask!r}")

    data_root, out = Path(data_root), Path(out)
    chosen = select_benchmarks(benchmarks or ["all"])
    missing = [b.file for b in chosen if not (data_root / b.file).exists()]
    if missing:
        raise FileNotFoundError(f"{data_root}: no {', '.join(missing)} (build them with tinyrs data build, "
                                "or choose --benchmarks)")
    for b in chosen:  # every file checked before the model answers any (a bad last file is not found hours in)
        benchmark_entries(data_root, b.file, limit)
    # the wording the model is asked with (reasoning system prompt, think instruction) and the engine decide its
    # answers as much as the model does: answers given under other ones are not reused
    prompt_sha256 = hashlib.sha256(json.dumps([system, suffix]).encode()).hexdigest()
    _check_record(out, {"model": str(model_path), "model_sha256": fingerprint(model_path), "think": think,
                        "ask": ask, "max_new_tokens": max_new_tokens, "data_root": str(data_root.resolve()), "limit": limit,
                        "benchmarks": [b.file for b in chosen], "prompt_sha256": prompt_sha256,
                        "backend": choose_backend(backend)},
                  overwrite)
    (out / "scores.json").unlink(missing_ok=True)  # written again at the end: its absence marks an unfinished run
    engine = load_engine(model_path, backend)
    t0 = time.time()
    try:
        answered = {b.file: predict_benchmark(engine, data_root, b, out, limit, system, max_new_tokens,
                                              batch_size, progress, suffix, ask) for b in chosen}
    finally:  # the GPU memory a vLLM engine holds is the next model's (tinyrs ablations evaluates arm after arm)
        getattr(engine, "close", lambda: None)()
    seconds = round(time.time() - t0, 1)
    rows = {file: r for file, (r, _) in answered.items()}
    if reused := sum(n for _, n in answered.values()):
        print(f"{out}: {reused} of {sum(map(len, rows.values()))} answers were already there (the same model, "
              "settings and questions) and were kept; --overwrite answers every question again")
    result = {"model": str(model_path), "data_root": str(data_root), "think": think, "ask": ask,
              "reused_answers": reused,
              "backend": engine.name, "max_new_tokens": max_new_tokens, "limit": limit, "seconds": seconds,
              "judge": getattr(judge, "name", None), **score_predictions(rows, modes, judge, data_root, ask)}
    write_json(out / "scores.json", result)
    return result


def predictions_folder(path: str | Path) -> Path:
    """`<out>/predictions` given `<out>` or that folder itself."""
    d = Path(path)
    return d / "predictions" if (d / "predictions").is_dir() else d


def eval_record(predictions_dir: str | Path) -> dict:
    """`<out>/eval.json` of a predictions folder ({} without a record)."""
    path = predictions_folder(predictions_dir).parent / "eval.json"
    return read_record(path) if path.exists() else {}


def recorded_data_root(predictions_dir: str | Path) -> str | None:
    """The evaluation files' folder that `<out>/eval.json` names (None without a record)."""
    return eval_record(predictions_dir).get("data_root")


def read_record(path: Path) -> dict:
    """eval.json, or an error naming it (e.g. a copy cut short)."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(path, None, f"not a readable record of tinyrs eval ({e}); without it the predictions "
                        "beside it cannot be told apart: delete the folder, or choose another --out") from None
    if not isinstance(record, dict):
        raise DataError(path, None, "not a record of tinyrs eval (a JSON object)")
    return record


def rescore(predictions_dir: str | Path, modes=MODES, judge=None, data_root: str | Path | None = None) -> dict:
    """Scores from saved predictions (`<out>/predictions/*.jsonl` or that folder itself), no model needed.
    Open-ended predictions need a `judge` and the evaluation files' folder (default: the one eval.json names).
    The questions scored are those the last `tinyrs eval` into the folder scored (its `limit`, in eval.json):
    a folder keeps the answers of an earlier, longer run too."""
    d = predictions_folder(predictions_dir)
    record = eval_record(d)
    data_root, limit = data_root or record.get("data_root"), record.get("limit")
    by_stem = {b.stem: b.file for b in ALL_BENCHMARKS}
    rows, torn = {}, []
    for p in sorted(d.glob("*.jsonl")):
        if p.stem not in by_stem:
            raise DataError(p, None, "not a Table I benchmark's predictions (expected <stem>.jsonl, e.g. cls_AID.jsonl)")
        found = _prediction_rows(p, grounding=BY_FILE[by_stem[p.stem]].metric == "acc@0.5", torn=torn)
        rows[by_stem[p.stem]] = [found[i] for i in sorted(found) if limit is None or i < limit]
    if not rows:
        raise FileNotFoundError(f"{d}: no predictions (*.jsonl)")
    result = score_predictions(rows, modes, judge, data_root, record.get("ask", RECORD_DEFAULTS["ask"]))
    if record and not (d.parent / "scores.json").exists():
        not_started = [f for f in record.get("benchmarks", []) if f not in rows]
        result["unfinished"] = (f"the last tinyrs eval into {d.parent} did not finish (no scores.json): these scores "
                                "count only the answers it saved" + (f", and it had not started {', '.join(not_started)}"
                                                                     if not_started else "")
                                + "; run the same tinyrs eval again to finish it")
    if torn:  # a write cut off mid-line: that answer is not scored
        result["torn"] = (f"the last line of {', '.join(p.name for p in torn)} was cut off mid-write and is not scored; "
                          "run the same tinyrs eval into the folder to answer it again")
    return result


def models_table(results: dict[str, dict], modes=MODES) -> list[dict]:
    """Several models' scores side by side (one column per model and mode), then the capability averages;
    first the score of always giving the commonest answer (`commonest_answer_scores`), the floor to read
    them against. results: model name -> the result of `evaluate` (or scores.json)."""
    first = next(iter(results.values()))
    prior = commonest_answer_scores(first)
    rows = [{"benchmark": f.removesuffix(".json"), "commonest answer": prior.get(f),
             **{f"{n} {m}": r["benchmarks"][f][m]["score"] for n, r in results.items() for m in modes}}
            for f in first["benchmarks"]]
    return rows + [{"benchmark": f"avg {g}", "commonest answer": prior.get(f"avg {g}"),
                    **{f"{n} {m}": r["averages"][m].get(g) for n, r in results.items() for m in modes}}
                   for g in first["averages"][modes[0]]]


def commonest_answer_scores(result: dict) -> dict[str, float]:
    """{benchmark file, or 'avg <group>': the score of always giving the commonest answer} of a result; none
    for grounding (no answer prior), so none for the mean of the four capabilities either."""
    prior = {f: v for f, s in result["benchmarks"].items()
             if (v := next(iter(s.values())).get("commonest_answer")) is not None}
    averages = capability_averages({f: {"score": v} for f, v in prior.items()}, [BY_FILE[f] for f in prior])
    return {**prior, **{f"avg {g}": v for g, v in averages.items() if g != "Avg."}}


def scores_table(result: dict) -> list[dict]:
    """One row per benchmark with both modes side by side, then the capability averages; last, the score
    of always giving the commonest answer (`commonest_answer_scores`)."""
    rows = []
    modes = list(next(iter(result["benchmarks"].values())))
    prior = commonest_answer_scores(result)
    for f, s in result["benchmarks"].items():
        row = {"benchmark": BY_FILE[f].name, "metric": BY_FILE[f].metric}
        for m in modes:
            row[m] = s[m]["score"]
            row[f"{m} n"] = f"{s[m]['counted']}/{s[m]['n']}" + (" graded" if BY_FILE[f].metric == "judge" else "")
        rows.append({**row, "commonest answer": prior.get(f)})
    for g in result["averages"][modes[0]]:
        rows.append({"benchmark": f"avg {g}", "metric": "", **{m: result["averages"][m].get(g) for m in modes},
                     "commonest answer": prior.get(f"avg {g}")})
    return rows
