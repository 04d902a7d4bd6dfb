"""Scene metadata: what an image shows, with exact boxes. Saved beside the images as JSON
lines (`scenes.jsonl`) so teachers, judges and notebooks can read the ground truth."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

from .spec import SCENES, position_name


@dataclass
class WorldObject:
    kind: str
    color: str
    box: list[int]  # pixel box [x1, y1, x2, y2], x2/y2 exclusive, inside the image
    angle: float = 0.0  # heading in degrees (0 = pointing right), for ships and airplanes

    @property
    def center(self) -> tuple[float, float]:
        x1, y1, x2, y2 = self.box
        return (x1 + x2) / 2, (y1 + y2) / 2

    @property
    def area(self) -> int:
        x1, y1, x2, y2 = self.box
        return (x2 - x1) * (y2 - y1)


@dataclass
class Scene:
    image: str  # file name relative to the image root
    scene_class: str
    width: int
    height: int
    zoom: float
    modality: str = "optical"
    objects: list[WorldObject] = field(default_factory=list)
    landcover: dict[str, float] = field(default_factory=dict)  # fraction of pixels per land cover
    layout: dict = field(default_factory=dict)  # e.g. {"water_side": "left", "runway": "horizontal"}

    @property
    def setting(self) -> str:
        return SCENES[self.scene_class]["setting"]

    def count(self, kind: str) -> int:
        return sum(o.kind == kind for o in self.objects)

    def of_kind(self, kind: str) -> list[WorldObject]:
        return [o for o in self.objects if o.kind == kind]

    def kinds_present(self) -> list[str]:
        return sorted({o.kind for o in self.objects})

    def position(self, obj: WorldObject) -> str:
        return position_name(*obj.center, self.width, self.height)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["setting"] = self.setting
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Scene":
        d = {k: v for k, v in d.items() if k != "setting"}
        d["objects"] = [WorldObject(**o) for o in d.get("objects", [])]
        return cls(**d)
