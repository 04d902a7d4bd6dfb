"""Reading images the way remote-sensing data arrives: JPEG, PNG with alpha, GeoTIFF
(8- or 16-bit, 1 to N bands), non-square and large. Whatever comes in, the model gets RGB."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

# PIL warns "More samples per pixel than can be decoded" on multispectral GeoTIFFs, which tifffile reads below.
logging.getLogger("PIL.TiffImagePlugin").setLevel(logging.ERROR)

# Remote-sensing scenes are legitimately large (a DOTA tile is ~4000x4000); only refuse
# images big enough to be a decompression bomb.
Image.MAX_IMAGE_PIXELS = 30000 * 30000


class ImageLoadError(ValueError):
    """An image that cannot be read; the message names the path and the reason."""


def _to_uint8(arr: np.ndarray) -> np.ndarray:
    if arr.dtype == np.uint8:
        return arr
    arr = arr.astype(np.float32)
    finite = arr[np.isfinite(arr)]
    if finite.size == 0:
        return np.zeros(arr.shape, np.uint8)
    lo, hi = np.percentile(finite, [1, 99])  # a robust stretch, as GIS viewers do for 16-bit data
    if hi <= lo:
        hi = lo + 1
    return (np.clip((np.nan_to_num(arr, nan=lo) - lo) / (hi - lo), 0, 1) * 255).astype(np.uint8)


def _tiff_array(path: Path) -> np.ndarray:
    """A TIFF's first image as (height, width) or (height, width, bands), whichever way its bands are stored
    (interleaved, or bands-first as 'planar' multispectral GeoTIFFs are): the file's own axis labels say."""
    import tifffile

    with tifffile.TiffFile(path) as tif:
        series = tif.series[0]
        arr, axes = series.asarray(), series.axes
    if "Y" not in axes or "X" not in axes:
        raise ValueError(f"no image axes in this TIFF (axes {axes!r})")
    while arr.ndim > 3:  # pages, time, z, ...: the first of each
        extra = next(i for i, a in enumerate(axes) if a not in "YX" and i != _band_axis(axes))
        arr, axes = arr.take(0, axis=extra), axes[:extra] + axes[extra + 1:]
    if arr.ndim == 3:
        arr = np.moveaxis(arr, _band_axis(axes), -1)
    return arr


def _band_axis(axes: str) -> int:
    """The samples / channels axis of a tifffile axes string ('YXS', 'SYX', 'CYX', ...); the last non-image one."""
    for label in "SC":
        if label in axes:
            return axes.index(label)
    return max(i for i, a in enumerate(axes) if a not in "YX")


def _array_to_rgb(arr: np.ndarray) -> Image.Image:
    """(height, width) or (height, width, bands) -> RGB."""
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3:
        raise ValueError(f"unsupported array shape {arr.shape}")
    bands = arr.shape[-1]
    if bands == 1:
        arr = np.repeat(arr, 3, axis=-1)
    elif bands == 2:  # grey + alpha
        arr = np.repeat(arr[..., :1], 3, axis=-1)
    else:  # RGB, RGBA, or multispectral: the first three bands as RGB
        arr = arr[..., :3]
    return Image.fromarray(_to_uint8(np.ascontiguousarray(arr)), mode="RGB")


def _pil_decodes(im: Image.Image) -> bool:
    """PIL reads a TIFF faithfully when it has one band, or 8-bit bands stored interleaved; a 16-bit RGB one it
    cuts to each value's high byte, and a bands-first ('planar') one it garbles: tifffile reads those."""
    if im.format != "TIFF":
        return True
    tags = im.tag_v2
    bits = tags.get(258, 8)
    bits = bits if isinstance(bits, tuple) else (bits,)
    return tags.get(277, 1) == 1 or (tags.get(284, 1) == 1 and all(b == 8 for b in bits))


def load_rgb(path: str | Path) -> Image.Image:
    """Open an image as 8-bit RGB. Raises ImageLoadError naming the path on any failure."""
    path = Path(path)
    if not path.is_file():
        raise ImageLoadError(f"image not found: {path}")
    try:
        with Image.open(path) as im:
            faithful = _pil_decodes(im)  # else tifffile, below
            if faithful and im.mode in ("RGB", "RGBA", "L", "LA", "P", "PA", "CMYK", "YCbCr", "1"):
                im.load()
                if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
                    # Drop alpha by compositing on black: a no-data area stays dark, as it is in GIS tools.
                    rgba = im.convert("RGBA")
                    bg = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
                    return Image.alpha_composite(bg, rgba).convert("RGB")
                return im.convert("RGB")
            if faithful and im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
                return _array_to_rgb(np.asarray(im))
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as e:
        if path.suffix.lower() not in (".tif", ".tiff"):
            raise ImageLoadError(f"cannot read image {path}: {e}") from e
    # Multi-band or 16-bit GeoTIFFs that PIL does not decode.
    try:
        return _array_to_rgb(_tiff_array(path))
    except Exception as e:  # tifffile raises many kinds; all mean the same to the caller
        raise ImageLoadError(f"cannot read image {path}: {e}") from e


def image_size(path: str | Path) -> tuple[int, int]:
    """(width, height) without decoding the pixels."""
    try:
        with Image.open(path) as im:
            return im.size
    except Exception:
        return load_rgb(path).size
