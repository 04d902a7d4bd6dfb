"""tinyrs: a notebook-first reproduction of "TinyRS-R1: Compact Vision Language Model for Remote Sensing"."""
__version__ = "0.1.0"
