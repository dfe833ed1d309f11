"""Any image Pillow reads comes out upright, RGB and square; anything else says why not."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from workbook.ml.decode import UnreadableImage, fit_square, load_rgb


def save(img: Image.Image, path, fmt=None, **kw):
    img.save(path, fmt, **kw)
    return path


def test_resize_matches_tensorflow_bilinear_without_antialiasing():
    tf = pytest.importorskip("tensorflow")
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (224, 300, 3), dtype=np.uint8)
    ours = np.asarray(fit_square(Image.fromarray(a), 160), dtype=np.float32)
    crop = a[:, 38:262]  # the centre square
    theirs = tf.image.resize(crop, (160, 160), method="bilinear", antialias=False).numpy()
    assert np.abs(ours - theirs).mean() < 1.0
    assert np.abs(ours - theirs).max() <= 4


def test_huge_and_tiny_images_are_used(tmp_path):
    huge = save(Image.new("RGB", (4000, 3000), (10, 200, 30)), tmp_path / "huge.jpg")
    tiny = save(Image.new("RGB", (8, 8), (200, 10, 30)), tmp_path / "tiny.png")
    for path, size in ((huge, (4000, 3000)), (tiny, (8, 8))):
        loaded = load_rgb(path, 64)
        assert loaded.image.size == (64, 64) and loaded.image.mode == "RGB"
        assert (loaded.width, loaded.height) == size
    assert np.abs(np.asarray(load_rgb(huge, 64).image).astype(int) - (10, 200, 30)).max() <= 3


def test_exif_orientation_is_applied(tmp_path):
    img = Image.new("RGB", (60, 30), (0, 0, 0))
    img.paste((255, 255, 255), (0, 0, 30, 30))  # left half white
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: rotate 90 degrees clockwise to view
    path = save(img, tmp_path / "phone.jpg", exif=exif.tobytes(), quality=95)
    loaded = load_rgb(path, 30)
    assert loaded.rotated and (loaded.width, loaded.height) == (30, 60)
    top = np.asarray(loaded.image)[:5].mean()
    bottom = np.asarray(loaded.image)[-5:].mean()
    assert top > 200 and bottom < 50  # the white half is now on top


def test_alpha_is_flattened_on_white(tmp_path):
    img = Image.new("RGBA", (20, 20), (255, 0, 0, 0))
    img.paste((0, 0, 255, 255), (0, 0, 10, 20))
    loaded = load_rgb(save(img, tmp_path / "a.png"), 20)
    a = np.asarray(loaded.image)
    assert loaded.converted and loaded.mode == "RGBA"
    assert tuple(a[10, 15]) == (255, 255, 255) and tuple(a[10, 2]) == (0, 0, 255)


@pytest.mark.parametrize("mode, fmt, name", [
    ("L", "JPEG", "grey.jpg"), ("CMYK", "JPEG", "print.jpg"), ("P", "PNG", "palette.png"),
    ("LA", "PNG", "grey_alpha.png"), ("I;16", "PNG", "deep.png"), ("RGB", "WEBP", "photo.webp"),
    ("RGB", "BMP", "photo.BMP"), ("1", "PNG", "bits.png"),
])
def test_modes_and_formats_become_rgb(tmp_path, mode, fmt, name):
    img = Image.new("RGB", (24, 16), (120, 60, 200)).convert(mode)
    loaded = load_rgb(save(img, tmp_path / name, fmt), 16)
    assert loaded.image.mode == "RGB" and loaded.image.size == (16, 16)
    assert loaded.mode == mode and loaded.converted == (mode != "RGB")


def test_sixteen_bit_grey_is_scaled_not_clipped(tmp_path):
    a = np.linspace(0, 65535, 32 * 32).reshape(32, 32).astype(np.uint16)
    path = tmp_path / "deep.png"
    Image.fromarray(a).save(path)
    out = np.asarray(load_rgb(path, 32).image)[..., 0]
    assert out.min() < 10 and out.max() > 245 and 100 < out.mean() < 155


@pytest.mark.parametrize("content, reason", [
    (b"", "empty file"),
    (b"hello, I am a text file", "not an image"),
])
def test_unreadable_files_say_why(tmp_path, content, reason):
    path = tmp_path / "x.jpg"
    path.write_bytes(content)
    with pytest.raises(UnreadableImage, match=reason):
        load_rgb(path, 16)


def test_truncated_jpeg_says_truncated(tmp_path):
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(buf, "JPEG")
    path = tmp_path / "cut.jpg"
    path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(UnreadableImage, match="truncated"):
        load_rgb(path, 16)
