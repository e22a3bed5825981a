"""The shared helpers: atomic writes leave nothing behind, every image mode reads as RGB."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from instructcv.images import ImageReadError, load_array, load_rgb
from instructcv.io import atomic_open, save_image, write_json


def test_atomic_open_leaves_no_partial_file(tmp_path):
    target = tmp_path / "out.json"
    with pytest.raises(RuntimeError):
        with atomic_open(target) as f:
            f.write("half")
            raise RuntimeError("interrupted")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []
    write_json(target, {"a": 1})
    assert target.read_text().strip() == '{"a": 1}'


def test_save_image_roundtrip_png(tmp_path):
    arr = np.random.default_rng(0).integers(0, 255, (7, 5, 3), dtype=np.uint8)
    save_image(tmp_path / "x.png", arr)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "x.png")), arr)
    assert [p.name for p in tmp_path.iterdir()] == ["x.png"]


def test_load_rgb_modes(tmp_path):
    Image.fromarray(np.full((4, 6, 4), [10, 20, 30, 255], np.uint8), "RGBA").save(tmp_path / "rgba.png")
    Image.fromarray((np.arange(24).reshape(4, 6) * 1000).astype(np.uint16)).save(tmp_path / "d16.png")
    Image.fromarray(np.full((4, 6, 3), 200, np.uint8)).save(tmp_path / "gif_named.jpg", format="GIF")
    for name in ("rgba.png", "d16.png", "gif_named.jpg"):
        img = load_rgb(tmp_path / name)
        assert img.mode == "RGB" and img.size == (6, 4), name
    assert np.asarray(load_rgb(tmp_path / "rgba.png"))[0, 0].tolist() == [10, 20, 30]
    d16 = np.asarray(load_rgb(tmp_path / "d16.png"))[..., 0]
    assert d16[0, 0] == 0 and d16[-1, -1] == 255
    assert load_array(tmp_path / "d16.png").dtype == np.uint16


def test_load_rgb_errors_name_the_file(tmp_path):
    (tmp_path / "text.jpg").write_text("not an image")
    good = tmp_path / "good.jpg"
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(good, quality=95)
    (tmp_path / "trunc.jpg").write_bytes(good.read_bytes()[:200])
    for name, reason in (("text.jpg", "not an image"), ("trunc.jpg", "cannot decode"), ("missing.png", "not found")):
        with pytest.raises(ImageReadError) as e:
            load_rgb(tmp_path / name)
        assert name in str(e.value) and reason in str(e.value)


def test_atomic_writes_get_umask_permissions(tmp_path):
    import os
    import stat

    write_json(tmp_path / "p.json", [])
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE((tmp_path / "p.json").stat().st_mode) == 0o666 & ~umask
