"""Real remote-sensing samples through the evaluation path: evaluation files written from the fixtures
(UC Merced images labelled by their file names, the GeoTIFF and RGBA images; the non-square DOTA image
with a box from its own labels) are read, prompted, answered by a tiny checkpoint and scored."""
import json

from PIL import Image

from tinyrs.boxes import format_box, to_normalized
from tinyrs.evaluation.generate import TransformersEngine
from tinyrs.evaluation.harness import evaluate
from tinyrs.evaluation.scoring import score_rows

UCM = ["baseball_diamond_009.jpg", "chaparral_007.jpg", "church_010.jpg", "parking_lot_010.jpg"]
CLASSES = "baseball diamond, chaparral, church, parking lot, forest, river"


def entry(image, question, answer, **extra):
    return {"image": image, "conversations": [{"from": "human", "value": f"<image>\n{question}"},
                                              {"from": "gpt", "value": answer}], **extra}


def dota_largest_box(label_file):
    """The axis-aligned pixel box and class of the largest object in a DOTA label file."""
    best = None
    for line in label_file.read_text().splitlines():
        parts = line.split()
        if len(parts) < 10:
            continue  # header lines (imagesource, gsd)
        xs, ys = [float(v) for v in parts[0:8:2]], [float(v) for v in parts[1:8:2]]
        box = [min(xs), min(ys), max(xs), max(ys)]
        area = (box[2] - box[0]) * (box[3] - box[1])
        if best is None or area > best[0]:
            best = (area, box, parts[8].replace("-", " "))
    return best[1], best[2]


def test_real_samples_are_evaluated_through_the_same_path(fixtures_dir, toy_checkpoint, tmp_path, monkeypatch):
    real = fixtures_dir / "real_images"
    cls = [entry(name, f"Classify the image within one of the given classes: {CLASSES}. Answer with one word or "
                       "short phrase.", name.rsplit("_", 1)[0].replace("_", " "), image_path=str(real)) for name in UCM]
    # the GeoTIFF (Sentinel-2) and RGBA (DOTA patch) samples, asked a question each
    cls += [entry("rsvqa_lr_0.tif", f"Classify the image within one of the given classes: {CLASSES}.", "river",
                  image_path=str(real)),
            entry("dota_P0004_patch_rgba.png", f"Classify the image within one of the given classes: {CLASSES}.",
                  "parking lot", image_path=str(real))]
    (tmp_path / "cls_AID.json").write_text(json.dumps(cls))
    box, kind = dota_largest_box(fixtures_dir / "dota" / "P1888.txt")
    w, h = Image.open(fixtures_dir / "dota" / "P1888.png").size
    assert (w, h) == (712, 557)  # not square: the rescaling must use w for x and h for y
    vg = [entry("P1888.png", f"the {kind}", "[{:.0f}, {:.0f}, {:.0f}, {:.0f}]".format(*box), size=[h, w],
                image_path=str(fixtures_dir / "dota"))]
    (tmp_path / "VG_DOIR_RSVG_test.json").write_text(json.dumps(vg))

    shown = []  # every image as the engine receives it
    real_generate = TransformersEngine.generate
    monkeypatch.setattr(TransformersEngine, "generate", lambda self, prompts, images, *a, **k:
                        shown.extend(im for ims in images for im in ims) or real_generate(self, prompts, images, *a, **k))
    r = evaluate(toy_checkpoint, tmp_path, tmp_path / "out", ["AID", "DIOR-RSVG"], max_new_tokens=8, batch_size=3,
                 progress=False)
    aid, dior = r["benchmarks"]["cls_AID.json"], r["benchmarks"]["VG_DOIR_RSVG_test.json"]
    assert aid["strict"]["n"] == aid["strict"]["counted"] == 6
    assert dior["strict"]["n"] == 1 and dior["strict"]["counted"] == 1
    rows = [json.loads(x) for x in (tmp_path / "out" / "predictions" / "VG_DOIR_RSVG_test.jsonl").read_text().splitlines()]
    assert rows[0]["size"] == [557, 712] and rows[0]["answer"] == vg[0]["conversations"][1]["value"]
    # the GeoTIFF and the RGBA patch reach the model as 3-band RGB, like the JPEGs
    assert len(shown) == 7 and {im.mode for im in shown} == {"RGB"}
    saved = [json.loads(x) for x in (tmp_path / "out" / "predictions" / "cls_AID.jsonl").read_text().splitlines()]
    assert [x["answer"] for x in saved] == [e["conversations"][1]["value"] for e in cls]
    # the truth box, written as the model writes boxes (0..1000), scores IoU 1 on the non-square image
    perfect = {**rows[0], "prediction": format_box(to_normalized(box, w, h))}
    assert score_rows([perfect], "acc@0.5", "strict")["mean_iou"] > 0.95  # 0..1000 integers round a little
    swapped = {**rows[0], "prediction": format_box(to_normalized(box, h, w))}  # w and h confused: a miss
    assert score_rows([swapped], "acc@0.5", "strict")["mean_iou"] < 0.5
