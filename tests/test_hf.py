"""VHM entries -> datasets.Dataset for TRL: prompt/completion, image first, images as RGB."""
import json
import shutil

from tinyrs.data.hf import to_messages, to_sft_dataset
from tinyrs.data.vhm import make_entry, read_json_list


def test_prompt_completion_with_image_first(toy_build):
    entries = read_json_list(toy_build / "instruct.json")[:8]
    ds = to_sft_dataset(entries, toy_build / "images")
    row = ds[0]
    user = row["prompt"][0]
    assert user["role"] == "user" and user["content"][0]["type"] == "image"
    assert user["content"][1]["text"] == entries[0]["conversations"][0]["value"].replace("<image>\n", "")
    assert row["completion"][0]["content"][0]["text"] == entries[0]["conversations"][1]["value"]
    assert row["images"][0].mode == "RGB" and len(ds) == 8


def test_rgba_and_geotiff_reach_trl_as_rgb(tmp_path, fixtures_dir):
    root = tmp_path / "img"
    (root / "x").mkdir(parents=True)
    for n in ["dota_P0004_patch_rgba.png", "rsvqa_lr_0.tif"]:
        shutil.copy(fixtures_dir / "real_images" / n, root / "x" / n)
    entries = [make_entry(n, "x", "describe", "an image", "IT") for n in ["dota_P0004_patch_rgba.png", "rsvqa_lr_0.tif"]]
    ds = to_sft_dataset(entries, root)
    assert [r["images"][0].mode for r in ds] == ["RGB", "RGB"]


def test_multi_turn_keeps_history_in_the_prompt():
    e = {"image": "a.jpg", "conversations": [
        {"from": "human", "value": "<image>\n{VQA} Is there a ship?"}, {"from": "gpt", "value": "yes"},
        {"from": "human", "value": "How many?"}, {"from": "gpt", "value": "2"}]}
    prompt, completion = to_messages(e, system="sys")
    assert [m["role"] for m in prompt] == ["system", "user", "assistant", "user"]
    assert completion[0]["content"][0]["text"] == "2"
    assert json.dumps(prompt).count('"image"') == 1


def test_every_answer_of_a_multi_turn_conversation_is_trained(tmp_path):
    """The released trainer puts loss on every assistant turn; here each answer is a row of its own."""
    from PIL import Image

    (tmp_path / "x").mkdir()
    Image.new("RGB", (32, 32)).save(tmp_path / "x" / "a.jpg")
    e = {"id": "e1", "image": "a.jpg", "source_dataset": "x", "conversations": [
        {"from": "human", "value": "<image>\n{VQA} Is there a ship?"}, {"from": "gpt", "value": "yes"},
        {"from": "human", "value": "How many?"}, {"from": "gpt", "value": "2"}]}
    single = make_entry("a.jpg", "x", "describe", "an image", "IT")
    ds = to_sft_dataset([e, single], tmp_path)
    assert [r["completion"][0]["content"][0]["text"] for r in ds] == ["yes", "2", "an image"]
    assert [len(r["prompt"]) for r in ds] == [1, 3, 1] and ds["id"][:2] == ["e1#1", "e1#3"]


def test_stage_r_and_its_probes_prompt_alike(tmp_path):
    """GRPO asks a multi-turn entry's last question alone (the system prompt first, the think instruction
    after it); the reward probes of notebooks 05 and 07 ask exactly what training asks."""
    from PIL import Image

    from tinyrs.data.hf import grpo_prompt, to_grpo_dataset

    Image.new("RGB", (32, 32)).save(tmp_path / "a.png")
    e = {"id": "x", "image": "a.png", "conversations": [
        {"from": "human", "value": "<image>\n{VQA} Is there a ship?"}, {"from": "gpt", "value": "yes"},
        {"from": "human", "value": "{VQA} How many?"}, {"from": "gpt", "value": "2"}]}
    p = grpo_prompt(e, "Think first.", "You are helpful.")
    assert [m["role"] for m in p] == ["system", "user"]
    assert p[1]["content"] == [{"type": "image"}, {"type": "text", "text": "{VQA} How many?\nThink first."}]
    row = to_grpo_dataset([e], tmp_path, "Think first.", "You are helpful.")[0]
    stored = [{**m, "content": [{k: v for k, v in c.items() if v is not None} for c in m["content"]]}
              for m in row["prompt"]]  # Arrow gives every content part every field (None where unset)
    assert stored == p and row["solution"] == "2"


def test_answer_types_of_real_vhm_entries():
    """Without the toy build's qa_meta (real VHM data, the paper profile), the answer type that chooses the
    reward comes from the entry: {VG} or a lone box -> grounding (IoU), a long {IT} answer -> open (judge),
    everything else -> closed (exact match)."""
    from tinyrs.data.hf import answer_type_of

    def entry(question, answer):
        return make_entry("a.jpg", "src", question, answer)

    assert answer_type_of(entry("{VG} the red car", "[[10, 20, 30, 40]]")) == "grounding"
    assert answer_type_of(entry("Where is the ship?", "[[1, 2, 3, 4]]")) == "grounding"
    assert answer_type_of(entry("{IT} Describe the image.", "A harbour with three ships and a pier.")) == "open"
    assert answer_type_of(entry("{IT} What is it?", "a harbour")) == "closed"  # short: exact match
    assert answer_type_of(entry("{VQA} Is there a ship?", "yes")) == "closed"
    assert answer_type_of(entry("{CLS} Classify the image.", "harbour")) == "closed"
    meta = {"x": {"answer_type": "open"}}
    assert answer_type_of({**entry("{VQA} Is there a ship?", "yes"), "id": "x"}, meta) == "open"  # toy: recorded


def test_the_loss_falls_on_the_answer_only(toy_checkpoint, toy_build, tmp_path):
    """What TRL's collator labels for a stage's SFT config: the answer and its end token, not the image or the question."""
    from trl import SFTTrainer

    from tinyrs.model import load_model, load_processor
    from tinyrs.train.sft import sft_config

    entries = read_json_list(toy_build / "instruct.json")[:3]
    processor = load_processor(toy_checkpoint)
    trainer = SFTTrainer(model=load_model(toy_checkpoint), args=sft_config(tmp_path / "out", max_steps=1),
                         train_dataset=to_sft_dataset(entries, toy_build / "images"), processing_class=processor)
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(3)])
    for e, ids, labels in zip(entries, batch["input_ids"], batch["labels"]):
        trained = processor.tokenizer.decode(ids[labels != -100])
        assert trained.strip() == e["conversations"][-1]["value"] + "<|im_end|>", trained
