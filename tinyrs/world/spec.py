"""The rules of the synthetic remote-sensing world, as data.

Everything a question can ask about is decided here: which scene classes exist, whether
they are rural or urban, which objects appear where, what colours and shapes they have.
The renderer (`render.py`) draws these rules; the language module (`language.py`) asks
about them; the toy LHRS-Bench asks about the rules themselves.
"""
from __future__ import annotations

# Land-cover labels of the per-pixel label map.
BARE, VEGETATION, WATER, SAND, FIELD, ROAD, PAVED = range(7)
LANDCOVER_NAMES = {
    BARE: "bare soil",
    VEGETATION: "vegetation",
    WATER: "water",
    SAND: "sand",
    FIELD: "cropland",
    ROAD: "road",
    PAVED: "pavement",
}

# Scene classes: setting (the rural/urban attribute), what the scene is for (the toy
# LHRS-Bench "reasoning" questions), and how many objects of each kind it holds (min, max).
SCENES: dict[str, dict] = {
    "forest": dict(setting="rural", function="timber and wildlife habitat",
                   objects={"building": (0, 1)}),
    "farmland": dict(setting="rural", function="growing crops",
                     objects={"building": (0, 2), "vehicle": (0, 2)}),
    "meadow": dict(setting="rural", function="grazing and open grassland",
                   objects={"building": (0, 1)}),
    "desert": dict(setting="rural", function="nothing much: it is barren land",
                   objects={"vehicle": (0, 2)}),
    "river": dict(setting="rural", function="draining water across the land",
                  objects={"ship": (0, 2), "building": (0, 2)}),
    "lake": dict(setting="rural", function="storing fresh water",
                 objects={"ship": (0, 2), "building": (0, 1)}),
    "beach": dict(setting="rural", function="recreation at the coast",
                  objects={"ship": (0, 3), "building": (0, 2), "vehicle": (0, 2)}),
    "residential": dict(setting="urban", function="housing people",
                        objects={"building": (4, 10), "vehicle": (0, 4)}),
    "commercial": dict(setting="urban", function="shops and offices",
                       objects={"building": (2, 5), "vehicle": (2, 7)}),
    "industrial": dict(setting="urban", function="manufacturing goods",
                       objects={"building": (2, 4), "storage tank": (0, 3), "vehicle": (0, 3)}),
    "airport": dict(setting="urban", function="air transport",
                    objects={"airplane": (1, 4), "building": (1, 2), "vehicle": (0, 2)}),
    "harbor": dict(setting="urban", function="loading and mooring ships",
                   objects={"ship": (1, 5), "storage tank": (0, 2), "building": (0, 2), "vehicle": (0, 2)}),
    "parking lot": dict(setting="urban", function="parking cars",
                        objects={"vehicle": (4, 12)}),
    "storage tanks": dict(setting="urban", function="storing oil and gas",
                          objects={"storage tank": (3, 8), "vehicle": (0, 2)}),
}
SCENE_CLASSES = list(SCENES)

# Objects: size range as a fraction of the image's shorter side at zoom 1, colours they
# come in, shape (for the toy LHRS-Bench), and where they may stand (land-cover labels
# every pixel of their box must have).
OBJECTS: dict[str, dict] = {
    "airplane": dict(size=(0.16, 0.24), colors=["white", "gray"], shape="cross-shaped",
                     on=[PAVED], plural="airplanes"),
    "ship": dict(size=(0.12, 0.20), colors=["white", "gray", "red", "blue"], shape="elongated and pointed",
                 on=[WATER], plural="ships"),
    "storage tank": dict(size=(0.08, 0.13), colors=["white", "gray"], shape="circular",
                         on=[PAVED, BARE], plural="storage tanks"),
    "vehicle": dict(size=(0.05, 0.07), colors=["white", "black", "red", "blue", "yellow"], shape="small and rectangular",
                    on=[ROAD, PAVED, BARE, SAND, FIELD], plural="vehicles"),
    "building": dict(size=(0.08, 0.16), colors=["red", "gray", "white", "blue", "brown"], shape="rectangular",
                     on=[BARE, VEGETATION, PAVED, FIELD, SAND], plural="buildings"),
}
OBJECT_KINDS = list(OBJECTS)

COLOR_RGB = {
    "white": (235, 235, 230), "gray": (140, 142, 145), "black": (35, 35, 40), "red": (190, 50, 40),
    "blue": (45, 85, 185), "yellow": (225, 200, 40), "brown": (130, 85, 50),
}

# Sensor modalities. Most images are optical; a few are rendered as other sensors so that
# captions and the toy LHRS-Bench "modality" questions have something to refer to.
MODALITIES = {
    "optical": "an optical (RGB) image",
    "infrared": "a false-colour near-infrared image",
    "panchromatic": "a panchromatic (grey-scale) image",
    "sar": "a synthetic aperture radar (SAR) image",
}

# Resolution: a zoom factor scales object sizes; it maps to a nominal ground sample distance
# the way aerial (high resolution) and satellite (low resolution) benchmarks differ.
def gsd_label(zoom: float) -> str:
    if zoom >= 1.3:
        return "about 0.5 m per pixel"
    if zoom >= 0.85:
        return "about 1 m per pixel"
    return "about 10 m per pixel"


GSD_LABELS = ["about 0.5 m per pixel", "about 1 m per pixel", "about 10 m per pixel", "about 100 m per pixel"]

# The 3x3 grid used for relative positions.
POSITIONS = [["top left", "top", "top right"], ["left", "center", "right"], ["bottom left", "bottom", "bottom right"]]


def position_name(cx: float, cy: float, width: int, height: int) -> str:
    col = min(2, int(3 * cx / width))
    row = min(2, int(3 * cy / height))
    return POSITIONS[row][col]


def plural(kind: str, n: int = 2) -> str:
    return kind if n == 1 else OBJECTS[kind]["plural"]
