"""The toy profile's offline judge: grades an open-ended answer against the world's ground truth.

A documented stand-in for the paper's GPT-4.1-mini judge: it reads the scene of the image
(class, objects, counts, colours) from the build's scenes.jsonl and checks what the answer
claims. Like the LLM judge it returns a 0..10 grade divided by 10, or None when it cannot
grade (the image is not part of the build).

Grade = 10 x (0.3 scene class named, and no other class described as the scene
              + 0.3 share of present object kinds named
              + 0.2 share of stated counts that are right + 0.2 no invented objects).

`OverlapJudge` is a second evaluator built differently (an F1 over stated facts), the toy's
counterpart of Table VI's second judge.
"""
from __future__ import annotations

import re
from pathlib import Path

from ..data.vhm import read_jsonl
from .language import NUMBER_WORDS, SCENE_PHRASES, number_word
from .scene import Scene
from .spec import OBJECTS, SCENE_CLASSES

CLASS_WORDS = {c: [c] for c in SCENE_CLASSES}
CLASS_WORDS.update({"harbor": ["harbor", "harbour", "port"], "parking lot": ["parking lot", "parking"],
                    "storage tanks": ["storage tank", "tank farm"], "residential": ["residential", "houses"],
                    "farmland": ["farmland", "fields", "cropland", "agricultur"], "lake": ["lake", "pond"],
                    "beach": ["beach", "coast"], "industrial": ["industrial", "warehouse"]})
NEGATIONS = ("no", "not", "without", "none", "neither", "nor", "zero")


class SceneIndex:
    """Scenes of a toy build, found by image path (absolute, relative to the build) or file name."""

    def __init__(self, build_dir: str | Path):
        self.build_dir = Path(build_dir).resolve()
        rows = read_jsonl(self.build_dir / "scenes.jsonl")
        self.by_path = {r["path"]: r for r in rows}
        self.by_name = {Path(r["path"]).name: r for r in rows}

    def get(self, image) -> Scene | None:
        p = Path(str(image))
        row = None
        try:
            row = self.by_path.get(str(p.resolve().relative_to(self.build_dir)))
        except ValueError:
            pass
        row = row or self.by_path.get(str(image)) or self.by_name.get(p.name)
        return Scene.from_dict({k: v for k, v in row.items() if k not in ("path", "split", "source")}) if row else None


def _mentions(text: str, word: str) -> list[int]:
    """Word positions (in tokens) where `word` or its plural starts."""
    tokens = re.findall(r"[a-z0-9]+", text)
    parts = word.split()
    hits = []
    for i in range(len(tokens) - len(parts) + 1):
        window = tokens[i:i + len(parts)]
        if window[:-1] == parts[:-1] and window[-1].startswith(parts[-1][:-1] if len(parts[-1]) > 4 else parts[-1]):
            hits.append(i)
    return hits


def _affirmed(text: str, tokens: list[str], kind: str) -> bool:
    """The answer says a `kind` is there: a mention not preceded by a negation ("no ships") within 4 words."""
    return any(not any(t in NEGATIONS for t in tokens[max(0, i - 4):i]) for i in _mentions(text, kind))


def _number_before(tokens: list[str], i: int) -> int | None:
    for t in tokens[max(0, i - 3):i][::-1]:
        if t.isdigit():
            return int(t)
        if t in NUMBER_WORDS:
            return NUMBER_WORDS.index(t)
    return None


def grade_answer(scene: Scene, answer: str) -> float:
    """0..10 grade of an open-ended answer about `scene` (see the module docstring)."""
    text = (answer or "").lower()
    if not text.strip():
        return 0.0
    tokens = re.findall(r"[a-z0-9]+", text)
    class_named = any(_mentions(text, w) or w in text for w in CLASS_WORDS[scene.scene_class])
    # naming the wrong scene ("a dense forest" for farmland) loses the class credit, whatever else is said
    wrong_scene = any(SCENE_PHRASES[c] in text for c in SCENE_CLASSES if c != scene.scene_class)
    class_named = class_named and not wrong_scene
    present = scene.kinds_present()
    named = [k for k in present if _mentions(text, k)]
    recall = len(named) / len(present) if present else 1.0
    stated = right = 0
    for kind in named:
        for i in _mentions(text, kind):
            n = _number_before(tokens, i)
            if n is not None:
                stated += 1
                right += n == scene.count(kind)
    count_score = right / stated if stated else 0.5  # no number stated: neither credit nor blame
    invented = sum(_affirmed(text, tokens, kind) for kind in OBJECTS if kind not in present)
    faithful = max(0.0, 1.0 - invented / 2)
    return round(10 * (0.3 * class_named + 0.3 * recall + 0.2 * count_score + 0.2 * faithful), 3)


class RulesJudge:
    """Offline judge for the toy profile (see the module docstring)."""

    name = "rules"

    def __init__(self, build_dir: str | Path):
        self.scenes = SceneIndex(build_dir)
        self.failures: list[dict] = []

    def score(self, question: str, answer: str, image) -> float | None:
        scene = self.scenes.get(image)
        if scene is None:
            self.failures.append({"question": question[:200], "error": f"no scene for image {image}"})
            return None
        return self.grade(scene, answer) / 10.0

    @staticmethod
    def grade(scene: Scene, answer: str) -> float:
        return grade_answer(scene, answer)


def overlap_grade(scene: Scene, answer: str) -> float:
    """A second, independently designed rubric (Table VI's other evaluator): 10 x the F1 between the facts
    an answer states and the scene's facts. Facts: the scene class, the setting (rural / urban) and each
    object kind present. Stating a wrong class, the wrong setting or an absent object costs precision;
    leaving facts out costs recall. Counts and colours are not graded (the first judge grades counts)."""
    text = (answer or "").lower()
    if not text.strip():
        return 0.0
    tokens = re.findall(r"[a-z0-9]+", text)
    truth = {("class", scene.scene_class), ("setting", scene.setting)} | {("kind", k) for k in scene.kinds_present()}
    stated = {("class", c) for c in SCENE_CLASSES if any(_mentions(text, w) or w in text for w in CLASS_WORDS[c])}
    stated |= {("setting", s) for s in ("rural", "urban") if s in tokens}
    stated |= {("kind", kind) for kind in OBJECTS if _affirmed(text, tokens, kind)}
    if not stated:
        return 0.0
    right = len(stated & truth)
    precision, recall = right / len(stated), right / len(truth)
    return round(10 * (2 * precision * recall / (precision + recall) if right else 0.0), 3)


class OverlapJudge(RulesJudge):
    """The toy profile's second evaluator (Table VI): the same scene lookup, the F1 rubric of `overlap_grade`."""

    name = "overlap"

    @staticmethod
    def grade(scene: Scene, answer: str) -> float:
        return overlap_grade(scene, answer)


def damaged_answers(scene: Scene, truth: str) -> dict[str, str]:
    """A true answer and versions of it with one kind of error each, to show what the judge rewards."""
    other = next(c for c in SCENE_CLASSES if c != scene.scene_class and not set(CLASS_WORDS[c]) & set(CLASS_WORDS[scene.scene_class]))
    absent = [k for k in OBJECTS if scene.count(k) == 0]
    variants = {"the true answer": truth,
                "wrong scene": truth.replace(SCENE_PHRASES[scene.scene_class], SCENE_PHRASES[other])}
    for kind in scene.kinds_present():
        n = scene.count(kind)
        wrong = number_word(n + 2)
        damaged = re.sub(rf"\b{NUMBER_WORDS[n]} {OBJECTS[kind]['plural'] if n != 1 else kind}\b",
                         f"{wrong} {OBJECTS[kind]['plural']}", truth, count=1)
        if damaged != truth:
            variants["wrong count"] = damaged
            break
    if absent:
        variants["invented objects"] = truth + f" There are also three {OBJECTS[absent[0]]['plural']}."
    variants["empty"] = ""
    return variants


def evaluator_agreement(build_dir: str | Path, n: int = 40) -> list[dict]:
    """Both toy evaluators on the same answers: the open-ended benchmark's reference answers and their
    damaged versions (`damaged_answers`); the mean grade of each kind of answer under each judge."""
    from ..data.vhm import read_json_list, resolve_eval_image

    build_dir = Path(build_dir)
    path = build_dir / "eval" / "open_ended_QA.json"
    judges = {"rules": RulesJudge(build_dir), "overlap": OverlapJudge(build_dir)}
    grades: dict[str, dict[str, list[float]]] = {}
    for e in read_json_list(path)[:n]:
        image = resolve_eval_image(e, path)
        scene = judges["rules"].scenes.get(image)
        for kind, answer in damaged_answers(scene, e["conversations"][-1]["value"]).items():
            for name, judge in judges.items():
                grades.setdefault(kind, {}).setdefault(name, []).append(judge.score("", answer, image))
    return [{"answer": kind, "n": len(g["rules"]), **{f"{name} judge": sum(v) / len(v) for name, v in g.items()}}
            for kind, g in grades.items()]
