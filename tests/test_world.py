"""The synthetic world: deterministic, plausible, every task of the paper, exact boxes."""
import numpy as np
import pytest

from tinyrs.boxes import parse_box, to_pixels
from tinyrs.world import SCENE_CLASSES, World
from tinyrs.world.language import LHRS_TYPES, make_qa, referring_expressions
from tinyrs.world.render import render_scene
from tinyrs.world.spec import OBJECTS, SCENES, WATER

SOURCES = {"s": {"sizes": [[128, 128], [160, 112]], "zoom": [0.7, 1.4],
                 "modalities": {"optical": 0.7, "infrared": 0.1, "panchromatic": 0.1, "sar": 0.1}}}


def test_same_seed_same_bytes_and_different_seed_differs():
    a = [World(7, SOURCES).render("train", i, "s")[0] for i in range(12)]
    b = [World(7, SOURCES).render("train", i, "s")[0] for i in range(12)]
    c = [World(8, SOURCES).render("train", i, "s")[0] for i in range(12)]
    assert all(x.tobytes() == y.tobytes() for x, y in zip(a, b))
    assert sum(x.tobytes() != z.tobytes() for x, z in zip(a, c)) == 12


def test_at_least_ten_classes_with_rural_and_urban():
    assert len(SCENE_CLASSES) >= 10
    assert {s["setting"] for s in SCENES.values()} == {"rural", "urban"}


@pytest.mark.parametrize("scene_class", SCENE_CLASSES)
def test_every_class_renders_with_boxes_inside_and_objects_where_they_belong(scene_class):
    for i in range(6):
        rng = np.random.default_rng([3, i])
        image, scene = render_scene(scene_class, 144, 112, 1.0, "optical", rng, "x.jpg")
        assert image.shape == (112, 144, 3) and image.dtype == np.uint8
        assert set(scene.layout) >= ({"water_side"} if scene_class in ("harbor", "beach") else set())
        for o in scene.objects:
            x1, y1, x2, y2 = o.box
            assert 0 <= x1 < x2 <= 144 and 0 <= y1 < y2 <= 112
            assert o.kind in SCENES[scene_class]["objects"]
            assert o.color in OBJECTS[o.kind]["colors"] or o.kind == "building"


def test_ships_sit_on_water_and_airplanes_on_aprons():
    """Placement follows the world's rules: every ship's box is (mostly) water, airplanes stand on pavement."""
    from tinyrs.world.render import Canvas, LAYOUTS, place_objects
    from tinyrs.world.spec import PAVED

    n_ship = n_plane = 0
    for i in range(15):
        for cls, kind in (("harbor", "ship"), ("airport", "airplane")):
            c = Canvas(160, 160, 1.0, np.random.default_rng(i))
            LAYOUTS[cls](c)
            for o in place_objects(c, cls, {kind: 3}):
                x1, y1, x2, y2 = o.box
                patch = c.label[y1:y2, x1:x2]
                if kind == "ship":
                    n_ship += 1
                    assert (patch == WATER).mean() >= 0.8
                else:
                    n_plane += 1
                    assert (patch == PAVED).mean() >= 0.97
    assert n_ship > 10 and n_plane > 10


def test_distinct_textures_separate_classes():
    """Mean colour alone already separates several classes: the textures are distinct."""
    world = World(0, {"s": {"sizes": [[96, 96]], "zoom": [1.0, 1.0]}})
    means = {}
    for c in ["forest", "desert", "parking lot", "lake"]:
        means[c] = np.mean([world.render("t", i, "s", scene_class=c)[0].reshape(-1, 3).mean(0) for i in range(4)], 0)
    names = list(means)
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            assert np.abs(means[names[i]] - means[names[j]]).max() > 15, (names[i], names[j])


def _scene(cls="harbor", i=0):
    world = World(1, {"s": {"sizes": [[160, 160]], "zoom": [1.0, 1.2]}})
    return world.render("t", i, "s", scene_class=cls)[1]


def test_every_task_type_is_asked_and_true():
    seen = set()
    for i in range(30):
        scene = _scene(["harbor", "airport", "parking lot", "residential", "forest"][i % 5], i)
        rng = np.random.default_rng(i)
        for task in ["CLS", "VQA", "VG", "IDK", "IT"]:
            for _ in range(4):
                qa = make_qa(scene, rng, task)
                if qa is None:
                    continue
                seen.add((qa.task, qa.qa_type))
                if qa.qa_type == "counting":
                    assert qa.answer == str(scene.count(qa.evidence["kind"]))
                if qa.qa_type == "rural_urban":
                    assert qa.answer == scene.setting
                if qa.qa_type == "choice":  # multiple choice in the training data, answered by letter
                    assert qa.answer in {"A", "B", "C", "D"} and f"{qa.answer}. {qa.evidence['correct']}" in qa.question
                if qa.task == "VG":
                    box = parse_box(qa.answer)
                    obj = scene.objects[qa.evidence["object"]]
                    px = to_pixels(box, scene.width, scene.height)
                    assert max(abs(a - b) for a, b in zip(px, obj.box)) <= 1.0
                    assert all(0 <= v <= 1000 for v in box)
    for needed in [("CLS", "classification"), ("VQA", "presence"), ("VQA", "comparison"), ("VQA", "rural_urban"),
                   ("VQA", "counting"), ("VG", "grounding"), ("IT", "description"), ("IT", "choice")]:
        assert needed in seen, needed
    assert any(t == "IDK" for t, _ in seen)


def test_honesty_questions_about_absent_objects_say_so():
    scene = _scene("forest", 2)
    absent = [k for k in OBJECTS if scene.count(k) == 0]
    rng = np.random.default_rng(0)
    answers = [make_qa(scene, rng, "IDK") for _ in range(40)]
    negatives = [qa for qa in answers if qa and qa.evidence.get("absent")]
    assert negatives and all(qa.evidence["kind"] in absent and f"there is no {qa.evidence['kind']} in the image"
                             in qa.answer.lower() for qa in negatives)


def test_referring_expressions_are_unique():
    for i in range(10):
        scene = _scene("parking lot", i)
        for obj in scene.objects:
            for ref in referring_expressions(scene, obj):
                matches = [o for o in scene.objects if ref in referring_expressions(scene, o)]
                assert matches == [obj], ref


def test_all_eleven_lhrs_types_can_be_asked():
    world = World(0, {"s": {"sizes": [[160, 160]], "zoom": [0.6, 1.5],
                            "modalities": {"optical": 0.5, "sar": 0.5}}})
    got = {}
    for i in range(200):
        scene = world.render("k", i, "s")[1]
        for t in LHRS_TYPES:
            if t not in got:
                qa = make_qa(scene, np.random.default_rng(i), "MC", t)
                if qa:
                    got[t] = qa
        if len(got) == len(LHRS_TYPES):
            break
    assert set(got) == set(LHRS_TYPES)
    for qa in got.values():
        assert qa.answer in {"A", "B", "C", "D"} and f"{qa.answer}. {qa.evidence['correct']}" in qa.question


def test_modalities_render_differently():
    rng = lambda: np.random.default_rng(5)  # noqa: E731
    opt = render_scene("lake", 96, 96, 1.0, "optical", rng(), "a")[0]
    sar = render_scene("lake", 96, 96, 1.0, "sar", rng(), "a")[0]
    pan = render_scene("lake", 96, 96, 1.0, "panchromatic", rng(), "a")[0]
    assert np.abs(opt.astype(int) - sar.astype(int)).mean() > 20
    assert (pan[..., 0] == pan[..., 2]).all()  # one band shown as grey
