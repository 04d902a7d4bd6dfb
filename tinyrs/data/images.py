"""Reading images the way remote-sensing data arrives: JPEG, PNG with alpha, GeoTIFF
(8- or 16-bit, 1 to N bands), non-square and large. Whatever comes in, the model gets RGB."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

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


def _array_to_rgb(arr: np.ndarray) -> Image.Image:
    if arr.ndim == 3 and arr.shape[0] in (1, 3, 4) and arr.shape[-1] not in (1, 3, 4):
        arr = np.moveaxis(arr, 0, -1)  # bands-first GeoTIFF
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


def load_rgb(path: str | Path) -> Image.Image:
    """Open an image as 8-bit RGB. Raises ImageLoadError naming the path on any failure."""
    path = Path(path)
    if not path.is_file():
        raise ImageLoadError(f"image not found: {path}")
    try:
        with Image.open(path) as im:
            if im.mode in ("RGB", "RGBA", "L", "LA", "P", "PA", "CMYK", "YCbCr", "1"):
                im.load()
                if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
                    # Drop alpha by compositing on black: a no-data area stays dark, as it is in GIS tools.
                    rgba = im.convert("RGBA")
                    bg = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
                    return Image.alpha_composite(bg, rgba).convert("RGB")
                return im.convert("RGB")
            if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
                return _array_to_rgb(np.asarray(im))
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as e:
        if path.suffix.lower() not in (".tif", ".tiff"):
            raise ImageLoadError(f"cannot read image {path}: {e}") from e
    # Multi-band or 16-bit GeoTIFFs that PIL does not decode.
    try:
        import tifffile

        return _array_to_rgb(tifffile.imread(path))
    except Exception as e:  # tifffile raises many kinds; all mean the same to the caller
        raise ImageLoadError(f"cannot read image {path}: {e}") from e


def image_size(path: str | Path) -> tuple[int, int]:
    """(width, height) without decoding the pixels."""
    try:
        with Image.open(path) as im:
            return im.size
    except Exception:
        return load_rgb(path).size
