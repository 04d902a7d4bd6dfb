"""Evaluation with vLLM (GPU machines): the same prompts, greedy, through `vllm.LLM.generate`.

The chat text is rendered by the checkpoint's own processor exactly as for the transformers engine
(`generate.generate`), and the image goes as `multi_modal_data`. vLLM resizes the image with its own
image processor (Qwen2-VL's fast, torchvision one; ours is the PIL one, as in training), so pixel values
can differ slightly and a greedy answer can flip: not yet compared on a GPU (`tinyrs eval --backend vllm`
against `--backend transformers` on the same questions would show it). It is used when vLLM is installed
and a GPU is visible (`backend="auto"`), or when asked for (`backend="vllm"`).
"""
from __future__ import annotations

import importlib.util


def vllm_available() -> bool:
    if importlib.util.find_spec("vllm") is None:
        return False
    import torch

    return torch.cuda.is_available()


def choose_backend(backend: str) -> str:
    """'auto' -> 'vllm' where vLLM can run, else 'transformers'."""
    if backend not in ("auto", "vllm", "transformers"):
        raise ValueError(f"backend must be auto, vllm or transformers, not {backend!r}")
    if backend == "auto":
        return "vllm" if vllm_available() else "transformers"
    if backend == "vllm" and importlib.util.find_spec("vllm") is None:
        raise RuntimeError("backend 'vllm' asked for, but vllm is not installed (pip install -c constraints.txt vllm==0.30.0, on a GPU machine)")
    return backend


def context_length(model_path: str) -> int | None:
    """The longest sequence the checkpoint's language model takes (max_position_embeddings)."""
    from transformers import AutoConfig

    cfg = AutoConfig.from_pretrained(str(model_path))
    return getattr(getattr(cfg, "text_config", None), "max_position_embeddings", None) or \
        getattr(cfg, "max_position_embeddings", None)


class VLLMEngine:
    """A loaded vLLM model and its processor; `generate` mirrors `generate.generate`'s signature."""

    name = "vllm"

    def __init__(self, model_path: str, processor, max_model_len: int = 8192, dtype: str = "bfloat16",
                 gpu_memory_utilization: float = 0.85, **engine_kwargs):
        from vllm import LLM

        self.processor = processor
        # vLLM refuses a length beyond the model's own (the toy's is 4,096)
        max_model_len = min(max_model_len, context_length(model_path) or max_model_len)
        self.llm = LLM(model=str(model_path), max_model_len=max_model_len, dtype=dtype,
                       gpu_memory_utilization=gpu_memory_utilization,
                       limit_mm_per_prompt={"image": 1, "video": 0},  # no memory kept back for videos
                       **engine_kwargs)

    def close(self) -> None:
        """Free the GPU memory the engine holds (vLLM frees it when the engine is collected)."""
        import gc

        import torch

        self.llm = None
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    def requests(self, prompts: list[list[dict]], images: list[list]) -> list[dict]:
        """vLLM prompt dicts: the chat text as the processor renders it, the image as multi-modal data."""
        out = []
        for p, ims in zip(prompts, images):
            text = self.processor.apply_chat_template(p, add_generation_prompt=True, tokenize=False)
            req = {"prompt": text}
            if ims:
                req["multi_modal_data"] = {"image": ims[0] if len(ims) == 1 else list(ims)}
            out.append(req)
        return out

    def generate(self, prompts: list[list[dict]], images: list[list], max_new_tokens: int = 64,
                 progress: bool = True, **_ignored) -> list[str]:
        from vllm import SamplingParams

        params = SamplingParams(temperature=0.0, max_tokens=max_new_tokens, skip_special_tokens=True)
        outs = self.llm.generate(self.requests(prompts, images), params, use_tqdm=progress)
        return [o.outputs[0].text.strip() for o in outs]
