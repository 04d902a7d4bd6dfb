"""Images as real remote-sensing data comes: JPEG, RGBA PNG, GeoTIFF, non-square, 16-bit multi-band."""
import numpy as np
import pytest
from PIL import Image

from tinyrs.data.images import ImageLoadError, image_size, load_rgb


@pytest.mark.parametrize("name,size", [("real_images/church_010.jpg", (256, 256)),
                                       ("real_images/dota_P0004_patch_rgba.png", (285, 294)),
                                       ("real_images/rsvqa_lr_0.tif", (256, 256)),
                                       ("dota/P1888.png", (712, 557))])
def test_fixture_images_load_as_rgb(fixtures_dir, name, size):
    im = load_rgb(fixtures_dir / name)
    assert im.mode == "RGB" and im.size == size
    assert np.asarray(im).std() > 5  # real content, not a blank


def test_rgba_alpha_is_composited_on_black(fixtures_dir, tmp_path):
    src = np.asarray(Image.open(fixtures_dir / "real_images/dota_P0004_patch_rgba.png")).copy()
    assert src.shape[2] == 4
    src[:20, :, 3] = 0  # a no-data strip (the fixture itself is opaque everywhere)
    src[20:40, :, 3] = 128  # half transparent
    Image.fromarray(src, "RGBA").save(tmp_path / "nodata.png")
    got = np.asarray(load_rgb(tmp_path / "nodata.png")).astype(int)
    assert got.shape == src.shape[:2] + (3,)
    assert (got[:20] == 0).all()  # no data stays dark, as in GIS tools
    assert np.abs(got[20:40] - src[20:40, :, :3].astype(int) * 128 / 255).max() <= 1
    assert (got[40:] == src[40:, :, :3]).all()  # opaque pixels keep their colour


def test_geotiff_pixels_match_tifffile(fixtures_dir):
    import tifffile

    path = fixtures_dir / "real_images/rsvqa_lr_1.tif"
    assert (np.asarray(load_rgb(path)) == tifffile.imread(path)).all()


def test_sixteen_bit_multiband_geotiff(tmp_path):
    import tifffile

    rng = np.random.default_rng(0)
    data = rng.integers(0, 4000, size=(4, 64, 48), dtype=np.uint16)  # bands first, like many GeoTIFFs
    tifffile.imwrite(tmp_path / "s2.tif", data)
    im = load_rgb(tmp_path / "s2.tif")
    assert im.mode == "RGB" and im.size == (48, 64)
    arr = np.asarray(im)
    assert arr.min() == 0 and arr.max() == 255  # stretched to 8 bit


@pytest.mark.parametrize("bands,height,compression", [(13, 64, None), (3, 4, "lzw"), (4, 3, "zlib")])
def test_band_layout_is_read_from_the_file_not_guessed(tmp_path, bands, height, compression):
    """Bands stored interleaved or bands-first ('planar', as Sentinel-2 stacks often are), compressed as GIS
    exports are, give the same RGB image, whatever the number of bands or the image's shape (a 3-pixel-high
    strip is not 3 bands)."""
    import tifffile

    data = np.random.default_rng(1).integers(0, 4000, size=(height, 40, bands), dtype=np.uint16)
    tifffile.imwrite(tmp_path / "contig.tif", data, planarconfig="contig", compression=compression)
    tifffile.imwrite(tmp_path / "planar.tif", np.moveaxis(data, -1, 0), planarconfig="separate", compression=compression)
    a, b = load_rgb(tmp_path / "contig.tif"), load_rgb(tmp_path / "planar.tif")
    assert a.size == b.size == (40, height) == image_size(tmp_path / "planar.tif")
    assert (np.asarray(a) == np.asarray(b)).all()


def test_missing_and_corrupt_images_name_the_path(tmp_path):
    with pytest.raises(ImageLoadError, match="not found: .*nope.jpg"):
        load_rgb(tmp_path / "nope.jpg")
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 this is not a jpeg")
    with pytest.raises(ImageLoadError, match="bad.jpg"):
        load_rgb(bad)
    bad_tif = tmp_path / "bad.tif"
    bad_tif.write_bytes(b"II*\x00garbage")
    with pytest.raises(ImageLoadError, match="bad.tif"):
        load_rgb(bad_tif)
