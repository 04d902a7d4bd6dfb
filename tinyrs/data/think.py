"""VHM-Instruct-Think: chain-of-thought captions for VHM-Instruct (the paper's Section II, Fig. 1-2).

A teacher gets the image, the original question and the original answer (as metadata to
explain, not to cite) and writes `<reasoning>...</reasoning><answer>...</answer>`. Every caption
is validated (format, reasoning length, an answer that agrees with the original); a caption is
asked for up to `max_attempts` times in all, then dropped and counted. The output is VHM JSON again.

Resumable: every finished entry (accepted or dropped) is appended to a journal and fsync'ed
before the next; a run killed at any moment and started again skips what is journaled, so no
finished caption is lost and none is duplicated. The final JSON is written atomically.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from tqdm import tqdm

from ..boxes import parse_box
from ..evaluation.scoring import normalize
from ..llm import LLMClient, LLMConfigError, image_data_url, user_message
from ..prompts import COT_TEACHER_SYSTEM, cot_teacher_text
from .vhm import DataError, read_appended, read_json_list, read_training_file, resolve_train_image, split_tag, task_of, write_json

CAPTION = re.compile(r"^\s*<reasoning>(.+?)</reasoning>\s*<answer>(.+?)</answer>\s*$", re.S)
MIN_REASONING_WORDS = 8
MC_LETTER = re.compile(r"^\s*\(?([A-D])\b\)?(?:[.):]|\s|$)")


def last_turns(entry: dict) -> tuple[int, str, str]:
    """(index of the last answer, the question before it, that answer)."""
    turns = entry["conversations"]
    gi = max(i for i, t in enumerate(turns) if t["from"] == "gpt")
    question = next(t["value"] for t in reversed(turns[:gi]) if t["from"] == "human")
    return gi, question, turns[gi]["value"]


def entry_key(entry: dict) -> str:
    """Identifies a sample by (image, question), as the output check does; duplicates collapse."""
    _, question, _ = last_turns(entry)
    q = re.sub(r"\s+", " ", question.replace("<image>", "").strip())
    return hashlib.sha1(f"{entry['image']}\n{q}".encode()).hexdigest()[:20]


def format_problem(text: str) -> str | None:
    return None if CAPTION.match(text or "") else "no <reasoning>...</reasoning><answer>...</answer>"


def check_caption(caption: str | None, original: str) -> str | None:
    """Why a caption is rejected, or None if it is accepted."""
    if caption is None:
        return "call failed"
    m = CAPTION.match(caption)
    if not m:
        return "format"
    if len(m.group(1).split()) < MIN_REASONING_WORDS:
        return "short reasoning"
    answer = m.group(2)
    box = parse_box(original)
    if box is not None:
        return None if parse_box(answer) == box else "different box"
    letter = MC_LETTER.match(original)
    if letter and len(original.strip()) <= 3:  # a bare option letter: the same choice
        got = MC_LETTER.match(answer)
        return None if got and got.group(1) == letter.group(1) else "different choice"
    return None if normalize(answer) == normalize(original) else "different answer"


# --- teachers ---------------------------------------------------------------------------------------

class RulesTeacher:
    """The toy default: offline and deterministic, from the world's metadata (tinyrs.world.reasoning)."""

    name = "rules"
    model = "tinyrs.world.reasoning"
    identity = "rules"  # who wrote a journaled caption: another teacher's captions are not reused

    def __init__(self, build_dir: str | Path):
        from ..world.grading import SceneIndex
        from .hf import read_qa_meta

        build_dir = Path(build_dir)
        for f in ("scenes.jsonl", "qa_meta.jsonl"):
            if not (build_dir / f).exists():
                raise DataError(build_dir / f, None, "the rules teacher reads the toy world's metadata, which is "
                                "missing here; use --teacher openai for real data")
        self.build_dir = build_dir
        self.scenes = SceneIndex(build_dir)
        self.meta = read_qa_meta(build_dir)

    def problem(self, entry: dict, image_path: Path) -> str | None:
        """Why this entry cannot be captioned from the toy world (checked before any caption is written)."""
        if entry.get("id") not in self.meta:
            return f"id {entry.get('id')!r} is not a question of the toy build {self.build_dir} (its qa_meta.jsonl)"
        if self.scenes.get(image_path) is None:
            return f"image {str(image_path)!r} is not a scene of the toy build {self.build_dir} (its scenes.jsonl)"
        return None

    def caption(self, entry: dict, image_path: Path, attempt: int) -> str | None:
        from ..world.reasoning import cot_caption

        meta, scene = self.meta[entry["id"]], self.scenes.get(image_path)
        _, question, answer = last_turns(entry)
        return cot_caption(scene, meta["qa_type"], split_tag(question)[1], answer, meta["evidence"],
                           seed_key=entry_key(entry), attempt=attempt)


class OpenAITeacher:
    """Any OpenAI-compatible model (GPT-4.1-mini in the paper) through the one LLM client."""

    name = "openai"

    def __init__(self, client: LLMClient):
        self.client = client
        self.model = client.settings.model
        # the model, its sampling settings, the server and the teacher's instructions (no key)
        body = client.request_body([{"role": "system", "content": COT_TEACHER_SYSTEM},
                                    {"role": "user", "content": cot_teacher_text("", "")}])
        self.identity = f"openai:{self.model}:{client.request_key(body)[:12]}"

    def messages(self, entry: dict, image_path: Path) -> list[dict]:
        _, question, answer = last_turns(entry)
        return [{"role": "system", "content": COT_TEACHER_SYSTEM},
                user_message(cot_teacher_text(split_tag(question)[1], answer),
                             [image_data_url(image_path, self.client.settings.image_max_side)])]

    def caption(self, entry: dict, image_path: Path, attempt: int) -> str | None:
        # a new attempt is a new sample of the same request: salted so the cache does not replay a reject
        res = self.client.complete(self.messages(entry, image_path), validate=format_problem,
                                   salt=f"{entry_key(entry)}/attempt-{attempt}")
        # a reply that kept missing the format is still a reply: judged (and counted) as a format reject
        return res.text if res.text is not None else res.invalid_text


# --- the journal -------------------------------------------------------------------------------------

def answer_digest(entry: dict) -> str:
    """The original answer a caption was made for: a journal record of an older build of the same
    (image, question) with another answer is stale and captioned again."""
    return hashlib.sha1(last_turns(entry)[2].encode()).hexdigest()[:12]


JOURNAL_STATUSES = ("ok", "dropped", "failed")


def _caption_record_problem(rec) -> str | None:
    if not (isinstance(rec, dict) and isinstance(rec.get("key"), str) and rec.get("status") in JOURNAL_STATUSES):
        return f"not a caption record (key, status {'/'.join(JOURNAL_STATUSES)})"
    return None


class Journal:
    """Append-only JSON lines, fsync'ed per record. A torn last line (the process was killed while
    writing it) is cut off on load; the last finished record of a key wins."""

    def __init__(self, path: Path):
        self.path = path
        self.done: dict[str, dict] = {}  # accepted or dropped: finished
        self.failed: dict[str, dict] = {}  # every call failed (e.g. server down): tried again on the next run
        self._lock = threading.Lock()
        if path.exists():
            self._load()

    def _load(self):
        for _, rec in read_appended(self.path, _caption_record_problem, "delete that line (its sample is captioned "
                                    "again) and run again", cut_torn_tail=True):
            self._keep(rec)

    def _keep(self, rec: dict):
        if rec["status"] == "failed":
            self.failed[rec["key"]] = rec
        else:
            self.done[rec["key"]] = rec
            self.failed.pop(rec["key"], None)

    def forget(self, key: str):
        """A stale record (made for another answer): the sample is captioned again, and the new record,
        written later in the file, wins on the next load."""
        self.done.pop(key, None)

    def append(self, record: dict):
        line = json.dumps(record, ensure_ascii=False) + "\n"
        with self._lock:
            if record["key"] in self.done:
                return
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(line)
                f.flush()
                os.fsync(f.fileno())
            self._keep(record)


# --- running ------------------------------------------------------------------------------------------

def side_paths(out_path: Path) -> dict[str, Path]:
    stem = out_path.with_suffix("")
    return {"journal": Path(f"{stem}.journal.jsonl"), "report": Path(f"{stem}.report.json")}


def _caption_entry(teacher, entry: dict, image_path: Path, max_attempts: int) -> dict:
    _, _, original = last_turns(entry)
    reasons = []
    for attempt in range(max_attempts):
        caption = teacher.caption(entry, image_path, attempt)
        problem = check_caption(caption, original)
        if problem is None:
            return {"status": "ok", "caption": caption, "attempts": attempt + 1, "rejections": reasons}
        reasons.append(problem)
    status = "failed" if all(r == "call failed" for r in reasons) else "dropped"
    return {"status": status, "attempts": max_attempts, "rejections": reasons}


STOP_AFTER_FAILED = 8  # samples in a row whose every call failed (at least twice the workers)


def run_think(in_path: str | Path, out_path: str | Path, teacher, image_root: str | Path, max_attempts: int = 3,
              workers: int = 1, limit: int | None = None, progress: bool = True) -> dict:
    """Caption every (image, question) of `in_path` once; returns the report (also written beside the output)."""
    t0 = time.time()
    in_path, out_path = Path(in_path), Path(out_path)
    paths = side_paths(out_path)
    # every entry checked before the first call (schema, image present): a bad one is named, not met mid-run
    entries, _ = read_training_file(in_path, image_root, check_images="exists", progress=progress)
    unique: dict[str, tuple[int, dict]] = {}
    for i, e in enumerate(entries):
        try:
            unique.setdefault(entry_key(e), (i, e))
        except (KeyError, TypeError, ValueError, StopIteration) as err:
            raise DataError(in_path, i, f"not a VHM entry with a question and an answer ({err})") from None
    keys = list(unique)[:limit] if limit else list(unique)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    journal = Journal(paths["journal"])
    image_bytes = {k: resolve_train_image(unique[k][1], image_root).stat().st_size for k in keys}
    # made for another answer, or for an image since replaced under its name (another byte size; a record written
    # before image_bytes was journaled is checked by its answer only)
    stale = [k for k in keys if k in journal.done and (journal.done[k].get("answer") != answer_digest(unique[k][1])
                                                       or journal.done[k].get("image_bytes", image_bytes[k]) != image_bytes[k])]
    identity = getattr(teacher, "identity", teacher.name)
    # records written before the teacher was journaled are kept (captioning them again could cost API calls)
    other = [k for k in keys if k in journal.done and k not in stale
             and journal.done[k].get("teacher", identity) != identity]
    for k in stale + other:
        journal.forget(k)
    if stale:
        print(f"{len(stale)} journaled captions were made for other answers or images (the input changed): "
              "captioning them again")
    if other:
        print(f"{len(other)} journaled captions in {journal.path} were made by another teacher than this one "
              f"({identity}): captioning them again")
    todo = [k for k in keys if k not in journal.done]
    for k in todo if hasattr(teacher, "problem") else []:  # the rules teacher: entries of another build
        i, e = unique[k]
        if problem := teacher.problem(e, resolve_train_image(e, image_root)):
            raise DataError(in_path, i, problem)

    def work(key):
        e = unique[key][1]
        rec = _caption_entry(teacher, e, resolve_train_image(e, image_root), max_attempts)
        journal.append({"key": key, "task": task_of(e), "answer": answer_digest(e), "image_bytes": image_bytes[key],
                        "teacher": identity, **rec})
        return rec["status"]

    bar = tqdm(total=len(todo), desc=f"captions ({teacher.name})", disable=not progress, mininterval=1.0)
    pool = ThreadPoolExecutor(max(1, workers))
    # a server that is down or refuses the key fails every sample, each after all its retries: stop after a run
    # of such failures instead of going through the whole file (hours at the paper's size)
    give_up, failed_in_a_row = max(STOP_AFTER_FAILED, 2 * workers), 0
    try:
        for f in as_completed([pool.submit(work, k) for k in todo]):
            failed_in_a_row = failed_in_a_row + 1 if f.result() == "failed" else 0
            bar.update()
            if failed_in_a_row >= give_up:
                client = getattr(teacher, "client", None)
                last = client.failures[-1]["error"] if client and client.failures else "no reply"
                raise LLMConfigError(f"the last {failed_in_a_row} captions failed, every call ({last}): check the "
                                     f"server, the model and the key; the captions made are kept in {journal.path}, "
                                     "and the same command continues from them")
    finally:  # on Ctrl-C: no new calls; the ones under way finish into the journal, from which a rerun resumes
        pool.shutdown(wait=True, cancel_futures=True)
        bar.close()

    out = []
    for k in keys:
        rec = journal.done.get(k)
        if rec and rec["status"] == "ok":
            e = json.loads(json.dumps(unique[k][1]))
            gi, _, _ = last_turns(e)
            e["conversations"][gi]["value"] = rec["caption"]
            out.append(e)
    write_json(out_path, out)
    records = [journal.done.get(k) or journal.failed[k] for k in keys]
    report = think_report(in_path, out_path, teacher, records, max_attempts,
                          resumed=len(keys) - len(todo), seconds=time.time() - t0)
    write_json(paths["report"], report)
    return report


def think_report(in_path, out_path, teacher, records: list[dict], max_attempts: int, resumed: int,
                 seconds: float) -> dict:
    per_task: dict[str, Counter] = {}
    rejections: Counter = Counter()
    for r in records:
        c = per_task.setdefault(r["task"], Counter())
        c["total"] += 1
        c[{"ok": "accepted", "dropped": "dropped", "failed": "failed"}[r["status"]]] += 1
        c["retried"] += r["attempts"] > 1
        rejections.update(r["rejections"])
    report = {
        "input": str(in_path), "output": str(out_path), "teacher": teacher.name, "model": teacher.model,
        "max_attempts": max_attempts, "entries": len(records),
        "accepted": sum(r["status"] == "ok" for r in records), "dropped": sum(r["status"] == "dropped" for r in records),
        "failed": sum(r["status"] == "failed" for r in records),  # every call failed: retried by the next run
        "resumed_from_journal": resumed, "seconds": round(seconds, 1),
        "per_task": {t: {k: c[k] for k in ("total", "accepted", "dropped", "failed", "retried")}
                     for t, c in sorted(per_task.items())},
        "rejections": dict(rejections),
    }
    if isinstance(teacher, OpenAITeacher):
        report["usage"] = teacher.client.usage_report()
    return report


def make_teacher(teacher_cfg: dict, build_dir: str | Path, cache_dir: str | Path | None = None,
                 prices: dict | None = None):
    """(teacher, workers) from the `teacher` section of an LLM config: backend 'rules' or 'openai'."""
    backend = teacher_cfg.get("backend", "rules")
    if backend == "rules":
        return RulesTeacher(build_dir), 1
    if backend != "openai":
        raise DataError("teacher config", None, f"unknown teacher backend {backend!r}: use 'rules' or 'openai'")
    client = LLMClient(teacher_cfg, cache_dir=cache_dir, prices=prices, name="teacher")
    return OpenAITeacher(client), int(teacher_cfg.get("workers", 8))


def stale_captions(think_path: str | Path, captions: list[dict] | None = None) -> str | None:
    """Why a VHM-Instruct-Think file no longer belongs to the instruct file it was made from (rebuilt since,
    with other questions or answers), or None; None too where its report (written by `tinyrs think`) or that
    file cannot be found. `captions`: the file's entries when the caller has read them already."""
    think_path = Path(think_path)
    report = side_paths(think_path)["report"]
    if not report.is_file():
        return None
    source = Path(json.loads(report.read_text()).get("input") or "")
    if not source.is_file():  # the build moved: its instruct file of the same name beside the captions
        source = think_path.parent / source.name
    if not source.is_file():
        return None
    originals = {entry_key(e): last_turns(e)[2] for e in read_json_list(source)}
    captions = read_json_list(think_path) if captions is None else captions
    stale = sum(1 for e in captions if (original := originals.get(entry_key(e))) is None
                or check_caption(last_turns(e)[2], original) is not None)
    if not stale:
        return None
    return (f"{stale} of {len(captions)} captions answer questions that {source} no longer asks, or no longer "
            "with that answer (it was built again since `tinyrs think` made them): run the same tinyrs think "
            "again (its journal keeps every caption that still matches)")


# --- what the paper's run would cost ----------------------------------------------------------------

def approx_text_tokens(text: str) -> float:
    """~4 characters per token: OpenAI's rule of thumb for English text."""
    return len(text) / 4


def openai_image_tokens(width: int, height: int, patch: int = 32, cap: int = 1536, multiplier: float = 1.62) -> int:
    """Image input tokens of gpt-4.1-mini: 32x32 patches, at most 1536, times 1.62 (OpenAI's vision
    guide, 'Calculating costs'); other models use other multipliers."""
    patches = min(cap, -(-width // patch) * -(-height // patch))
    return int(patches * multiplier)


def estimate_teacher_cost(entries: list[dict], captions: list[str], n_samples: int, price: dict,
                          image_size: tuple[int, int] = (512, 512)) -> dict:
    """Cost of captioning `n_samples` with the openai teacher, from the prompt as sent (system prompt,
    question, answer) and caption lengths measured on `captions`, at `price` (USD per 1M tokens)."""
    prompt_text = [COT_TEACHER_SYSTEM + cot_teacher_text(split_tag(last_turns(e)[1])[1], last_turns(e)[2])
                   for e in entries]
    prompt = sum(map(approx_text_tokens, prompt_text)) / len(prompt_text) + openai_image_tokens(*image_size)
    completion = sum(map(approx_text_tokens, captions)) / len(captions)
    cost_in = n_samples * prompt * price["input"] / 1e6
    cost_out = n_samples * completion * price["output"] / 1e6
    return {"samples": n_samples, "prompt_tokens_per_sample": round(prompt),
            "completion_tokens_per_sample": round(completion), "input_usd": round(cost_in, 2),
            "output_usd": round(cost_out, 2), "total_usd": round(cost_in + cost_out, 2),
            "price_per_million": {"input": price["input"], "output": price["output"]},
            "price_source": price.get("source", "")}


def caption_examples(in_path: str | Path, out_path: str | Path, image_root: str | Path, tasks=("VQA", "VG", "CLS", "IT"),
                     skip: int = 0) -> list[dict]:
    """One accepted caption per task (the `skip`-th of each), beside its original question and answer; `image` is
    relative to `image_root` (the rows are written to a committed CSV)."""
    originals = {entry_key(e): e for e in read_json_list(in_path)}
    seen: dict[str, int] = {}
    rows = []
    for e in read_json_list(out_path):
        task = task_of(e)
        if task not in tasks or seen.get(task, 0) > skip or any(r["task"] == task for r in rows):
            continue
        seen[task] = seen.get(task, 0) + 1
        if seen[task] <= skip:
            continue
        _, question, caption = last_turns(e)
        orig = originals[entry_key(e)]
        image = resolve_train_image(e, image_root).relative_to(image_root).as_posix()
        rows.append({"task": task, "image": image, "question": split_tag(question)[1],
                     "original": last_turns(orig)[2], "caption": caption})
    return sorted(rows, key=lambda r: list(tasks).index(r["task"]))
