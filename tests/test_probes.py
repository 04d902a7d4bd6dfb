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
    # what the language model receives: one token per 2 x 2 merged patches, of the text width (not the ViT's)
    merge = model.config.vision_config.spatial_merge_size
    assert tokens.shape == (int(inputs["image_grid_thw"].prod()) // merge ** 2, model.config.text_config.hidden_size)
    assert model.config.vision_config.embed_dim != model.config.text_config.hidden_size  # so the check can tell
    one = image_token_spread(loaded, toy_build / "eval", limit=1)["spread"]
    assert math.isclose(one, (tokens.std(0).norm() / tokens.mean(0).norm()).item(), rel_tol=1e-4)


@pytest.mark.parametrize("other_images", [False, True])
def test_grounding_probe_and_its_other_image_control(toy_checkpoint, toy_build, other_images, monkeypatch):
    """A stand-in model that boxes exactly the referent of the image it is shown: IoU ~1 when each question
    gets its own image; the control shows each question the next one's image, so the boxes miss."""
    from tinyrs import boxes
    from tinyrs.data.vhm import answer_text
    from tinyrs.evaluation.run import benchmark_entries, benchmark_images
    from tinyrs.train import probes

    path, entries = benchmark_entries(toy_build / "eval", probes.GROUNDING_FILE, 4)
    box_in = {img.tobytes(): boxes.format_box(boxes.to_normalized(boxes.parse_pixel_box(answer_text(e)),
                                                                   e["size"][1], e["size"][0]))
              for e, (img,) in zip(entries, benchmark_images(entries, path))}
    monkeypatch.setattr(probes, "complete", lambda model, processor, prompts, images, *a, **k:
                        [f"<reasoning>.</reasoning><answer>{box_in[img.tobytes()]}</answer>" for (img,) in images])
    r = probes.grounding_probe(toy_checkpoint, toy_build / "eval", limit=4, other_images=other_images)
    assert r["samples"] == 4 and r["parsed_boxes"] == 4
    if other_images:
        assert r["mean_iou"] < 0.5 and r["acc@0.5"] < 0.5
    else:
        assert r["mean_iou"] > 0.95 and r["acc@0.5"] == 1.0


def test_a_checkpoint_loaded_once_probes_like_its_path(toy_checkpoint, toy_build):
    from tinyrs.train.probes import grounding_probe, load, reward_probe

    pair = load(toy_checkpoint)
    assert load(pair) is pair
    for probe, kw in ((grounding_probe, dict(eval_root=toy_build / "eval", limit=3, max_new_tokens=8, samples=2)),
                      (reward_probe, dict(build_dir=toy_build, n=3, max_new_tokens=8))):
        assert probe(pair, **kw) == probe(toy_checkpoint, **kw)


def test_reward_probe_averages_each_prompts_samples_and_the_table_pairs_the_change(toy_checkpoint, toy_build,
                                                                                   monkeypatch):
    """Sampled k times, a prompt's reward is the mean of its k completions (completion j * n + i answers prompt
    i); the table's change of the second model is paired over prompts, with its standard error."""
    from tinyrs.data.vhm import answer_text
    from tinyrs.train import probes

    entries, _, _ = probes.rl_prompts(toy_build, 4)
    right = [f"<reasoning>.</reasoning><answer>{answer_text(e)}</answer>" for e in entries]
    calls = []

    def stand_in(model, processor, prompts, images, sample, *a, **k):
        calls.append(len(prompts))
        if not sample:  # greedy: formatted, wrong
            return ["<reasoning>.</reasoning><answer>nothing</answer>"] * len(prompts)
        # sampled: prompt 0 right in every sample, prompt 1 in one of two, the others never; no format on prompt 3
        first = right[:1] + right[1:2] + ["<reasoning>.</reasoning><answer>nothing</answer>"] * 2
        second = right[:1] + ["<reasoning>.</reasoning><answer>nothing</answer>"] * 2 + ["nothing"]
        return first[:3] + ["nothing"] + second

    monkeypatch.setattr(probes, "complete", stand_in)
    r = probes.reward_probe(toy_checkpoint, toy_build, n=4, sample=True, samples=2)
    assert calls == [8] and r["samples"] == 2 and r["prompts"] == 4
    assert r["per_prompt"]["format"] == [1.0, 1.0, 1.0, 0.0]
    assert r["per_prompt"]["accuracy"][:2] == [1.0, 0.5] and r["per_prompt"]["total"][:2] == [2.0, 1.5]
    assert abs(r["total"] - sum(r["per_prompt"]["total"]) / 4) < 1e-9
    assert probes.paired_change([1.0, 1.0, 0.0], [2.0, 1.0, 1.0])[:2] == pytest.approx((2 / 3, (1 / 9) ** 0.5))
    assert probes.paired_change([1.0, None, 0.0], [2.0, 5.0, None])[2] == 1  # a prompt lacking either is left out
    rows, found = probes.probe_table({"a": toy_checkpoint, "b": toy_checkpoint}, toy_build, 4, reward_samples=2)
    assert [r["total change (SE)"] for r in rows] == ["-", "-", "+0.000 (0.000)", "+0.000 (0.000)"]
    assert found[("b", "sampled (R)")]["samples"] == 2 and found[("b", "greedy")]["samples"] == 1
