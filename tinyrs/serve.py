"""`tinyrs serve CHECKPOINT`: transformers' own OpenAI-compatible server (`transformers serve`),
able to serve Qwen2-VL checkpoints on a machine without torchvision.

transformers' server loads processors with AutoProcessor, and the stock Qwen2-VL processor needs
torchvision for its video half. Where torchvision is missing, the server's processor loader falls
back to tinyrs's image-only Qwen2-VL processor; everything else is the unmodified server.
"""
from __future__ import annotations

import importlib.util
import sys


def _use_image_only_processor_fallback() -> None:
    from transformers.cli.serving import model_manager
    from transformers.cli.serving.utils import split_revision

    from .model import load_processor

    original = model_manager.ModelManager._load_processor
    if getattr(original, "_tinyrs", False):
        return

    def _load_processor(self, model_id_and_revision, gguf_file=None):
        try:
            return original(self, model_id_and_revision, gguf_file)
        except (OSError, ImportError, ValueError):  # the video processor of a Qwen2-VL checkpoint
            model_id, _ = split_revision(model_id_and_revision)
            return load_processor(model_id)

    _load_processor._tinyrs = True
    model_manager.ModelManager._load_processor = _load_processor


def main(argv: list[str] | None = None) -> int:
    """Arguments are those of `transformers serve` (see `tinyrs serve --help`)."""
    if importlib.util.find_spec("torchvision") is None:
        _use_image_only_processor_fallback()
    from transformers.cli.transformers import app

    args = list(sys.argv[1:] if argv is None else argv)
    if args and not args[0].startswith("-"):  # the checkpoint to serve: a clear line, not the server's traceback
        from .model import not_a_checkpoint

        if problem := not_a_checkpoint(args[0]):
            print(f"error: {args[0]}: {problem}", file=sys.stderr)
            return 2
    app(["serve", *args], prog_name="tinyrs")  # typer adds the "serve" of the subcommand
    return 0


if __name__ == "__main__":
    sys.exit(main())
