"""VHM / LLaVA JSON and the evaluation files: reading, validating, writing.

Training entries:  {"image", "source_dataset", "conversations": [{"from": "human", "value": "<image>\\n{TAG} ..."},
                    {"from": "gpt", "value": "..."}], "id"?}
Evaluation entries: {"image", "image_path"?, "conversations": [human, gpt], "size"?: [h, w], "type"?: [...]}

Every problem is reported as `<file>: entry <index>: <problem>`; with `skip_invalid`, bad
entries are skipped and counted by kind instead, and nothing else is lost.
"""
from __future__ import annotations

import json
import os
import re
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from ..boxes import parse_box, parse_pixel_box
from ..evaluation.benchmarks import BY_FILE
from .images import ImageLoadError, image_size, load_rgb

TASK_TAGS = {"{CLS}": "CLS", "{VQA}": "VQA", "{VG}": "VG", "{IDK}": "IDK", "{IT}": "IT"}
TASKS = list(TASK_TAGS.values())
IMAGE_TOKEN = "<image>"

# Problem kinds (the keys of a skip report).
MISSING_IMAGE, CORRUPT_IMAGE, SCHEMA, BOX_OUTSIDE, EMPTY = (
    "missing image", "corrupt image", "wrong schema", "box outside the image", "empty conversation")


class DataError(ValueError):
    """Bad input: names the file, the entry index (when there is one) and the problem."""

    def __init__(self, file, index: int | None, problem: str, kind: str = SCHEMA):
        self.file, self.index, self.problem, self.kind = str(file), index, problem, kind
        where = f"{file}: entry {index}" if index is not None else str(file)
        super().__init__(f"{where}: {problem}")


# --- reading and writing -----------------------------------------------------------------------

_UMASK = os.umask(0)
os.umask(_UMASK)


def read_json_list(path: str | Path) -> list[dict]:
    path = Path(path)
    if not path.is_file():
        raise DataError(path, None, "file not found")
    try:
        with open(path, encoding="utf-8-sig") as f:  # -sig: a byte-order mark some editors write is not an error
            data = json.load(f)
    except json.JSONDecodeError as e:
        raise DataError(path, None, f"not valid JSON ({e})") from e
    except UnicodeDecodeError as e:
        raise DataError(path, None, f"not UTF-8 text (byte {e.object[e.start]:#04x} at offset {e.start}); "
                        "save it as UTF-8") from e
    if not isinstance(data, list):
        raise DataError(path, None, f"the top level must be a JSON list of entries, not {type(data).__name__}")
    return data


def read_appended(path: str | Path, check, fix: str, cut_torn_tail: bool = False,
                  torn: list | None = None) -> list[tuple[int, dict]]:
    """(line number, record) of an append-only JSON-lines file (predictions, the caption journal). A run killed
    mid-write leaves a torn last line (no newline, not JSON): not a record, and cut off with `cut_torn_tail`;
    a last record that is whole but lacks its newline (a file written by hand) is one, and then gets its
    newline, so appended records start on a line of their own. Any other line that is not JSON, or that
    `check(record)` finds a problem with (it returns a text), is an error naming the file and the line, and
    `fix` says what to do. A file whose torn tail was left out is added to `torn` when given."""
    path = Path(path)
    if not path.exists():
        return []
    data, records, good = path.read_bytes(), [], 0
    for n, line in enumerate(data.splitlines(keepends=True), 1):
        last = not line.endswith(b"\n")  # only the last line can lack its newline
        if not line.strip():
            good += len(line)
            continue
        try:
            rec = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            if last:
                break  # torn
            raise DataError(path, None, f"line {n}: not JSON ({e}); {fix}") from None
        if (problem := check(rec)) and last:
            break  # torn in a way that still parses: not a record either
        if problem:
            raise DataError(path, None, f"line {n}: {problem}; {fix}")
        good += len(line)
        records.append((n, rec))
    has_torn_tail = good < len(data)
    if torn is not None and has_torn_tail:
        torn.append(path)
    if cut_torn_tail and has_torn_tail:
        with open(path, "r+b") as f:
            f.truncate(good)
    if cut_torn_tail and records and not data[:good].endswith(b"\n"):
        with open(path, "ab") as f:
            f.write(b"\n")
    return records


def write_json(path: str | Path, data, default=None) -> None:
    """Write atomically (temporary file + rename): an interrupted write never leaves half a file.
    `default` as in `json.dump` (e.g. `str` for paths)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes the file private; a build folder is shared like any other
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, ensure_ascii=False, indent=1, default=default)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_jsonl(path: str | Path, rows) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    os.replace(tmp, path)


def read_jsonl(path: str | Path) -> list[dict]:
    """The records of a JSON-lines file written whole (a build's scenes and question metadata); a line that is
    not JSON is an error naming the file and the line."""
    rows = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise DataError(path, None, f"line {n}: not JSON ({e}); build the data again") from None
    return rows


# --- accessors -------------------------------------------------------------------------------

def human_text(entry: dict) -> str:
    return next(t["value"] for t in entry["conversations"] if t.get("from") == "human")


def answer_text(entry: dict) -> str:
    return next(t["value"] for t in entry["conversations"] if t.get("from") == "gpt")


def strip_image_token(text: str) -> str:
    return text.replace(IMAGE_TOKEN, "").strip()


def split_tag(question: str) -> tuple[str | None, str]:
    """'<image>\\n{VQA} Is there a ship?' -> ('VQA', 'Is there a ship?')."""
    q = strip_image_token(question)
    for tag, task in TASK_TAGS.items():
        if q.startswith(tag):
            return task, q[len(tag):].strip()
    return None, q


def task_of(entry: dict) -> str:
    """The VHM task tag of a training entry ('CLS', 'VQA', 'VG', 'IDK', 'IT'), or 'other'."""
    return split_tag(human_text(entry))[0] or "other"


def make_entry(image: str, source_dataset: str, question: str, answer: str, task: str | None = None,
               entry_id: str | None = None) -> dict:
    """A training entry in VHM's layout; the task tag prefixes the question after <image>."""
    tag = f"{{{task}}} " if task and task in TASKS else ""
    entry = {"id": entry_id, "image": image, "source_dataset": source_dataset,
             "conversations": [{"from": "human", "value": f"{IMAGE_TOKEN}\n{tag}{question}"},
                               {"from": "gpt", "value": answer}]}
    if entry_id is None:
        del entry["id"]
    return entry


def make_eval_entry(image: str, question: str, answer: str, size: tuple[int, int] | None = None,
                    qtype: list[str] | None = None) -> dict:
    """An evaluation entry as the released harness reads it (no task tag: the harness adds it)."""
    entry = {"image": image, "conversations": [{"from": "human", "value": f"{IMAGE_TOKEN}\n{question}"},
                                               {"from": "gpt", "value": answer}]}
    if size is not None:
        entry["size"] = [int(size[0]), int(size[1])]  # [h, w]
    if qtype is not None:
        entry["type"] = list(qtype)
    return entry


# --- image paths ------------------------------------------------------------------------------

def resolve_train_image(entry: dict, image_root: str | Path) -> Path:
    """VHM joins <image root>/<source_dataset>/<image>; a plain <image root>/<image> also works."""
    root = Path(image_root)
    image = str(entry["image"])
    candidates = []
    if entry.get("source_dataset"):
        candidates.append(root / str(entry["source_dataset"]) / image)
    candidates.append(root / image)
    return next((c for c in candidates if c.exists()), candidates[0])


def resolve_eval_image(entry: dict, json_path: str | Path) -> Path:
    """The released harness's rule: no image_path -> <json dir>/<json stem>/<image>;
    an absolute image_path -> image_path/<image>; a relative one -> <json dir>/image_path/<image>."""
    json_path = Path(json_path)
    image = str(entry["image"])
    if "image_path" not in entry:
        return json_path.parent / json_path.stem / image
    base = Path(entry["image_path"])
    return (base if base.is_absolute() else json_path.parent / base) / image


# --- validation ---------------------------------------------------------------------------------

def is_image_size(size) -> bool:
    """[height, width] in whole pixels, both positive (an evaluation entry's and a grounding prediction's `size`)."""
    return isinstance(size, list) and len(size) == 2 and all(type(v) is int and v > 0 for v in size)


def _leaves_folder(*parts) -> bool:
    return any(isinstance(x, str) and (Path(x).is_absolute() or ".." in Path(x).parts) for x in parts)


def schema_problems(entry, kind: str = "train") -> list[tuple[str, str]]:
    """(problem kind, message) pairs for one entry's structure; [] when it is well formed."""
    if not isinstance(entry, dict):
        return [(SCHEMA, f"an entry must be an object, not {type(entry).__name__}")]
    problems = []
    image = entry.get("image")
    if not isinstance(image, str) or not image.strip():
        problems.append((SCHEMA, "missing or empty 'image'"))
    elif kind == "train" and _leaves_folder(image, entry.get("source_dataset")):
        # an image outside the image folder could be a benchmark image; the build's disjointness check
        # would not see it
        problems.append((SCHEMA, f"image {image!r} leaves the image folder (absolute, or with '..')"))
    conv = entry.get("conversations")
    if not isinstance(conv, list):
        return problems + [(SCHEMA, "missing 'conversations' list")]
    if not conv:
        return problems + [(EMPTY, "'conversations' is empty")]
    for i, turn in enumerate(conv):
        if not isinstance(turn, dict) or turn.get("from") not in ("human", "gpt") or not isinstance(turn.get("value"), str):
            problems.append((SCHEMA, f"turn {i} must be {{'from': 'human'|'gpt', 'value': str}}"))
    if problems:
        return problems
    if conv[0]["from"] != "human":
        problems.append((SCHEMA, "the first turn must be from 'human'"))
    elif not any(t["from"] == "gpt" for t in conv):
        problems.append((EMPTY, "no 'gpt' answer"))
    elif any(t["from"] != ("human", "gpt")[i % 2] for i, t in enumerate(conv)) or conv[-1]["from"] != "gpt":
        problems.append((SCHEMA, "turns must alternate human, gpt, human, gpt, ... and end with a 'gpt' answer, got "
                                 + ", ".join(t["from"] for t in conv)))
    elif any(not t["value"].strip() for t in conv):
        problems.append((EMPTY, "a turn has an empty value"))
    elif not strip_image_token(conv[0]["value"]):
        problems.append((EMPTY, "the question is empty"))
    if kind == "eval":
        size = entry.get("size")
        if size is not None and not is_image_size(size):
            problems.append((SCHEMA, f"'size' must be [height, width] in pixels, got {size!r}"))
        qtype = entry.get("type")
        if qtype is not None and not (isinstance(qtype, list) and all(isinstance(t, str) for t in qtype)):
            problems.append((SCHEMA, f"'type' must be a list of strings, got {qtype!r}"))
    return problems


def box_problems(entry: dict, kind: str, size_wh: tuple[int, int] | None,
                 grounding: bool = False) -> list[tuple[str, str]]:
    """Grounding answers must lie inside the image: 0..1000 for training (every answer to a {VG} question),
    inside the image's pixels for evaluation files. A `grounding` benchmark file (DIOR-RSVG) must give every
    entry a pixel box and the image's [height, width], which its scoring needs."""
    if kind == "train":
        conv = entry["conversations"]
        for k in range(0, len(conv) - 1, 2):
            if split_tag(conv[k]["value"])[0] != "VG":
                continue
            answer, turn = conv[k + 1]["value"], f"turn {k + 1}: " if len(conv) > 2 else ""
            box = parse_box(answer)
            if box is None:
                return [(SCHEMA, f"{turn}a {{VG}} answer must contain [[x1, y1, x2, y2]] in whole numbers 0..1000, "
                                 f"got {answer[:80]!r}")]
            x1, y1, x2, y2 = box
            if not (0 <= x1 < x2 <= 1000 and 0 <= y1 < y2 <= 1000):
                return [(BOX_OUTSIDE, f"{turn}box {box} is not inside the 0..1000 frame with x1 < x2 and y1 < y2")]
        return []
    answer = answer_text(entry)
    box = parse_pixel_box(answer) if answer.lstrip().startswith("[") else None
    if grounding:
        if box is None:
            return [(SCHEMA, f"a grounding answer must be a pixel box [x1, y1, x2, y2], got {answer[:80]!r}")]
        if entry.get("size") is None:
            return [(SCHEMA, "a grounding entry needs 'size': [height, width] of its image (the box is scored in it)")]
    if box is None or size_wh is None:
        return []
    w, h = size_wh
    x1, y1, x2, y2 = box
    if not (0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h):
        order = "" if x1 < x2 and y1 < y2 else " with x1 < x2 and y1 < y2"
        return [(BOX_OUTSIDE, f"box {box} is not inside the {w}x{h} image{order}")]
    return []


@dataclass
class ValidationReport:
    file: str
    total: int = 0
    valid: int = 0
    skipped: Counter = field(default_factory=Counter)
    examples: dict = field(default_factory=dict)  # problem kind -> first message

    def summary(self) -> str:
        if not self.skipped:
            return f"{self.file}: {self.valid}/{self.total} entries valid"
        kinds = ", ".join(f"{n} {k}" for k, n in self.skipped.most_common())
        return f"{self.file}: {self.valid}/{self.total} entries valid; skipped {kinds}"


def validate_entries(entries: list, file: str | Path, kind: str = "train", image_root: str | Path | None = None,
                     check_images: str = "decode", skip_invalid: bool = False,
                     progress: bool = True) -> tuple[list[dict], ValidationReport]:
    """Check every entry (schema, image, boxes). Returns (valid entries, report).

    kind: 'train' (images under `image_root`) or 'eval' (images resolved from `file`).
    check_images: 'decode' (open every image fully), 'exists', or 'none'.
    Without `skip_invalid` the first bad entry raises DataError naming file, index and problem.
    """
    report = ValidationReport(file=str(file), total=len(entries))
    bench = BY_FILE.get(Path(file).name) if kind == "eval" else None
    if kind == "eval" and not entries:
        raise DataError(file, None, "no entries: an evaluation file is scored whole, and an empty one scores nothing")
    grounding = getattr(bench, "metric", None) == "acc@0.5"
    valid = []
    image_cache: dict[Path, tuple[str, str] | tuple[int, int]] = {}
    for index, entry in enumerate(tqdm(entries, desc=f"checking {Path(file).name}", disable=not progress,
                                       mininterval=1.0)):
        problems = schema_problems(entry, kind)
        size_wh = None
        if not problems and check_images != "none":
            path = resolve_train_image(entry, image_root) if kind == "train" else resolve_eval_image(entry, file)
            if path not in image_cache:
                image_cache[path] = _check_image(path, check_images)
            status = image_cache[path]
            if isinstance(status[0], str):
                problems.append(status)
            else:
                size_wh = status
        if not problems and kind == "eval" and entry.get("size"):
            declared = (entry["size"][1], entry["size"][0])
            if size_wh is not None and size_wh != declared:
                problems.append((SCHEMA, f"'size' {entry['size']} is [height, width] = {declared[1]}x{declared[0]}, "
                                         f"but the image is {size_wh[1]}x{size_wh[0]} (height x width)"))
            size_wh = size_wh or declared
        if not problems:
            problems = box_problems(entry, kind, size_wh, grounding)
        if not problems and getattr(bench, "rule", None) == "choice":
            problems = choice_problems(entry)
        if problems:
            pkind, message = problems[0]
            if not skip_invalid:
                raise DataError(file, index, message, pkind)
            report.skipped[pkind] += 1
            report.examples.setdefault(pkind, f"entry {index}: {message}")
            continue
        valid.append(entry)
    report.valid = len(valid)
    return valid, report


def choice_problems(entry: dict) -> list[tuple[str, str]]:
    """A multiple-choice truth (LHRS-Bench) must start with an option letter ("B", "B.", "B)", "B. building"), one
    of the question's options ("A. ...", "(B) ...") where it lists them: a word there is never matched by a
    letter answer."""
    letter = re.match(r"\s*\(?([A-Za-z])(?:[.)\s]|$)", answer_text(entry))
    options = re.findall(r"(?:^|\s)\(?([A-Z])[.)]\s", human_text(entry))
    if not letter or (options and letter.group(1).upper() not in options):
        listed = f"one of the options {', '.join(options)}" if options else "an option letter"
        return [(SCHEMA, f"answer {answer_text(entry)!r} is not {listed}")]
    return []


def _check_image(path: Path, mode: str):
    if not path.is_file():
        return (MISSING_IMAGE, f"image {'path is a folder' if path.is_dir() else 'not found'}: {path}")
    try:
        return load_rgb(path).size if mode == "decode" else image_size(path)
    except ImageLoadError as e:
        return (CORRUPT_IMAGE, str(e))


def read_training_file(path: str | Path, image_root: str | Path, check_images: str = "decode",
                       skip_invalid: bool = False, progress: bool = True) -> tuple[list[dict], ValidationReport]:
    return validate_entries(read_json_list(path), path, "train", image_root, check_images, skip_invalid, progress)


def read_eval_file(path: str | Path, check_images: str = "exists", skip_invalid: bool = False,
                   progress: bool = True) -> tuple[list[dict], ValidationReport]:
    return validate_entries(read_json_list(path), path, "eval", None, check_images, skip_invalid, progress)
