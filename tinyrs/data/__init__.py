"""Dataset construction (the paper's Section II): VHM JSON, the toy build, balancing, data cards."""
from .balance import balance, balance_factors
from .images import ImageLoadError, load_rgb
from .vhm import (DataError, answer_text, human_text, read_eval_file, read_json_list, read_training_file, split_tag,
                  task_of, write_json)

__all__ = ["balance", "balance_factors", "ImageLoadError", "load_rgb", "DataError", "answer_text", "human_text",
           "read_eval_file", "read_json_list", "read_training_file", "split_tag", "task_of", "write_json"]
