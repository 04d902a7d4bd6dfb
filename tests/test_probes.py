"""The stage notebooks' quick probes: the image-token spread, the grounding control, loading once."""
from __future__ import annotations

import math

import pytest
import torch


def test_image_token_spread_measures_the_merger_output(toy_checkpoint, toy_build):
    from tinyrs.evaluation.run import benchmark_entries, benchmark_images
    from tinyrs.train.probes import GROUNDING_FILE, image_token_spread, load

    loaded = load(toy_checkpoint)
    r = image_token_spread(loaded, toy_build / "eval", limit=3)
    assert r["images"] == 3 and 0 < r["spread"] < 100 and r["norm_ratio"] > 0
    # recomputed by hand for the first image: std over its tokens against the mean token
    model, processor = loaded
    path, entries = benchmark_entries(toy_build / "eval", GROUNDING_FILE, 1)
    inputs = processor.image_processor(images=benchmark_images(entries, path)[0], return_tensors="pt")
    with torch.no_grad():
        tokens = model.model.visual(inputs["pixel_values"], grid_thw=inputs["image_grid_thw"]).pooler_output
    one = image_token_spread(loaded, toy_build / "eval", limit=1)["spread"]
    assert math.isclose(one, (tokens.std(0).norm() / tokens.mean(0).norm()).item(), rel_tol=1e-4)


@pytest.mark.parametrize("other_images", [False, True])
def test_grounding_probe_and_its_other_image_control(toy_checkpoint, toy_build, other_images):
    from tinyrs.train.probes import grounding_probe

    r = grounding_probe(toy_checkpoint, toy_build / "eval", limit=3, max_new_tokens=8, other_images=other_images)
    assert r["samples"] == 3 and 0.0 <= r["mean_iou"] <= 1.0


def test_a_checkpoint_loaded_once_probes_like_its_path(toy_checkpoint, toy_build):
    from tinyrs.train.probes import grounding_probe, load, reward_probe

    pair = load(toy_checkpoint)
    assert load(pair) is pair
    for probe, kw in ((grounding_probe, dict(eval_root=toy_build / "eval", limit=3, max_new_tokens=8, samples=2)),
                      (reward_probe, dict(build_dir=toy_build, n=3, max_new_tokens=8))):
        assert probe(pair, **kw) == probe(toy_checkpoint, **kw)
