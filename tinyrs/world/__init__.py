"""The synthetic remote-sensing world: the toy profile's stand-in for VHM and the benchmark images.

A scene is fully determined by (seed, split, index): the same seed gives the same bytes.
Each image comes from a *source*, the toy counterpart of one of VHM's source datasets
(AID, RSVQA-LR, DIOR-RSVG, ...), which fixes its size, zoom (resolution) and scene classes.

    >>> from tinyrs.world import World
    >>> world = World(seed=0, sources={"demo": {"sizes": [[128, 128]], "zoom": [1.0, 1.0]}})
    >>> image, scene = world.render("demo-split", 0, "demo")
    >>> image.shape, scene.scene_class in SCENE_CLASSES
    ((128, 128, 3), True)
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import numpy as np

from .language import QA, caption, make_qa
from .render import render_scene
from .scene import Scene, WorldObject
from .spec import MODALITIES, OBJECT_KINDS, SCENE_CLASSES, SCENES

__all__ = ["World", "Source", "Scene", "WorldObject", "QA", "SCENE_CLASSES", "OBJECT_KINDS", "caption", "make_qa"]


@dataclass
class Source:
    """How one source dataset's images look: sizes (w, h), zoom range, scene classes, modalities."""
    name: str
    sizes: list = field(default_factory=lambda: [[128, 128]])
    zoom: tuple = (1.0, 1.0)
    classes: list | None = None  # world scene classes this source shows (None: all)
    alias: dict = field(default_factory=dict)  # world class -> this dataset's class name
    modalities: dict = field(default_factory=lambda: {"optical": 1.0})
    subtypes: list | None = None  # question subtypes this source asks (VQA sources)

    def __post_init__(self):
        unknown = [c for c in (self.classes or []) if c not in SCENES]
        if unknown:
            raise ValueError(f"source {self.name!r}: unknown scene classes {unknown}; known: {SCENE_CLASSES}")
        bad = [m for m in self.modalities if m not in MODALITIES]
        if bad:
            raise ValueError(f"source {self.name!r}: unknown modalities {bad}; known: {list(MODALITIES)}")

    @property
    def class_names(self) -> list[str]:
        """The class list as this dataset names it (what a classification question offers)."""
        return [self.alias.get(c, c) for c in (self.classes or SCENE_CLASSES)]


class World:
    def __init__(self, seed: int, sources: dict[str, dict | Source]):
        self.seed = int(seed)
        self.sources = {n: s if isinstance(s, Source) else Source(name=n, **s) for n, s in sources.items()}

    def rng(self, split: str, index: int, attempt: int = 0) -> np.random.Generator:
        return np.random.default_rng([self.seed, zlib.crc32(split.encode()), int(index), int(attempt)])

    def render(self, split: str, index: int, source: str, scene_class: str | None = None,
               image_name: str | None = None, attempt: int = 0) -> tuple[np.ndarray, Scene]:
        """Render image `index` of `split` as seen by `source`; returns (HxWx3 uint8, Scene).
        `attempt` draws a different scene for the same slot (used when a question needs one)."""
        src = self.sources[source]
        rng = self.rng(split, index, attempt)
        classes = src.classes or SCENE_CLASSES
        if scene_class is None:
            scene_class = classes[rng.integers(len(classes))]
        w, h = src.sizes[rng.integers(len(src.sizes))]
        zoom = float(rng.uniform(*src.zoom))
        mods, probs = zip(*src.modalities.items())
        modality = mods[rng.choice(len(mods), p=np.asarray(probs) / sum(probs))]
        name = image_name or f"{split}_{index:06d}.jpg"
        return render_scene(scene_class, int(w), int(h), zoom, modality, rng, name)

    def question_rng(self, split: str, index: int, k: int = 0, attempt: int = 0) -> np.random.Generator:
        """A separate stream for questions, so asking more questions never changes the image."""
        return np.random.default_rng([self.seed, zlib.crc32(split.encode()), int(index), int(attempt), 1000 + k])
