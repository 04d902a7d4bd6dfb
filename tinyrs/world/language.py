"""Words about a scene: captions (stage P), VHM-style instructions for every task, and the
multiple-choice knowledge questions of the toy LHRS-Bench.

Every question is generated from the scene's exact metadata, so every answer is true by
construction. Each `QA` also carries the `evidence` it was derived from, which the rule-based
CoT teacher reads later.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..boxes import format_box, to_normalized
from .scene import Scene, WorldObject
from .spec import (COLOR_RGB, GSD_LABELS, LANDCOVER_NAMES, MODALITIES, OBJECT_KINDS, OBJECTS, POSITIONS, SCENES,
                   gsd_label, plural)

NUMBER_WORDS = ["no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve"]
ALL_POSITIONS = [p for row in POSITIONS for p in row]
LETTERS = "ABCD"

# Open-ended answers (grounding aside) are the ones an LLM judge grades; the rest are closed.
CLOSED, GROUNDING, OPEN = "closed", "grounding", "open"


@dataclass
class QA:
    task: str  # CLS, VQA, VG, IDK, IT, or MC (toy LHRS-Bench, untagged)
    qa_type: str  # e.g. presence, comparison, rural_urban, counting, grounding, color, description, ...
    question: str  # without the task tag and without <image>
    answer: str
    answer_type: str = CLOSED
    evidence: dict = field(default_factory=dict)


def number_word(n: int) -> str:
    return NUMBER_WORDS[n] if 0 <= n < len(NUMBER_WORDS) else str(n)


def article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def at_position(pos: str) -> str:
    if pos in ("left", "right"):
        return f"on the {pos}"
    if pos == "center":
        return "in the center"
    return f"at the {pos}"


def count_phrase(n: int, kind: str) -> str:
    return f"{number_word(n)} {plural(kind, n)}"


def join_words(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


SCENE_PHRASES = {
    "forest": "a dense forest", "farmland": "farmland divided into fields", "meadow": "an open meadow",
    "desert": "a sandy desert with dunes", "river": "a river winding through green land",
    "lake": "a lake surrounded by vegetation", "beach": "a beach along the coast",
    "residential": "a residential area with houses and streets", "commercial": "a commercial district",
    "industrial": "an industrial area", "airport": "an airport", "harbor": "a harbor",
    "parking lot": "a parking lot", "storage tanks": "a storage tank farm",
}


# --- referring to things ----------------------------------------------------------------------

def referring_expressions(scene: Scene, obj: WorldObject) -> list[str]:
    """All descriptions that pick out `obj` and nothing else in the scene."""
    same = scene.of_kind(obj.kind)
    pos = scene.position(obj)
    refs = []
    if len(same) == 1:
        refs.append(f"the {obj.kind}")
    if sum(o.color == obj.color for o in same) == 1:
        refs.append(f"the {obj.color} {obj.kind}")
    if sum(scene.position(o) == pos for o in same) == 1:
        refs.append(f"the {obj.kind} {at_position(pos)}")
    if sum(o.color == obj.color and scene.position(o) == pos for o in same) == 1:
        refs.append(f"the {obj.color} {obj.kind} {at_position(pos)}")
    others = [o for o in same if o is not obj]
    if others:
        if all(obj.center[0] + 2 < o.center[0] for o in others):
            refs.append(f"the leftmost {obj.kind}")
        if all(obj.center[0] > o.center[0] + 2 for o in others):
            refs.append(f"the rightmost {obj.kind}")
        if all(obj.area > 1.3 * o.area for o in others):
            refs.append(f"the largest {obj.kind}")
    return refs


def unique_objects(scene: Scene) -> list[tuple[WorldObject, list[str]]]:
    return [(o, refs) for o in scene.objects if (refs := referring_expressions(scene, o))]


# --- descriptions -----------------------------------------------------------------------------

def objects_sentence(scene: Scene, rng: np.random.Generator, detailed: bool = False) -> str:
    kinds = scene.kinds_present()
    if not kinds:
        return rng.choice(["No vehicles, buildings or other objects are visible.",
                           "There are no distinct objects in the scene."])
    parts = []
    for kind in kinds:
        objs = scene.of_kind(kind)
        if detailed:  # each object with colour and place; long lists end with "and N more"
            descr = [f"{article(o.color)} {o.color} {kind} {at_position(scene.position(o))}" for o in objs[:4]]
            if len(objs) > 4:
                descr.append(f"{number_word(len(objs) - 4)} more")
            parts.append(f"{count_phrase(len(objs), kind)} ({join_words(descr)})")
        else:
            colors = sorted({o.color for o in objs})
            parts.append(f"{count_phrase(len(objs), kind)}" + (f" in {join_words(colors)}" if len(objs) > 1 and
                                                                len(colors) > 1 else f", {colors[0]}" if len(objs) == 1 else f", all {colors[0]}"))
    lead = rng.choice(["The image contains", "There are", "Visible objects include", "One can see"])
    return f"{lead} {join_words(parts)}."


def landcover_sentence(scene: Scene, rng: np.random.Generator) -> str:
    main = sorted(scene.landcover.items(), key=lambda kv: -kv[1])
    top = main[0][0]
    lay = scene.layout
    if "water_side" in lay:
        return f"Water covers the {lay['water_side']} part of the image."
    if "river" in lay:
        return f"The river runs {'from west to east' if lay['river'] == 'horizontal' else 'from north to south'}."
    if "runway" in lay:
        return f"A runway runs {'east-west' if lay['runway'] == 'horizontal' else 'north-south'} across the image."
    return f"Most of the ground is {top}."


def caption(scene: Scene, rng: np.random.Generator) -> str:
    """A pre-training caption (stage P): short, factual, varied in wording."""
    lead = rng.choice(["An aerial view of", "A remote sensing image of", "A satellite image showing",
                       "This image shows", "An overhead image of"])
    mod = "" if scene.modality == "optical" else f"This is {MODALITIES[scene.modality]}. "
    first = f"{lead} {SCENE_PHRASES[scene.scene_class]}."
    return f"{mod}{first} {objects_sentence(scene, rng)} {landcover_sentence(scene, rng)}"


def detailed_description(scene: Scene, rng: np.random.Generator) -> str:
    mod = "" if scene.modality == "optical" else f"This is {MODALITIES[scene.modality]}. "
    setting = scene.setting
    return (f"{mod}The image shows {SCENE_PHRASES[scene.scene_class]}, {article(setting)} {setting} scene. "
            f"{objects_sentence(scene, rng, detailed=True)} {landcover_sentence(scene, rng)}")


# --- instruction questions, one generator per task type -----------------------------------------

def _qa_classification(scene, rng, classes: list[str], alias: dict[str, str]):
    answer = alias.get(scene.scene_class, scene.scene_class)
    if answer not in classes:
        return None
    q = f"Classify the image within one of the given classes: {', '.join(classes)}. Answer with one word or short phrase."
    return QA("CLS", "classification", q, answer, CLOSED, {"scene_class": scene.scene_class})


PRESENCE_LANDCOVER = {"water area": "water", "road": "road"}


def _qa_presence(scene, rng, task="VQA"):
    if rng.random() < 0.75:  # an object; yes and no equally often where the scene allows
        present = scene.kinds_present()
        absent = [k for k in OBJECT_KINDS if k not in present]
        kind = rng.choice(present if present and (not absent or rng.random() < 0.5) else absent)
        n = scene.count(kind)
        q = rng.choice([f"Is there {article(kind)} {kind}?", f"Is there {article(kind)} {kind} in the image?",
                        f"Are there any {plural(kind)}?"])
        return QA(task, "presence", q, "yes" if n else "no", CLOSED, {"kind": kind, "count": n})
    name = rng.choice(list(PRESENCE_LANDCOVER))
    frac = scene.landcover.get(PRESENCE_LANDCOVER[name], 0.0)
    q = f"Is there {article(name)} {name}?"
    return QA(task, "presence", q, "yes" if frac > 0.01 else "no", CLOSED, {"landcover": name, "fraction": frac})


def _qa_comparison(scene, rng):
    present = scene.kinds_present()
    pool = present + [k for k in OBJECT_KINDS if k not in present][:1]
    if len(pool) < 2:
        return None
    a, b = rng.choice(pool, size=2, replace=False)
    na, nb = scene.count(a), scene.count(b)
    form = rng.integers(3)
    if form == 0:
        q, yes = f"Are there more {plural(a)} than {plural(b)}?", na > nb
    elif form == 1:
        q, yes = f"Are there less {plural(a)} than {plural(b)}?", na < nb
    else:
        q, yes = f"Is the number of {plural(a)} equal to the number of {plural(b)}?", na == nb
    return QA("VQA", "comparison", q, "yes" if yes else "no", CLOSED, {"kinds": [a, b], "counts": [na, nb]})


def _qa_rural_urban(scene, rng):
    return QA("VQA", "rural_urban", "Is it a rural or an urban area", scene.setting, CLOSED,
              {"scene_class": scene.scene_class})


def _qa_counting(scene, rng):
    present = scene.kinds_present()
    kind = rng.choice(present) if present and rng.random() < 0.85 else rng.choice(OBJECT_KINDS)
    n = scene.count(kind)
    q = rng.choice([f"How many {plural(kind)} are there in the image?", f"How many {plural(kind)} are there?",
                    f"What is the number of {plural(kind)}?"])
    return QA("VQA", "counting", q, str(n), CLOSED, {"kind": kind, "count": n})


def _qa_grounding(scene, rng):
    uniq = unique_objects(scene)
    if not uniq:
        return None
    obj, refs = uniq[rng.integers(len(uniq))]
    ref = refs[rng.integers(len(refs))]
    box = to_normalized(obj.box, scene.width, scene.height)
    return QA("VG", "grounding", ref, format_box(box), GROUNDING,
              {"object": scene.objects.index(obj), "box_pixels": obj.box, "box": box})


def _qa_honesty(scene, rng):
    """VHM's honesty (IDK) questions: colour, position or presence, half of them about absent objects."""
    absent = [k for k in OBJECT_KINDS if scene.count(k) == 0]
    uniq = unique_objects(scene)
    kind_of_q = rng.choice(["color", "position", "presence"])
    if absent and (not uniq or rng.random() < 0.5):
        kind = rng.choice(absent)
        q = {"color": f"What color is the {kind} in the image?",
             "position": f"Where is the {kind} located in the image?",
             "presence": f"Is there {article(kind)} {kind} in this image?"}[kind_of_q]
        a = f"There is no {kind} in the image." if kind_of_q != "presence" else f"No, there is no {kind} in the image."
        return QA("IDK", f"honesty_{kind_of_q}", q, a, CLOSED, {"kind": kind, "absent": True})
    if not uniq:
        return None
    obj, refs = uniq[rng.integers(len(uniq))]
    ref = refs[rng.integers(len(refs))]
    idx = scene.objects.index(obj)
    if kind_of_q == "color":
        ref = next((r for r in refs if obj.color not in r), None)
        if ref is None:
            return None
        return QA("IDK", "honesty_color", f"What color is {ref}?", obj.color, CLOSED, {"object": idx, "absent": False})
    if kind_of_q == "position":
        ref = next((r for r in refs if "at the" not in r and " on the " not in r and "center" not in r), None)
        if ref is None:
            return None
        return QA("IDK", "honesty_position", f"Where is {ref} located in the image?",
                  at_position(scene.position(obj)), CLOSED, {"object": idx, "absent": False})
    return QA("IDK", "honesty_presence", f"Is there {article(obj.kind)} {obj.kind} in this image?",
              f"Yes, there {'is one' if scene.count(obj.kind) == 1 else 'are ' + number_word(scene.count(obj.kind))} "
              f"{plural(obj.kind, scene.count(obj.kind))} in the image.", CLOSED, {"kind": obj.kind, "absent": False})


MODALITY_OPTIONS = {"optical": "optical (RGB)", "infrared": "false-colour near-infrared", "panchromatic": "panchromatic",
                    "sar": "synthetic aperture radar (SAR)"}


def _qa_instruction(scene, rng):
    """VHM's other instructions ({IT}): detailed descriptions, open questions, image type, resolution, and
    multiple-choice questions about what the image shows (VHM-RL's closed-ended tasks include multiple choice)."""
    r = rng.random()
    if r < 0.2 and (qa := _qa_choice(scene, rng)):
        return qa
    if r < 0.5:
        q = rng.choice(["Describe the image in detail.", "Please describe this image.",
                        "What can you see in this remote sensing image?"])
        return QA("IT", "description", q, detailed_description(scene, rng), OPEN, {})
    if r < 0.65:
        fn = SCENES[scene.scene_class]["function"]
        a = (f"This area is {SCENE_PHRASES[scene.scene_class]}, so it is mainly used for {fn}. "
             f"{objects_sentence(scene, rng)}")
        return QA("IT", "function", "What is this area used for?", a, OPEN, {"scene_class": scene.scene_class})
    if r < 0.85:
        opts = list(MODALITY_OPTIONS.values())
        letter = LETTERS[list(MODALITY_OPTIONS).index(scene.modality)]
        q = "What type of image is this? Please choose from: " + " ".join(f"{LETTERS[i]}. {o}" for i, o in enumerate(opts))
        return QA("IT", "modality", q, f"{letter}. {MODALITY_OPTIONS[scene.modality]}", CLOSED,
                  {"modality": scene.modality})
    return QA("IT", "resolution", "What is the spatial resolution of this image?", gsd_label(scene.zoom), CLOSED,
              {"zoom": scene.zoom})


# The multiple-choice types an instruction may ask: only those read off the image. The toy LHRS-Bench
# also asks about the world's rules (shape, resolution, sensor, orientation, ...), which the training
# data never teaches as multiple choice: the "limited general knowledge coverage" the paper names.
CHOICE_TYPES = ["identity", "color", "quantity", "location"]


def _qa_choice(scene, rng):
    qa = knowledge_question(scene, rng, CHOICE_TYPES[rng.integers(len(CHOICE_TYPES))])
    return QA("IT", "choice", qa.question, qa.answer, CLOSED, qa.evidence) if qa else None


TASK_GENERATORS = {
    ("VQA", "presence"): _qa_presence,
    ("VQA", "comparison"): _qa_comparison,
    ("VQA", "rural_urban"): _qa_rural_urban,
    ("VQA", "counting"): _qa_counting,
    ("VG", "grounding"): _qa_grounding,
    ("IDK", "honesty"): _qa_honesty,
    ("IT", "instruction"): _qa_instruction,
}


def _qa_open_ended(scene, rng):
    """An open-ended {IT} question only (a description or the area's use), for the open-ended QA benchmark."""
    while (qa := _qa_instruction(scene, rng)).answer_type != OPEN:
        pass
    return qa


def make_qa(scene: Scene, rng: np.random.Generator, task: str, subtype: str | None = None,
            classes: list[str] | None = None, alias: dict[str, str] | None = None) -> QA | None:
    """One question of the given task (and subtype) about the scene, or None if the scene cannot
    support it (e.g. grounding in an image without a uniquely describable object)."""
    if task == "CLS":
        return _qa_classification(scene, rng, classes or list(SCENES), alias or {})
    if task == "MC":
        return knowledge_question(scene, rng, subtype)
    if (task, subtype) == ("IT", "open"):  # not in TASK_GENERATORS: the training splits' IT mix stays as it is
        return _qa_open_ended(scene, rng)
    if subtype is None:
        subtypes = [s for (t, s) in TASK_GENERATORS if t == task]
        subtype = subtypes[rng.integers(len(subtypes))]
    return TASK_GENERATORS[(task, subtype)](scene, rng)


# --- the toy LHRS-Bench: multiple-choice questions about the world's rules ------------------------

LHRS_TYPES = ["identity", "color", "orientation", "shape", "quantity", "area", "distance", "resolution", "modality",
              "location", "reasoning"]  # ids "1".."11", as in LHRS-Bench


def _choices(rng, correct: str, pool: list[str]):
    distractors = [p for p in dict.fromkeys(pool) if p != correct]
    picked = list(rng.choice(distractors, size=min(3, len(distractors)), replace=False))
    options = picked + [correct]
    rng.shuffle(options)
    return options, LETTERS[options.index(correct)]


def _heading(angle: float) -> str:
    return ["east", "south", "west", "north"][int(((angle + 45) % 360) // 90)]


def knowledge_question(scene: Scene, rng: np.random.Generator, qtype: str | None = None) -> QA | None:
    """A multiple-choice question of one LHRS-Bench type; None when the scene cannot support it."""
    qtype = qtype or LHRS_TYPES[rng.integers(len(LHRS_TYPES))]
    uniq = unique_objects(scene)
    pick = uniq[rng.integers(len(uniq))] if uniq else None
    q = correct = None
    pool: list[str] = []
    ev: dict = {}
    if qtype == "identity":
        present = scene.kinds_present()
        if present and len(present) <= 2:
            correct = rng.choice(present)
            q, pool = "Which of the following objects can be seen in this image?", [k for k in OBJECT_KINDS if k not in present]
        else:
            correct, q, pool = scene.scene_class, "What kind of scene does this image show?", list(SCENES)
    elif qtype == "color" and pick:
        obj, refs = pick
        ref = next((r for r in refs if obj.color not in r), None)
        if ref:
            q, correct, pool = f"What is the color of {ref}?", obj.color, list(COLOR_RGB)
            ev = {"object": scene.objects.index(obj)}
    elif qtype == "orientation":
        lay = scene.layout
        line = "runway" if "runway" in lay else "river" if "river" in lay else None
        if line:
            correct = "east-west" if lay[line] == "horizontal" else "north-south"
            q, pool = f"In which direction does the {line} run?", ["east-west", "north-south",
                                                                     "northeast-southwest", "northwest-southeast"]
        else:
            movers = [(o, r) for o, r in uniq if o.kind in ("ship", "airplane")]
            if movers:
                obj, refs = movers[rng.integers(len(movers))]
                q, correct = f"Which direction is the nose of {refs[0]} pointing?", _heading(obj.angle)
                pool, ev = ["east", "south", "west", "north"], {"object": scene.objects.index(obj)}
    elif qtype == "shape":
        present = scene.kinds_present()
        if present:
            kind = rng.choice(present)
            q, correct = f"What shape do the {plural(kind)} in this image have?", OBJECTS[kind]["shape"]
            pool = [OBJECTS[k]["shape"] for k in OBJECT_KINDS]
    elif qtype == "quantity":
        kind = rng.choice(scene.kinds_present() or OBJECT_KINDS)
        n = scene.count(kind)
        q, correct = f"How many {plural(kind)} are in the image?", str(n)
        pool = [str(max(0, n + d)) for d in (-2, -1, 1, 2, 3)]
    elif qtype == "area":
        ranked = sorted(scene.landcover.items(), key=lambda kv: -kv[1])
        if len(ranked) == 1 or ranked[0][1] > ranked[1][1] + 0.1:
            q, correct = "Which land cover occupies the largest area of the image?", ranked[0][0]
            pool = list(LANDCOVER_NAMES.values())
    elif qtype == "distance" and len(uniq) >= 3:
        anchor, arefs = uniq[rng.integers(len(uniq))]
        others = [(o, r) for o, r in uniq if o is not anchor]
        dist = [np.hypot(o.center[0] - anchor.center[0], o.center[1] - anchor.center[1]) for o, _ in others]
        order = np.argsort(dist)
        if dist[order[0]] < 0.8 * dist[order[1]]:
            q = f"Which of these objects is closest to {arefs[0]}?"
            correct = others[order[0]][1][0]
            pool = [others[i][1][0] for i in order[1:]]
            ev = {"anchor": scene.objects.index(anchor), "object": scene.objects.index(others[order[0]][0])}
    elif qtype == "resolution":
        q, correct, pool = "What is the approximate spatial resolution of this image?", gsd_label(scene.zoom), GSD_LABELS
    elif qtype == "modality":
        q, correct = "What kind of sensor image is this?", MODALITY_OPTIONS[scene.modality]
        pool = list(MODALITY_OPTIONS.values())
    elif qtype == "location" and pick:
        obj, refs = pick
        ref = next((r for r in refs if "at the" not in r and " on the " not in r and "center" not in r), None)
        if ref:
            q, correct = f"Where in the image is {ref}?", scene.position(obj)
            pool, ev = ALL_POSITIONS, {"object": scene.objects.index(obj)}
    elif qtype == "reasoning":
        q, correct = "What is this area most likely used for?", SCENES[scene.scene_class]["function"]
        pool = [s["function"] for s in SCENES.values()]
    if q is None or correct is None or len(set(pool) - {correct}) < 3:
        return None
    options, letter = _choices(rng, correct, pool)
    text = q + "\n" + "\n".join(f"{LETTERS[i]}. {o}" for i, o in enumerate(options)) + \
        "\nAnswer with the option's letter from the given choices directly."
    ev.update({"correct": correct, "options": options})
    return QA("MC", qtype, text, letter, CLOSED, ev)
