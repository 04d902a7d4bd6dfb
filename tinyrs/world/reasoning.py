"""The toy profile's CoT teacher: step-by-step reasoning written from the world's metadata.

The offline, deterministic stand-in for GPT-4.1-mini. For each question it states what is
visible (land cover, objects, where, how many), why that implies the answer, and then the
answer, in varied wording, so that stage C has real reasoning to learn. The evidence comes
from the scene (scenes.jsonl) and from how the question was generated (qa_meta.jsonl).
"""
from __future__ import annotations

import hashlib
from collections import Counter

import numpy as np

from .language import (MODALITY_OPTIONS, SCENE_PHRASES, article, at_position, count_phrase, join_words, number_word)
from .scene import Scene
from .spec import SCENES, plural

CLASS_CUES = {
    "forest": "a dense, dark-green tree canopy that covers the whole image",
    "farmland": "rectangular fields in different crop colours, each with fine parallel rows",
    "meadow": "smooth, light-green grass with only a few scattered trees",
    "desert": "bare sand with wavy dune ripples and no vegetation",
    "river": "a winding band of water with narrow sandy banks crossing green land",
    "lake": "a large rounded body of water surrounded by vegetation",
    "beach": "a strip of pale sand between open water and the land",
    "residential": "small houses with pitched roofs along a grid of streets, with gardens and trees",
    "commercial": "larger flat-roofed buildings on paved ground between wide roads",
    "industrial": "large warehouse roofs on bare, dusty ground",
    "airport": "a long runway with a dashed centre line next to a paved apron",
    "harbor": "water along one side of the image, with piers reaching into it",
    "parking lot": "dark asphalt with painted stall lines and rows of parked cars",
    "storage tanks": "round tanks arranged in rows on concrete",
}
MODALITY_CUES = {
    "optical": "the colours look natural: green vegetation, blue water, grey pavement",
    "infrared": "vegetation appears bright red and water almost black, the signature of a near-infrared false-colour composite",
    "panchromatic": "there is no colour at all, only shades of grey from a single broad band",
    "sar": "the image is grey and grainy with speckle, and water is dark because it reflects the radar pulse away",
}


def _pick(rng, options):
    return options[int(rng.integers(len(options)))]


def describe_objects(scene: Scene, kinds: list[str] | None = None, limit: int = 3) -> str:
    """'two ships (a white one at the top left and a red one on the right) and one building (...)'."""
    parts = []
    for kind in kinds or scene.kinds_present():
        objs = scene.of_kind(kind)
        if not objs:
            continue
        where = [f"{article(o.color)} {o.color} one {at_position(scene.position(o))}" for o in objs[:limit]]
        if len(objs) > limit:
            where.append(f"{number_word(len(objs) - limit)} more")
        parts.append(f"{count_phrase(len(objs), kind)} ({join_words(where)})")
    return join_words(parts) if parts else "no distinct objects"


def _scene_step(scene: Scene, rng) -> str:
    cue = CLASS_CUES[scene.scene_class]
    return _pick(rng, [f"The image shows {cue}.", f"Looking at the whole image, I see {cue}.",
                       f"First, the overall scene: {cue}.", f"The most visible feature is {cue}."])


def _object_step(scene: Scene, rng, kinds=None) -> str:
    if not scene.objects:
        return _pick(rng, ["I do not see any vehicles, buildings, ships or other distinct objects.",
                           "There are no distinct objects on the ground."])
    return _pick(rng, [f"On the ground I can make out {describe_objects(scene, kinds)}.",
                       f"Scanning the image, I find {describe_objects(scene, kinds)}.",
                       f"Looking closer, there are {describe_objects(scene, kinds)}."])


def _count_step(scene: Scene, kind: str, rng) -> str:
    objs = scene.of_kind(kind)
    if not objs:
        return _pick(rng, [f"I look for {plural(kind)} everywhere in the image and find none.",
                           f"Checking each part of the image, I find no {plural(kind)}."])
    n = len(objs)
    groups = Counter(at_position(scene.position(o)) for o in objs)  # "two on the left and one in the center"
    places = join_words([f"{number_word(k)} {where}" for where, k in groups.most_common()])
    noun, verb = (kind, "is") if n == 1 else (plural(kind), "are")
    return _pick(rng, [f"I count the {plural(kind)} one by one: {places}, which makes {number_word(n)}.",
                       f"Going over the image, the {noun} {verb} {places}; in total {count_phrase(n, kind)}.",
                       f"The {plural(kind)} I can see are {places}: {number_word(n)} in all."])


def _ref_object(scene: Scene, evidence: dict):
    idx = evidence.get("object")
    return scene.objects[idx] if idx is not None and 0 <= idx < len(scene.objects) else None


def reason(scene: Scene, qa_type: str, question: str, answer: str, evidence: dict, rng: np.random.Generator) -> str:
    """The reasoning text (without tags) that leads from the image to `answer`."""
    steps: list[str] = []
    if qa_type == "classification":
        steps += [_scene_step(scene, rng)]
        steps.append(_pick(rng, [f"These are the typical signs of {SCENE_PHRASES[scene.scene_class]}, "
                                 f"which the given classes call \"{answer}\".",
                                 f"Such a layout is characteristic of {SCENE_PHRASES[scene.scene_class]}; among the "
                                 f"given classes that is \"{answer}\"."]))
    elif qa_type in ("presence", "honesty_presence") and "kind" in evidence:
        kind = evidence["kind"]
        steps += [_count_step(scene, kind, rng)]
        steps.append(f"So there is {article(kind) if scene.count(kind) else 'no'} {kind} in the image.")
    elif qa_type == "presence":
        name = evidence.get("landcover", "water area")
        frac = evidence.get("fraction", 0.0)
        steps.append(_scene_step(scene, rng))
        steps.append(f"{'About ' + str(round(100 * frac)) + '% of the image is covered by' if frac > 0.01 else 'No part of the image shows'}"
                     f" {'water' if 'water' in name else 'road surface'}.")
    elif qa_type == "comparison":
        (a, b), (na, nb) = evidence["kinds"], evidence["counts"]
        steps += [_count_step(scene, a, rng), _count_step(scene, b, rng)]
        relation = "more" if na > nb else "fewer" if na < nb else "the same number of"
        steps.append(f"So there are {relation} {plural(a)} {'than' if na != nb else 'as'} {plural(b)} "
                     f"({na} against {nb}).")
    elif qa_type == "rural_urban":
        steps += [_scene_step(scene, rng)]
        steps.append(_pick(rng, [
            f"{SCENE_PHRASES[scene.scene_class].capitalize()} is {'built-up land' if scene.setting == 'urban' else 'open countryside'}, "
            f"so the area is {scene.setting}.",
            f"This kind of land use ({scene.scene_class}) belongs to {'a town or city' if scene.setting == 'urban' else 'the countryside'}, "
            f"which makes it {scene.setting}."]))
    elif qa_type == "counting":
        steps += [_count_step(scene, evidence["kind"], rng)]
    elif qa_type == "grounding":
        obj = _ref_object(scene, evidence)
        others = [o for o in scene.of_kind(obj.kind) if o is not obj]
        steps.append(_pick(rng, [f"The expression asks for {question.strip()}.", f"I need to find {question.strip()}."]))
        if others:
            steps.append(f"There are {count_phrase(len(others) + 1, obj.kind)} in the image; the one meant is the "
                         f"{obj.color} {obj.kind} {at_position(scene.position(obj))}, which the description singles out.")
        else:
            steps.append(f"There is only one {obj.kind}: the {obj.color} one {at_position(scene.position(obj))}.")
        x1, y1, x2, y2 = evidence["box"]  # in words, as a person would; the box itself is the answer
        steps.append(f"It spans about {round((x2 - x1) / 10)}% of the image width and {round((y2 - y1) / 10)}% of "
                     f"its height.")
    elif qa_type in ("honesty_color", "honesty_position"):
        if evidence.get("absent"):
            kind = evidence["kind"]
            steps += [_object_step(scene, rng),
                      f"None of these is {article(kind)} {kind}, so the question asks about something that is not there."]
        else:
            obj = _ref_object(scene, evidence)
            steps.append(_object_step(scene, rng, [obj.kind]))
            if qa_type == "honesty_color":
                steps.append(f"The {obj.kind} in question is the one {at_position(scene.position(obj))}; its roof or hull "
                             f"is {obj.color}." if obj.kind in ("building", "ship") else
                             f"The {obj.kind} in question is the one {at_position(scene.position(obj))}, and it is {obj.color}.")
            else:
                cx, cy = obj.center
                steps.append(f"The {obj.color} {obj.kind} sits {round(100 * cx / scene.width)}% of the way across and "
                             f"{round(100 * cy / scene.height)}% of the way down, that is {at_position(scene.position(obj))}.")
    elif qa_type == "description":
        steps += [_scene_step(scene, rng), _object_step(scene, rng)]
        if scene.modality != "optical":
            steps.append(f"The sensor matters too: {MODALITY_CUES[scene.modality]}.")
        steps.append("Putting the scene type, the objects and their places together gives the description.")
    elif qa_type == "function":
        fn = SCENES[scene.scene_class]["function"]
        steps += [_scene_step(scene, rng),
                  f"Land that looks like this is {SCENE_PHRASES[scene.scene_class]}, and such places are used for {fn}."]
    elif qa_type == "modality":
        steps.append(f"I look at the colours and texture: {MODALITY_CUES[scene.modality]}.")
        steps.append(f"That matches the option \"{MODALITY_OPTIONS[scene.modality]}\".")
    elif qa_type == "resolution":
        sizes = [max(o.box[2] - o.box[0], o.box[3] - o.box[1]) for o in scene.objects]
        if sizes:
            steps.append(f"The objects give the scale: the largest, {article(scene.objects[int(np.argmax(sizes))].kind)} "
                         f"{scene.objects[int(np.argmax(sizes))].kind}, spans about {max(sizes)} pixels.")
        else:
            steps.append("There are few objects, so I judge the scale from the texture of the ground.")
        steps.append(f"Features look {'large and sharp' if scene.zoom >= 1.3 else 'moderately detailed' if scene.zoom >= 0.85 else 'small and coarse'}, "
                     f"which corresponds to {answer}.")
    else:  # anything else (e.g. multiple choice): the evidence, then the choice
        steps += [_scene_step(scene, rng), _object_step(scene, rng)]
        correct = evidence.get("correct")
        if correct:
            steps.append(f"The option that fits what I see is \"{correct}\".")
    return " ".join(s.strip() for s in steps if s.strip())


def cot_caption(scene: Scene, qa_type: str, question: str, answer: str, evidence: dict, seed_key: str,
                attempt: int = 0) -> str:
    """A full VHM-Instruct-Think caption: <reasoning>...</reasoning><answer>...</answer>."""
    digest = hashlib.sha256(seed_key.encode()).digest()
    rng = np.random.default_rng([int.from_bytes(digest[:8], "little"), attempt])
    return f"<reasoning>{reason(scene, qa_type, question, answer, evidence, rng)}</reasoning><answer>{answer}</answer>"
