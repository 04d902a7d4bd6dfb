"""Rendering a scene: land cover with textures, then objects with exact boxes.

Fast by design (numpy for fields, PIL for shapes): a 128 px scene takes a few
milliseconds, so the toy profile makes thousands of images in seconds.
"""
from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

from .scene import Scene, WorldObject
from .spec import (BARE, COLOR_RGB, FIELD, LANDCOVER_NAMES, OBJECTS, PAVED, ROAD, SAND, SCENES, VEGETATION,
                   WATER)

# Scene-specific object rules beyond spec.py: size multipliers and roof palettes.
SIZE_SCALE = {("industrial", "building"): 1.5, ("commercial", "building"): 1.3, ("residential", "building"): 0.8,
              ("harbor", "storage tank"): 1.0}
BUILDING_COLORS = {
    "residential": ["red", "brown", "gray"],
    "commercial": ["white", "gray", "blue"],
    "industrial": ["blue", "gray", "white"],
    "airport": ["white", "gray"],
    "harbor": ["gray", "blue", "white"],
}
RURAL_BUILDING_COLORS = ["red", "brown", "white"]


class Canvas:
    """The image being drawn, its land-cover label map and the layout facts recorded so far."""

    def __init__(self, width: int, height: int, zoom: float, rng: np.random.Generator):
        self.w, self.h, self.zoom, self.rng = width, height, zoom, rng
        self.img = np.zeros((height, width, 3), np.float32)
        self.label = np.zeros((height, width), np.uint8)
        self.layout: dict = {}
        self.slots: dict[str, list[tuple[float, float, float]]] = {}  # kind -> (cx, cy, angle)
        self.yy, self.xx = np.mgrid[0:height, 0:width].astype(np.float32)

    @property
    def side(self) -> int:
        return min(self.w, self.h)

    def noise(self, cell: float) -> np.ndarray:
        """Smooth value noise in [0, 1] with features about `cell` pixels wide."""
        gh, gw = max(2, int(self.h / cell) + 2), max(2, int(self.w / cell) + 2)
        grid = Image.fromarray(self.rng.random((gh, gw), dtype=np.float32), mode="F")
        return np.asarray(grid.resize((self.w, self.h), Image.BILINEAR), np.float32)

    def paint(self, mask: np.ndarray | None, rgb, label: int | None, amp: float = 12.0, cell: float = 6.0):
        """Fill `mask` (None: the whole image) with a textured colour and optionally a land-cover label."""
        tex = self.noise(cell)
        if mask is None:
            self.img[:] = np.asarray(rgb, np.float32) + (tex - 0.5)[..., None] * amp
            if label is not None:
                self.label[:] = label
            return
        self.img[mask] = np.asarray(rgb, np.float32) + (tex[mask] - 0.5)[:, None] * amp
        if label is not None:
            self.label[mask] = label

    def side_mask(self, side: str, fraction: float, wobble: float = 0.04) -> np.ndarray:
        """Pixels within `fraction` of the image from `side`, with a slightly irregular edge."""
        n = (self.noise(self.side / 3) - 0.5) * 2 * wobble
        u = {"left": self.xx / self.w, "right": 1 - self.xx / self.w,
             "top": self.yy / self.h, "bottom": 1 - self.yy / self.h}[side]
        return u < fraction + n

    def strip(self, horizontal: bool, center: float, width: float) -> np.ndarray:
        """A straight band across the image (roads, runways)."""
        coord = self.yy if horizontal else self.xx
        return np.abs(coord - center) < width / 2


def _rgb_jitter(rng, rgb, amount=12):
    return tuple(float(np.clip(c + rng.uniform(-amount, amount), 0, 255)) for c in rgb)


# --- land-cover layouts, one per scene class -------------------------------------------------

def _forest(c: Canvas):
    c.paint(None, (45, 85, 42), VEGETATION, amp=28, cell=2.5)
    c.img += ((c.noise(10) - 0.5) * 30)[..., None]
    if c.rng.random() < 0.4:  # a clearing, where a forester's hut may stand
        cx, cy, r = c.rng.uniform(0.25, 0.75) * c.w, c.rng.uniform(0.25, 0.75) * c.h, c.side * c.rng.uniform(0.12, 0.2)
        clearing = (c.xx - cx) ** 2 + (c.yy - cy) ** 2 < r ** 2
        c.paint(clearing, (140, 120, 85), BARE, amp=14)


def _farmland(c: Canvas):
    rng = c.rng
    palette = [(115, 155, 60), (175, 170, 80), (205, 185, 115), (140, 112, 72), (90, 140, 68), (160, 180, 90)]
    ncols = rng.integers(2, 5)
    xs = np.sort(np.concatenate([[0, c.w], rng.uniform(0.15, 0.85, ncols - 1) * c.w]))
    for x0, x1 in zip(xs[:-1], xs[1:]):
        nrows = rng.integers(1, 4)
        ys = np.sort(np.concatenate([[0, c.h], rng.uniform(0.15, 0.85, nrows - 1) * c.h]))
        for y0, y1 in zip(ys[:-1], ys[1:]):
            field = (c.xx >= x0) & (c.xx < x1) & (c.yy >= y0) & (c.yy < y1)
            rgb = palette[rng.integers(len(palette))]
            c.paint(field, _rgb_jitter(rng, rgb), FIELD, amp=10)
            period = rng.uniform(2.5, 4.5)
            rows = np.sin(2 * np.pi * (c.xx if rng.random() < 0.5 else c.yy) / period) * 9
            c.img[field] += rows[field][:, None]
            edge = field & ((np.abs(c.xx - x0) < 1) | (np.abs(c.yy - y0) < 1))
            c.img[edge] = (95, 80, 55)
    if rng.random() < 0.5:  # a farm track
        horizontal = rng.random() < 0.5
        track = c.strip(horizontal, rng.uniform(0.2, 0.8) * (c.h if horizontal else c.w), max(2, 0.03 * c.side))
        c.paint(track, (150, 130, 100), BARE, amp=8)
    c.layout["rows"] = "parallel crop rows"


def _meadow(c: Canvas):
    c.paint(None, (125, 165, 82), VEGETATION, amp=22, cell=20)
    draw_trees(c, c.rng.integers(3, 10), (50, 95, 45))


def _desert(c: Canvas):
    c.paint(None, (212, 188, 140), SAND, amp=14, cell=12)
    a = c.rng.uniform(0, np.pi)
    period = c.rng.uniform(8, 16) * c.zoom
    phase = (c.xx * np.cos(a) + c.yy * np.sin(a)) / period + 2.5 * c.noise(c.side / 2)
    c.img += (np.sin(2 * np.pi * phase) * 18)[..., None]
    c.layout["dunes"] = "wind-blown dunes"


def _river(c: Canvas):
    rng = c.rng
    c.paint(None, (95, 140, 70), VEGETATION, amp=25, cell=8)
    horizontal = rng.random() < 0.5
    along, across = (c.xx, c.yy) if horizontal else (c.yy, c.xx)
    length, depth = (c.w, c.h) if horizontal else (c.h, c.w)
    center = depth * rng.uniform(0.35, 0.65) + depth * rng.uniform(0.08, 0.16) * np.sin(
        2 * np.pi * along / (length * rng.uniform(0.7, 1.4)) + rng.uniform(0, 6.3))
    width = depth * rng.uniform(0.18, 0.28) * max(0.7, c.zoom)
    bank = np.abs(across - center) < width / 2 + 1.5
    water = np.abs(across - center) < width / 2
    c.paint(bank & ~water, (170, 155, 115), SAND, amp=8)
    c.paint(water, (45, 78, 112), WATER, amp=12, cell=10)
    c.layout["river"] = "horizontal" if horizontal else "vertical"


def _lake(c: Canvas):
    rng = c.rng
    c.paint(None, (100, 145, 72), VEGETATION, amp=24, cell=8)
    cx, cy = c.w * rng.uniform(0.4, 0.6), c.h * rng.uniform(0.4, 0.6)
    rx, ry = c.w * rng.uniform(0.25, 0.38), c.h * rng.uniform(0.25, 0.38)
    d = ((c.xx - cx) / rx) ** 2 + ((c.yy - cy) / ry) ** 2 + 0.5 * (c.noise(c.side / 3) - 0.5)
    c.paint(d < 1, (38, 70, 105), WATER, amp=10, cell=12)
    draw_trees(c, rng.integers(4, 12), (45, 90, 42), avoid=WATER)
    c.layout["water"] = "a lake in the middle"


def _coast(c: Canvas, sea_rgb):
    """Water on one side of the image; returns the side and the water mask."""
    rng = c.rng
    side = ["left", "right", "top", "bottom"][rng.integers(4)]
    water = c.side_mask(side, rng.uniform(0.32, 0.48))
    c.paint(water, sea_rgb, WATER, amp=12, cell=9)
    c.layout["water_side"] = side
    return side, water


def _beach(c: Canvas):
    rng = c.rng
    c.paint(None, (105, 145, 75), VEGETATION, amp=22, cell=8)
    side = ["left", "right", "top", "bottom"][rng.integers(4)]
    sea_frac = rng.uniform(0.3, 0.42)
    sand = c.side_mask(side, sea_frac + rng.uniform(0.14, 0.22), wobble=0.03)
    c.paint(sand, (222, 205, 160), SAND, amp=10)
    water = c.side_mask(side, sea_frac, wobble=0.02)
    c.paint(water, (40, 95, 135), WATER, amp=10, cell=9)
    foam = water & ~c.side_mask(side, sea_frac - 0.025, wobble=0.02)
    c.img[foam] = (200, 215, 220)
    c.layout["water_side"] = side


def _harbor(c: Canvas):
    rng = c.rng
    c.paint(None, (150, 148, 142), PAVED, amp=14)
    side, water = _coast(c, (35, 65, 100))
    horizontal_piers = side in ("left", "right")  # piers run from the shore into the water
    n = rng.integers(1, 4)
    depth = (c.w if horizontal_piers else c.h)
    span = (c.h if horizontal_piers else c.w)
    for k in range(n):
        pos = span * (k + 1) / (n + 1) + rng.uniform(-0.05, 0.05) * span
        width = max(2.0, 0.045 * c.side * c.zoom)
        reach = depth * rng.uniform(0.25, 0.38)
        coord_along = c.xx if horizontal_piers else c.yy
        coord_across = c.yy if horizontal_piers else c.xx
        start = 0 if side in ("left", "top") else depth - reach - depth * 0.3
        pier = (np.abs(coord_across - pos) < width / 2) & (coord_along >= start) & (coord_along < start + reach + depth * 0.3)
        c.paint(pier & water, (165, 160, 150), PAVED, amp=6)
    c.layout["piers"] = int(n)


def _roads(c: Canvas, n_h: int, n_v: int, width_frac: float, rgb=(92, 92, 98)):
    w = max(2.0, width_frac * c.side * c.zoom)
    for _ in range(n_h):
        c.paint(c.strip(True, c.rng.uniform(0.15, 0.85) * c.h, w), rgb, ROAD, amp=6)
    for _ in range(n_v):
        c.paint(c.strip(False, c.rng.uniform(0.15, 0.85) * c.w, w), rgb, ROAD, amp=6)


def _residential(c: Canvas):
    c.paint(None, (125, 150, 95), VEGETATION, amp=20, cell=5)
    _roads(c, c.rng.integers(1, 3), c.rng.integers(1, 3), 0.07)
    draw_trees(c, c.rng.integers(6, 16), (55, 100, 50), avoid=ROAD)


def _commercial(c: Canvas):
    c.paint(None, (170, 168, 165), PAVED, amp=12)
    _roads(c, c.rng.integers(1, 3), c.rng.integers(1, 3), 0.09, rgb=(80, 80, 86))


def _industrial(c: Canvas):
    c.paint(None, (158, 148, 130), BARE, amp=16, cell=10)
    _roads(c, c.rng.integers(0, 2), 1, 0.07, rgb=(95, 92, 90))


def _airport(c: Canvas):
    rng = c.rng
    c.paint(None, (135, 150, 95), VEGETATION, amp=16, cell=12)
    horizontal = rng.random() < 0.5
    depth, length = (c.h, c.w) if horizontal else (c.w, c.h)
    coord_across = c.yy if horizontal else c.xx
    coord_along = c.xx if horizontal else c.yy
    runway_at = depth * rng.uniform(0.2, 0.3)
    if rng.random() < 0.5:
        runway_at = depth - runway_at
    rw = max(4.0, 0.1 * c.side * c.zoom)
    runway = np.abs(coord_across - runway_at) < rw / 2
    c.paint(runway, (80, 80, 84), ROAD, amp=5)
    dashes = (np.abs(coord_across - runway_at) < max(0.6, rw * 0.06)) & ((coord_along // max(3, rw * 0.6)) % 2 == 0)
    c.img[dashes] = (235, 235, 235)
    toward = 1 if runway_at < depth / 2 else -1  # the apron lies on the inner side of the runway
    taxi_at = runway_at + toward * (rw * 1.4)
    c.paint(np.abs(coord_across - taxi_at) < rw * 0.25, (95, 95, 98), ROAD, amp=5)
    apron_from, apron_to = taxi_at + toward * rw * 0.4, taxi_at + toward * depth * rng.uniform(0.45, 0.6)
    lo, hi = sorted((apron_from, apron_to))
    a0, a1 = length * rng.uniform(0.0, 0.12), length * rng.uniform(0.88, 1.0)
    apron = (coord_across >= lo) & (coord_across < hi) & (coord_along >= a0) & (coord_along < a1)
    c.paint(apron, (172, 170, 165), PAVED, amp=8)
    c.layout["runway"] = "horizontal" if horizontal else "vertical"


def _parking_lot(c: Canvas):
    rng = c.rng
    c.paint(None, (78, 78, 84), PAVED, amp=8)
    border = c.side_mask(["left", "right", "top", "bottom"][rng.integers(4)], 0.1, wobble=0.0)
    c.paint(border, (110, 150, 80), VEGETATION, amp=18)
    size = c.side * 0.06 * c.zoom
    stall_w, stall_l = size * 1.0, size * 1.5
    horizontal = rng.random() < 0.5  # cars park nose-in, rows run along x when horizontal
    rows = np.arange(stall_l, (c.h if horizontal else c.w) - stall_l, stall_l * 2.6)
    slots = []
    for r in rows:
        for k in np.arange(stall_w, (c.w if horizontal else c.h) - stall_w, stall_w * 1.4):
            cx, cy = (k, r) if horizontal else (r, k)
            if c.label[int(cy), int(cx)] == PAVED:
                slots.append((cx, cy, 90.0 if horizontal else 0.0))
            # the white line between two stalls, axis-aligned, so a slice draws it
            if horizontal:
                y0, y1, x = int(r - stall_l / 2), int(r + stall_l / 2), int(k - stall_w * 0.7)
                sl = (slice(max(y0, 0), max(y1, 0)), slice(max(x, 0), max(x, 0) + 1))
            else:
                x0, x1, y = int(r - stall_l / 2), int(r + stall_l / 2), int(k - stall_w * 0.7)
                sl = (slice(max(y, 0), max(y, 0) + 1), slice(max(x0, 0), max(x1, 0)))
            c.img[sl][c.label[sl] == PAVED] = (200, 200, 195)
    rng.shuffle(slots)
    c.slots["vehicle"] = slots


def _storage_tanks(c: Canvas):
    rng = c.rng
    c.paint(None, (165, 160, 150), PAVED, amp=12, cell=10)
    d = c.side * 0.13 * c.zoom
    slots = [(x, y, 0.0) for x in np.arange(d, c.w - d * 0.6, d * 1.5) for y in np.arange(d, c.h - d * 0.6, d * 1.5)]
    rng.shuffle(slots)
    c.slots["storage tank"] = slots
    _roads(c, 0, 1, 0.04, rgb=(120, 118, 112))


LAYOUTS = {"forest": _forest, "farmland": _farmland, "meadow": _meadow, "desert": _desert, "river": _river,
           "lake": _lake, "beach": _beach, "harbor": _harbor, "residential": _residential,
           "commercial": _commercial, "industrial": _industrial, "airport": _airport,
           "parking lot": _parking_lot, "storage tanks": _storage_tanks}
assert set(LAYOUTS) == set(SCENES)


def draw_trees(c: Canvas, n: int, rgb, avoid: int | None = None):
    """Tree crowns painted into the background (vegetation, not countable objects)."""
    for _ in range(int(n)):
        cx, cy = c.rng.uniform(0, c.w), c.rng.uniform(0, c.h)
        if avoid is not None and c.label[int(cy), int(cx)] == avoid:
            continue
        r = c.side * c.rng.uniform(0.02, 0.045)
        crown = (c.xx - cx) ** 2 + (c.yy - cy) ** 2 < r * r
        c.img[crown] = _rgb_jitter(c.rng, rgb, 10)
        c.label[crown & (c.label != ROAD)] = VEGETATION


# --- objects -----------------------------------------------------------------------------------

def _outline(kind: str, length: float, angle: float) -> list[np.ndarray]:
    """Polygons (in object-centred coordinates) that make up one object's silhouette."""
    if kind == "ship":
        L, b = length, length * 0.3
        parts = [np.array([(-L / 2, -b / 2), (L / 4, -b / 2), (L / 2, 0), (L / 4, b / 2), (-L / 2, b / 2)])]
    elif kind == "airplane":
        L = length
        fus = np.array([(-L / 2, -L * 0.06), (L * 0.42, -L * 0.06), (L / 2, 0), (L * 0.42, L * 0.06), (-L / 2, L * 0.06)])
        wings = np.array([(L * 0.1, -L * 0.05), (-L * 0.12, -L * 0.48), (-L * 0.22, -L * 0.48), (-L * 0.1, -L * 0.05),
                          (-L * 0.1, L * 0.05), (-L * 0.22, L * 0.48), (-L * 0.12, L * 0.48), (L * 0.1, L * 0.05)])
        tail = np.array([(-L * 0.36, -L * 0.04), (-L * 0.47, -L * 0.18), (-L * 0.5, -L * 0.18), (-L * 0.46, 0),
                         (-L * 0.5, L * 0.18), (-L * 0.47, L * 0.18), (-L * 0.36, L * 0.04)])
        parts = [wings, tail, fus]
    else:
        raise ValueError(kind)
    t = math.radians(angle)
    rot = np.array([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]])
    return [p @ rot.T for p in parts]


def _object_geometry(kind: str, size: float, angle: float):
    """Returns (half-extent x, half-extent y, polygons or None) of an object of the given size."""
    if kind in ("ship", "airplane"):
        polys = _outline(kind, size, angle)
        pts = np.concatenate(polys)
        return float(np.abs(pts[:, 0]).max()), float(np.abs(pts[:, 1]).max()), polys
    if kind == "storage tank":
        return size / 2, size / 2, None
    if kind == "vehicle":
        long_, short = size / 2, size / 4
        return (long_, short, None) if angle in (0.0, 180.0) else (short, long_, None)
    # building: a rectangle with a random aspect ratio; angle carries the aspect here
    return size / 2, size / 2 * angle, None


def _fits(c: Canvas, box, allowed: list[int], taken: list[list[int]], min_fraction: float) -> bool:
    x1, y1, x2, y2 = box
    if x1 < 1 or y1 < 1 or x2 > c.w - 1 or y2 > c.h - 1 or x2 - x1 < 2 or y2 - y1 < 2:
        return False
    lut = np.zeros(8, bool)
    lut[allowed] = True
    if lut[c.label[y1:y2, x1:x2]].mean() < min_fraction:
        return False
    for t in taken:  # keep a one-pixel gap between objects
        if x1 < t[2] + 1 and t[0] < x2 + 1 and y1 < t[3] + 1 and t[1] < y2 + 1:
            return False
    return True


def place_objects(c: Canvas, scene_class: str, counts: dict[str, int]) -> list[WorldObject]:
    rng = c.rng
    placed: list[WorldObject] = []
    taken: list[list[int]] = []
    for kind in sorted(counts, key=lambda k: -OBJECTS[k]["size"][1]):  # large objects first
        spec = OBJECTS[kind]
        scale = SIZE_SCALE.get((scene_class, kind), 1.0)
        colors = spec["colors"]
        if kind == "building":
            colors = BUILDING_COLORS.get(scene_class, RURAL_BUILDING_COLORS)
        slots = list(c.slots.get(kind, []))
        for _ in range(counts[kind]):
            for attempt in range(60):
                size = rng.uniform(*spec["size"]) * c.side * c.zoom * scale
                if kind in ("ship", "airplane"):
                    angle = float(rng.choice([0, 90, 180, 270]) + rng.uniform(-20, 20)) % 360
                elif kind == "vehicle":
                    angle = float(rng.choice([0.0, 90.0, 180.0, 270.0]))
                elif kind == "building":
                    angle = float(rng.uniform(0.6, 1.5))  # aspect ratio
                else:
                    angle = 0.0
                if slots:
                    cx, cy, slot_angle = slots.pop()
                    if kind == "vehicle":
                        angle = slot_angle
                else:
                    cx, cy = rng.uniform(0, c.w), rng.uniform(0, c.h)
                hx, hy, polys = _object_geometry(kind, size, angle)
                box = [int(math.floor(cx - hx)), int(math.floor(cy - hy)), int(math.ceil(cx + hx)),
                       int(math.ceil(cy + hy))]
                if not _fits(c, box, spec["on"], taken, 0.97 if kind != "ship" else 0.8):
                    continue
                color = colors[rng.integers(len(colors))]
                obj = WorldObject(kind=kind, color=color, box=box,
                                  angle=round(angle, 1) if kind in ("ship", "airplane", "vehicle") else 0.0)
                obj._draw = (cx, cy, hx, hy, polys)  # drawing data, not saved
                placed.append(obj)
                taken.append(box)
                break
    return placed


def draw_objects(img: Image.Image, objects: list[WorldObject], rng: np.random.Generator):
    d = ImageDraw.Draw(img)
    for o in objects:
        cx, cy, hx, hy, polys = o._draw
        rgb = tuple(int(v) for v in _rgb_jitter(rng, COLOR_RGB[o.color], 8))
        dark = tuple(int(v * 0.72) for v in rgb)
        shadow = (30, 30, 32)
        sh = max(1.0, 0.12 * max(hx, hy))
        x1, y1, x2, y2 = cx - hx, cy - hy, cx + hx - 1, cy + hy - 1
        if o.kind == "building":
            d.rectangle([x1 + sh, y1 + sh, x2 + sh, y2 + sh], fill=shadow)
            d.rectangle([x1, y1, x2, y2], fill=rgb)
            if hx >= hy:
                d.line([x1, cy, x2, cy], fill=dark, width=1)
            else:
                d.line([cx, y1, cx, y2], fill=dark, width=1)
        elif o.kind == "storage tank":
            d.ellipse([x1 + sh, y1 + sh, x2 + sh, y2 + sh], fill=shadow)
            d.ellipse([x1, y1, x2, y2], fill=rgb)
            r = 0.55
            d.ellipse([cx - hx * r, cy - hy * r, cx + hx * r - 1, cy + hy * r - 1], outline=dark)
        elif o.kind == "vehicle":
            d.rectangle([x1, y1, x2, y2], fill=rgb)
            front = 1 if o.angle in (0.0, 90.0) else -1  # a dark windscreen band towards the front
            if hx > hy:
                a, b = sorted((cx + front * hx * 0.15, cx + front * hx * 0.45))
                d.rectangle([a, y1, b, y2], fill=(40, 45, 55))
            else:
                a, b = sorted((cy + front * hy * 0.15, cy + front * hy * 0.45))
                d.rectangle([x1, a, x2, b], fill=(40, 45, 55))
        else:  # ships and airplanes: polygons
            for p in polys:
                d.polygon([(cx + x, cy + y) for x, y in p], fill=rgb, outline=dark)
            if o.kind == "ship":  # a bridge house towards the stern
                t = math.radians(o.angle)
                bx, by = cx - math.cos(t) * hx * 0.25, cy - math.sin(t) * hy * 0.25
                r = max(1.0, 0.1 * max(hx, hy))
                d.rectangle([bx - r, by - r, bx + r, by + r], fill=dark)


def apply_modality(img: np.ndarray, label: np.ndarray, modality: str, rng: np.random.Generator) -> np.ndarray:
    if modality == "optical":
        return img
    gray = img.mean(axis=2)
    if modality == "panchromatic":
        return np.repeat(gray[..., None], 3, axis=2)
    if modality == "infrared":  # false colour: NIR -> red, red -> green, green -> blue; plants reflect NIR
        nir = np.where(label == VEGETATION, 215.0, np.where(label == FIELD, 170.0, gray * 0.8))
        nir[label == WATER] = 20.0
        return np.stack([nir + (img[..., 1] - gray) * 0.3, img[..., 0], img[..., 1]], axis=2)
    if modality == "sar":  # water is a dark specular surface; speckle everywhere
        backscatter = np.where(label == WATER, 25.0, gray * 0.9 + 25)
        speckle = rng.gamma(4.0, 0.25, size=gray.shape).astype(np.float32)
        return np.repeat((backscatter * speckle)[..., None], 3, axis=2)
    raise ValueError(f"unknown modality {modality!r}")


def render_scene(scene_class: str, width: int, height: int, zoom: float, modality: str,
                 rng: np.random.Generator, image_name: str, counts: dict[str, int] | None = None):
    """Draw one scene; returns (uint8 HxWx3 image, Scene with exact boxes and land-cover fractions)."""
    c = Canvas(width, height, zoom, rng)
    LAYOUTS[scene_class](c)
    if counts is None:
        counts = {k: int(rng.integers(lo, hi + 1)) for k, (lo, hi) in SCENES[scene_class]["objects"].items()}
    base = Image.fromarray(np.clip(c.img, 0, 255).astype(np.uint8))
    objects = place_objects(c, scene_class, counts)
    draw_objects(base, objects, rng)
    arr = np.asarray(base, np.float32)
    arr = apply_modality(arr, c.label, modality, rng)
    single_band = modality in ("panchromatic", "sar")  # one band: the same noise in R, G and B
    shape = arr.shape[:2] + ((1,) if single_band else (3,))
    arr += rng.standard_normal(shape, dtype=np.float32) * 3.0  # sensor noise
    image = np.clip(arr, 0, 255).astype(np.uint8)
    fractions = np.bincount(c.label.ravel(), minlength=len(LANDCOVER_NAMES)) / c.label.size
    landcover = {LANDCOVER_NAMES[i]: round(float(f), 4) for i, f in enumerate(fractions) if f > 0}
    for o in objects:
        del o._draw
    scene = Scene(image=image_name, scene_class=scene_class, width=width, height=height, zoom=round(zoom, 3),
                  modality=modality, objects=objects, landcover=landcover, layout=c.layout)
    return image, scene
