"""The 12 benchmarks of the paper's Table I: file name, task tag, capability group, metric.

The real files live under a data root as `<file>` with images in `<stem>/`; the toy build
writes the same layout, so one code path reads both."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Benchmark:
    name: str  # as in Table I
    file: str  # the released evaluation file name
    tag: str | None  # task tag the harness puts before the question (None: LHRS-Bench)
    group: str  # capability group of Table I
    metric: str  # "accuracy", "acc@0.5" or "judge" (a 0..1 grade from the LLM judge)
    rule: str = "short"  # how compat reads an answer (scoring.compat_answer): "short", or LHRS-Bench's "choice"

    @property
    def stem(self) -> str:
        return self.file[:-5]


BENCHMARKS = [
    Benchmark("AID", "cls_AID.json", "CLS", "CLS", "accuracy"),
    Benchmark("METER-ML", "cls_METER_ML.json", "CLS", "CLS", "accuracy"),
    Benchmark("NWPU", "cls_NWPU_RESISC45.json", "CLS", "CLS", "accuracy"),
    Benchmark("SIRI-WHU", "cls_SIRI_WHU.json", "CLS", "CLS", "accuracy"),
    Benchmark("WHU-RS19", "cls_WHU_RS19.json", "CLS", "CLS", "accuracy"),
    Benchmark("HR-Compare", "RSVQA_HR-comp_RSVQA.json", "VQA", "VQA", "accuracy"),
    Benchmark("HR-Presence", "RSVQA_HR-presence_RSVQA.json", "VQA", "VQA", "accuracy"),
    Benchmark("LR-Compare", "RSVQA_LR-comp_RSVQA.json", "VQA", "VQA", "accuracy"),
    Benchmark("LR-Presence", "RSVQA_LR-presence_RSVQA.json", "VQA", "VQA", "accuracy"),
    Benchmark("LR-Rural", "RSVQA_LR-rural_urban_RSVQA.json", "VQA", "VQA", "accuracy"),
    Benchmark("DIOR-RSVG", "VG_DOIR_RSVG_test.json", "VG", "Ground.", "acc@0.5"),  # "DOIR" (sic), the real name
    Benchmark("LHRS-Bench", "LHRS-Bench.json", None, "Gen. Know.", "accuracy", "choice"),
]
# Open-ended QA, graded by the judge (the paper evaluates open-ended answers with GPT-4.1-mini but names no
# benchmark file; this one is ours: {IT} questions whose answers are descriptions). Not part of Table I.
OPEN_ENDED = Benchmark("Open-ended", "open_ended_QA.json", "IT", "Open-ended", "judge")
ALL_BENCHMARKS = BENCHMARKS + [OPEN_ENDED]
BY_FILE = {b.file: b for b in ALL_BENCHMARKS}
BY_NAME = {b.name: b for b in ALL_BENCHMARKS}
EVAL_FILES = [b.file for b in BENCHMARKS]  # Table I's twelve
ALL_EVAL_FILES = [b.file for b in ALL_BENCHMARKS]


# How the released harness asks a model (eval/src/evaluation/lm_prediction_call.py, chosen there by the
# model's name): "tinyrs", a TinyRS model, gets the task tag and answers boxes as [[x1, y1, x2, y2]];
# "qwen2vl-instruct", a Qwen2-VL-Instruct model (Table II's untrained "none" row), gets the question alone,
# and for grounding a request to reason, then box the object named between Qwen2-VL's reference tokens.
ASKING = ("tinyrs", "qwen2vl-instruct")
INSTRUCT_GROUNDING = ("Make your chain of thought reasoning and then output the bounding box of the following object "
                      "in the image. <|object_ref_start|> {} <|object_ref_end|>")
TINYRS_NAMES = ("TinyRS", "SFT", "COT")  # the released harness's names of its own models, checked first


def asking_style(model) -> str:
    """The released harness's choice for a model, by its path or hub id: "tinyrs" when it names TinyRS / SFT /
    COT, "qwen2vl-instruct" when it names Instruct (Qwen/Qwen2-VL-2B-Instruct, a local copy of it), else
    "tinyrs". A checkpoint tinyrs trained (a run folder's `checkpoint`, beside run.json) learned the tags: "tinyrs".
    Left out here: the harness also sends names with "EX" the Instruct way (an in-house name of theirs), and
    asks any other Qwen2-VL (a base model, not in the paper) a third way, with Qwen2-VL's own grounding prompt."""
    name = str(model)
    if any(k in name for k in TINYRS_NAMES) or (Path(name).parent / "run.json").is_file() or "Instruct" not in name:
        return "tinyrs"
    return "qwen2vl-instruct"


def tagged_question(question: str, tag: str | None, ask: str = "tinyrs") -> str:
    """The question as the released harness asks it: '{CLS} question' (no tag for LHRS-Bench); for a
    Qwen2-VL-Instruct model, the question alone (grounding: `INSTRUCT_GROUNDING`). The harness's joins also
    leave a space at either end of some questions ('{VQA} q '); those incidental spaces are not reproduced."""
    if ask not in ASKING:
        raise ValueError(f"ask must be one of {ASKING}, not {ask!r}")
    q = question.replace("<image>", "").strip()
    if ask == "qwen2vl-instruct":
        return INSTRUCT_GROUNDING.format(q) if tag == "VG" else q
    return f"{{{tag}}} {q}" if tag else q


def user_prompt(question: str, tag: str | None, system: str | None = None, ask: str = "tinyrs") -> list[dict]:
    """Chat messages for one benchmark question: image first, then the (tagged) question."""
    msgs = [{"role": "system", "content": [{"type": "text", "text": system}]}] if system else []
    msgs.append({"role": "user", "content": [{"type": "image"},
                                             {"type": "text", "text": tagged_question(question, tag, ask)}]})
    return msgs
