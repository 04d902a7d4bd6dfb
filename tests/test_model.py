"""Model factory: toy tokenizer, image-only processor, tiny Qwen2-VL; save/load round trips;
loading a Qwen2-VL checkpoint by path as the paper profile does."""
import json

import numpy as np
import pytest
import torch
from PIL import Image

from tinyrs.boxes import format_box, iou, parse_box, parse_pixel_box, to_normalized, to_pixels
from tinyrs.model import (SPECIAL_TOKENS, build_toy_model, count_parameters, image_processor, load_model,
                          load_processor, make_processor, save_checkpoint, train_tokenizer)


def test_tokenizer_round_trips_world_text_and_keeps_qwen_special_tokens(toy_checkpoint):
    tok = load_processor(toy_checkpoint).tokenizer
    for t in SPECIAL_TOKENS:
        assert tok.convert_tokens_to_ids(t) is not None and tok.convert_ids_to_tokens(tok.convert_tokens_to_ids(t)) == t
    for text in ["{VG} the white airplane at the top right", "[[12, 345, 678, 999]]",
                 "<reasoning>Two ships are moored.</reasoning><answer>2</answer>"]:
        assert tok.decode(tok(text)["input_ids"]) == text
    # numbers are split into digits, as Qwen2's tokenizer does
    assert tok.convert_ids_to_tokens(tok("345")["input_ids"]) == ["3", "4", "5"]
    assert tok.eos_token == "<|im_end|>" and tok.pad_token == "<|endoftext|>"


def test_chat_template_is_qwen2vl_layout(toy_checkpoint):
    proc = load_processor(toy_checkpoint)
    text = proc.apply_chat_template([{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "{CLS} q"}]}],
                                    add_generation_prompt=True, tokenize=False)
    assert text == ("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
                    "<|vision_start|><|image_pad|><|vision_end|>{CLS} q<|im_end|>\n<|im_start|>assistant\n")


def test_processor_save_load_round_trip_without_torchvision(toy_checkpoint, tmp_path, fixtures_dir):
    proc = load_processor(toy_checkpoint)
    saved = json.loads((toy_checkpoint / "processor_config.json").read_text())
    assert saved["processor_class"] == "Qwen2VLProcessor"  # loadable by AutoProcessor where torchvision exists
    proc.save_pretrained(tmp_path / "p")
    proc2 = load_processor(tmp_path / "p")
    image = Image.open(fixtures_dir / "dota" / "P1888.png").convert("RGB")  # non-square, larger than max_pixels
    text = proc.apply_chat_template([{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "hi"}]}],
                                    tokenize=False)
    a = proc(text=[text], images=[image], return_tensors="pt")
    b = proc2(text=[text], images=[image], return_tensors="pt")
    assert set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)
    h, w = a["image_grid_thw"][0, 1:].tolist()
    assert w > h  # the aspect ratio survives the resize
    assert a["pixel_values"].shape[0] == h * w <= 25088 // (14 * 14)


def test_model_save_load_gives_identical_outputs(toy_checkpoint, tmp_path):
    model = load_model(toy_checkpoint)
    proc = load_processor(toy_checkpoint)
    print(count_parameters(model))
    assert count_parameters(model)["total"] < 3_000_000 and count_parameters(model)["vision"] > 0
    save_checkpoint(model, proc, tmp_path / "again")
    model2 = load_model(tmp_path / "again")
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (112, 140, 3), dtype=np.uint8))
    text = proc.apply_chat_template([{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "x"}]}],
                                    tokenize=False)
    inputs = proc(text=[text], images=[image], return_tensors="pt")
    with torch.no_grad():
        assert torch.equal(model(**inputs).logits, model2(**inputs).logits)


def test_any_qwen2vl_checkpoint_loads_by_path(tmp_path, fixtures_dir):
    """The paper profile's path: a Qwen2-VL checkpoint folder (here one this test saves itself,
    with its own tokenizer and min/max pixels) loads with load_model / load_processor and generates."""
    tok = train_tokenizer(["a remote sensing image of a church", "yes no 0 1 2 3"] * 20, vocab_size=300)
    proc = make_processor(tok, image_processor(min_pixels=28 * 28, max_pixels=56 * 56))
    model = build_toy_model(tok, dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                                      num_key_value_heads=1, max_position_embeddings=512),
                            dict(depth=1, embed_dim=32, num_heads=2, mlp_ratio=2), seed=1)
    save_checkpoint(model, proc, tmp_path / "qwen2vl-like")
    m, p = load_model(tmp_path / "qwen2vl-like"), load_processor(tmp_path / "qwen2vl-like")
    assert type(m).__name__ == "Qwen2VLForConditionalGeneration"
    assert p.image_processor.size["longest_edge"] == 56 * 56
    image = Image.open(fixtures_dir / "real_images" / "church_010.jpg")
    msgs = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "what is this"}]}]
    inputs = p(text=[p.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)], images=[image],
               return_tensors="pt")
    out = m.generate(**inputs, max_new_tokens=3, do_sample=False)
    assert out.shape[1] > inputs["input_ids"].shape[1]


def test_hub_ids_are_tried_and_fail_clearly_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(OSError, match="Qwen/Qwen2-VL-2B-Instruct"):
        load_model("Qwen/Qwen2-VL-2B-Instruct")


def test_box_helpers():
    assert format_box([1, 2.4, 300, 999.6]) == "[[1, 2, 300, 1000]]"
    assert parse_box("the ship is at [[12, 34, 560, 780]].") == [12, 34, 560, 780]
    assert parse_box("[12, 34, 560, 780]") is None and parse_box("") is None
    assert parse_pixel_box("[674, 375, 684.5, 395]") == [674, 375, 684.5, 395]
    # a non-square image: x scales with the width, y with the height
    px = to_pixels([500, 500, 1000, 1000], width=712, height=557)
    assert px == [356.0, 278.5, 712.0, 557.0]
    assert to_normalized([356, 278.5, 712, 557], 712, 557) == [500, 500, 1000, 1000]
    assert iou([0, 0, 10, 10], [0, 0, 10, 10]) == 1.0
    assert iou([0, 0, 10, 10], [10, 10, 20, 20]) == 0.0
    assert iou([0, 0, 10, 10], [5, 0, 15, 10]) == pytest.approx(1 / 3)
    assert iou([10, 10, 0, 0], [0, 0, 10, 10]) == 0.0  # reversed corners: a malformed box, as the released IoU
    assert iou([0, 10, 10, 0], [0, 0, 10, 10]) == 0.0 and iou([0, 0, 10, 10], [10, 0, 0, 10]) == 0.0
    assert iou([3, 3, 3, 9], [0, 0, 10, 10]) == 0.0  # degenerate
