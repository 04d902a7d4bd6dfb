"""Tokenizer, processor and Qwen2-VL model factory: one code path for the toy and paper profiles.

- toy: a byte-level BPE tokenizer trained on the world's text with Qwen2-VL's special tokens,
  a tiny `Qwen2VLConfig` (sizes in tinyrs/configs/toy/model.yaml), built from scratch.
- paper: Qwen2-VL-2B-Instruct, or any Qwen2-VL checkpoint, from a local path or a hub id.

transformers 5's stock `Qwen2VLProcessor` needs torchvision for its video processor, and
there is no CPU torchvision wheel; `ImageOnlyQwen2VLProcessor` is the same processor without
the video half. Saved checkpoints still name the stock classes, so a GPU machine with
torchvision loads them with `AutoProcessor` unchanged.
"""
from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable

# Qwen2-VL's special tokens, in the order of the real vocabulary.
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
                  "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>",
                  "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>"]
DEFAULT_SYSTEM = "You are a helpful assistant."
REASONING_TAGS = ["<reasoning>", "</reasoning>", "<answer>", "</answer>"]

# Qwen2-VL-Instruct's chat template (the released one), so toy and paper models see the same prompt layout.
QWEN2VL_CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}{% if add_vision_id %}Picture {{ image_count.value }}: "
    "{% endif %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}{% set video_count.value = video_count.value + 1 %}"
    "{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

# Qwen2-VL-2B-Instruct's published dimensions (config.json on the hub), for the meta-device dry run.
QWEN2VL_2B = {
    "text": dict(vocab_size=151936, hidden_size=1536, intermediate_size=8960, num_hidden_layers=28,
                 num_attention_heads=12, num_key_value_heads=2, max_position_embeddings=32768,
                 rope_parameters={"rope_type": "default", "mrope_section": [16, 24, 24], "rope_theta": 1000000.0},
                 tie_word_embeddings=True),
    "vision": dict(depth=32, embed_dim=1280, hidden_size=1536, mlp_ratio=4, num_heads=16, patch_size=14,
                   spatial_merge_size=2, temporal_patch_size=2),
}


# Qwen2-VL-7B-Instruct's published dimensions (Table V's larger model).
QWEN2VL_7B = {
    "text": dict(vocab_size=152064, hidden_size=3584, intermediate_size=18944, num_hidden_layers=28,
                 num_attention_heads=28, num_key_value_heads=4, max_position_embeddings=32768,
                 rope_parameters={"rope_type": "default", "mrope_section": [16, 24, 24], "rope_theta": 1000000.0},
                 tie_word_embeddings=False),
    "vision": dict(QWEN2VL_2B["vision"], hidden_size=3584),
}
PUBLISHED = {"Qwen/Qwen2-VL-2B-Instruct": QWEN2VL_2B, "Qwen/Qwen2-VL-7B-Instruct": QWEN2VL_7B,
             "aybora/Qwen2-VL-TinyRS": QWEN2VL_2B, "aybora/Qwen2-VL-TinyRS-PRETRAIN": QWEN2VL_2B,
             "aybora/Qwen2-VL-TinyRS-CoT": QWEN2VL_2B, "aybora/Qwen2-VL-TinyRS-R1": QWEN2VL_2B}


def _processor_classes():
    from transformers import Qwen2VLProcessor
    from transformers.processing_utils import ProcessorMixin

    class ImageOnlyQwen2VLProcessor(Qwen2VLProcessor):
        """Qwen2VLProcessor with an image processor and a tokenizer only (no torchvision needed)."""

        def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs):
            # kwargs: what the stock processor also takes (its video processor); this one has none
            self.image_token = getattr(tokenizer, "image_token", None) or "<|image_pad|>"
            self.video_token = getattr(tokenizer, "video_token", None) or "<|video_pad|>"
            self.image_token_id = tokenizer.convert_tokens_to_ids(self.image_token)
            self.video_token_id = tokenizer.convert_tokens_to_ids(self.video_token)
            ProcessorMixin.__init__(self, image_processor, tokenizer, chat_template=chat_template)

        def save_pretrained(self, save_directory, **kwargs):
            out = super().save_pretrained(save_directory, **kwargs)
            cfg = Path(save_directory) / "processor_config.json"
            if cfg.exists():  # name the stock class, so AutoProcessor loads it where torchvision exists
                data = json.loads(cfg.read_text())
                data["processor_class"] = "Qwen2VLProcessor"
                cfg.write_text(json.dumps(data, indent=2) + "\n")
            return out

    return ImageOnlyQwen2VLProcessor


def image_processor(min_pixels: int = 56 * 56, max_pixels: int = 28 * 28 * 1280):
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    return Qwen2VLImageProcessorPil(min_pixels=min_pixels, max_pixels=max_pixels)


def make_processor(tokenizer, img_proc, chat_template: str | None = None):
    cls = _processor_classes()
    return cls(image_processor=img_proc, tokenizer=tokenizer,
               chat_template=chat_template or getattr(tokenizer, "chat_template", None) or QWEN2VL_CHAT_TEMPLATE)


def load_processor(path_or_id: str | Path, min_pixels: int | None = None, max_pixels: int | None = None):
    """The image-only processor of a saved checkpoint (local path or hub id)."""
    from transformers import AutoTokenizer
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    kwargs = {k: v for k, v in (("min_pixels", min_pixels), ("max_pixels", max_pixels)) if v is not None}
    with named_checkpoint_errors(path_or_id, marker=None):  # a processor can be saved on its own
        tok = AutoTokenizer.from_pretrained(str(path_or_id))
        img = Qwen2VLImageProcessorPil.from_pretrained(str(path_or_id), **kwargs)
    template = None
    p = Path(str(path_or_id))
    if (p / "chat_template.jinja").exists():
        template = (p / "chat_template.jinja").read_text()
    elif (p / "chat_template.json").exists():
        template = json.loads((p / "chat_template.json").read_text())["chat_template"]
    return make_processor(tok, img, template)


# --- the toy tokenizer ------------------------------------------------------------------------------

def train_tokenizer(texts: Iterable[str], vocab_size: int = 1024):
    """A byte-level BPE tokenizer with Qwen2-VL's special tokens and digit-by-digit numbers
    (as Qwen2's pre-tokenizer splits them), trained on `texts`."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                                 pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts, trainer)
    # left padding by default: batched generation (and TRL's GRPO re-processing of prompts) expects it;
    # training collators ask for right padding explicitly
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                   unk_token=None, bos_token=None, clean_up_tokenization_spaces=False,
                                   model_max_length=32768, padding_side="left")
    # The reasoning tags as single, ordinary tokens (decoding keeps them): with byte-level pre-splitting they
    # would be four tokens each, and a tiny model sampling at temperature 1 often derails inside a tag.
    fast.add_tokens([AddedToken(t, normalized=False, special=False) for t in REASONING_TAGS])
    fast.chat_template = QWEN2VL_CHAT_TEMPLATE
    return fast


def toy_corpus(build_dir: str | Path, extra: Iterable[str] = ()) -> list[str]:
    """The texts a toy tokenizer learns from: every question and answer of a build, plus the
    reasoning tags and prompts the later stages use."""
    from .data.vhm import read_json_list

    build_dir = Path(build_dir)
    texts = [DEFAULT_SYSTEM]
    files = [build_dir / n for n in ("pretrain.json", "instruct.json", "rl.json")]
    files += sorted((build_dir / "eval").glob("*.json"))
    for f in files:
        if f.exists():
            for e in read_json_list(f):
                texts.extend(t["value"].replace("<image>", "") for t in e["conversations"])
    texts.extend(extra)
    texts.extend(["<reasoning> </reasoning> <answer> </answer>"] * 50)
    return texts


# --- models ---------------------------------------------------------------------------------------

def toy_model_config(tokenizer, text: dict, vision: dict):
    """A tiny Qwen2VLConfig: same architecture as Qwen2-VL-2B, sizes from the toy recipe."""
    from transformers import Qwen2VLConfig

    text = dict(text)
    head_dim = text["hidden_size"] // text["num_attention_heads"]
    half = head_dim // 2  # M-RoPE splits the rotary frequencies into temporal / height / width sections
    mrope = text.pop("mrope_section", None) or [half - 2 * (half // 3), half // 3, half // 3]
    theta = float(text.pop("rope_theta", 10000.0))
    if sum(mrope) != half:
        raise ValueError(f"mrope_section {mrope} must sum to head_dim / 2 = {half}")
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    text_cfg = dict(text, vocab_size=len(tokenizer), bos_token_id=ids["<|endoftext|>"],
                    eos_token_id=ids["<|im_end|>"], pad_token_id=ids["<|endoftext|>"],
                    rope_parameters={"rope_type": "default", "mrope_section": mrope, "rope_theta": theta})
    tie = text_cfg.pop("tie_word_embeddings", True)
    vision_cfg = dict(vision, hidden_size=text["hidden_size"])
    return Qwen2VLConfig(text_config=text_cfg, vision_config=vision_cfg, image_token_id=ids["<|image_pad|>"],
                         video_token_id=ids["<|video_pad|>"], vision_start_token_id=ids["<|vision_start|>"],
                         vision_end_token_id=ids["<|vision_end|>"], tie_word_embeddings=tie)


def build_toy_model(tokenizer, text: dict, vision: dict, seed: int = 0):
    import torch
    from transformers import GenerationConfig, Qwen2VLForConditionalGeneration

    torch.manual_seed(seed)
    model = Qwen2VLForConditionalGeneration(toy_model_config(tokenizer, text, vision))
    model.generation_config = GenerationConfig(
        eos_token_id=[tokenizer.convert_tokens_to_ids("<|im_end|>"), tokenizer.convert_tokens_to_ids("<|endoftext|>")],
        pad_token_id=tokenizer.pad_token_id, do_sample=False)
    return model


def create_toy_checkpoint(out_dir: str | Path, build_dir: str | Path, cfg: dict, seed: int = 0) -> Path:
    """Train the toy tokenizer on a build's text, build the tiny model, save both (HF format)."""
    out_dir = Path(out_dir)
    tok = train_tokenizer(toy_corpus(build_dir), int(cfg["tokenizer"]["vocab_size"]))
    proc = make_processor(tok, image_processor(int(cfg["image"]["min_pixels"]), int(cfg["image"]["max_pixels"])))
    model = build_toy_model(tok, cfg["text"], cfg["vision"], seed)
    save_checkpoint(model, proc, out_dir)
    return out_dir


def save_checkpoint(model, processor, out_dir: str | Path, state_dict: dict | None = None) -> Path:
    """`state_dict`: the full weights gathered from sharded processes (ZeRO-3, FSDP); else the model's own."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with _no_hf_bars():
        model.save_pretrained(out_dir, **({"state_dict": state_dict} if state_dict is not None else {}))
    processor.save_pretrained(out_dir)
    return out_dir


def load_model(path_or_id: str | Path, dtype: str = "float32", device_map=None, **kwargs):
    """Qwen2-VL from a local checkpoint directory or a hub id (Qwen/Qwen2-VL-2B-Instruct, aybora/...)."""
    import torch
    from transformers import Qwen2VLForConditionalGeneration

    with named_checkpoint_errors(path_or_id), _no_hf_bars():
        return Qwen2VLForConditionalGeneration.from_pretrained(
            str(path_or_id), dtype=getattr(torch, dtype) if isinstance(dtype, str) else dtype, device_map=device_map,
            **kwargs)


def load_for_inference(path_or_id: str | Path):
    """A model ready to answer: bf16 on the GPU where there is one (the released harness evaluates on GPUs),
    else float32 on the CPU."""
    import torch

    cuda = torch.cuda.is_available()
    return load_model(path_or_id, dtype="bfloat16" if cuda else "float32").to("cuda" if cuda else "cpu").eval()


@contextmanager
def _no_hf_bars():
    """Loading and saving a checkpoint takes a moment; its progress bars would only clutter notebooks."""
    from transformers.utils import logging as hf_logging

    was = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was:
            hf_logging.enable_progress_bar()


def is_path_name(name: str) -> bool:
    """A local path rather than a hub id (which is always owner/name)."""
    return name.startswith(("/", ".", "~")) or name.count("/") > 1


def not_a_checkpoint(name: str, marker: str | None = "config.json") -> str | None:
    """Why a local `name` cannot be loaded as a checkpoint (a folder with `marker`); None for one, or a hub id."""
    p = Path(name)
    if p.is_dir():
        return None if not marker or (p / marker).exists() else f"a folder without {marker}, not a checkpoint"
    return "no such checkpoint folder" if is_path_name(name) else None


class CheckpointError(OSError):
    """A checkpoint that cannot be loaded (missing weights or processor files, an unknown hub id offline)."""


@contextmanager
def named_checkpoint_errors(path_or_id, marker: str | None = "config.json"):
    """Re-raise loading failures with the checkpoint's name and what was tried."""
    if problem := not_a_checkpoint(str(path_or_id), marker):
        raise FileNotFoundError(f"{path_or_id}: {problem}")
    from safetensors import SafetensorError

    name = f"cannot load Qwen2-VL checkpoint {str(path_or_id)!r}"
    config = Path(str(path_or_id)) / "config.json"
    if config.is_file():  # a malformed config fails deep inside transformers with an error naming neither
        try:
            fields = json.loads(config.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as e:
            raise CheckpointError(f"{name}: {config} is not JSON ({e})") from e
        if not isinstance(fields, dict) or "model_type" not in fields:
            raise CheckpointError(f"{name}: {config} is not a model config (a JSON object with a model_type)")
    try:
        yield
    except (OSError, SafetensorError, json.JSONDecodeError, UnicodeDecodeError) as e:  # missing, truncated or
        # malformed files; other errors (a library's, a bug) keep their traceback
        kind = "local folder" if Path(str(path_or_id)).exists() else "hub id (not a local folder)"
        raise CheckpointError(f"{name} as a {kind}: {type(e).__name__}: {e}") from e


def count_parameters(model) -> dict[str, int]:
    groups = {"vision": 0, "language": 0, "lm_head": 0}
    seen = set()
    for name, p in model.named_parameters():
        if id(p) in seen:
            continue
        seen.add(id(p))
        key = "vision" if ".visual." in f".{name}" or name.startswith("model.visual") else \
            "lm_head" if name.startswith("lm_head") else "language"
        groups[key] += p.numel()
    groups["total"] = sum(groups.values())
    return groups


def untrained_twin(checkpoint: str | Path, out_dir: str | Path, seed: int = 0) -> Path:
    """The same architecture and tokenizer as `checkpoint`, with fresh random weights (a 'no training' row)."""
    import torch
    from transformers import Qwen2VLForConditionalGeneration

    processor, trained = load_processor(checkpoint), load_model(checkpoint)
    torch.manual_seed(seed)
    model = Qwen2VLForConditionalGeneration(trained.config)
    model.generation_config = trained.generation_config
    return save_checkpoint(model, processor, out_dir)
