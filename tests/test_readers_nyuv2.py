"""NYUv2 reader on the real BTS-layout sample and the toolbox's split lists: metres, splits, bad items."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dataset_creation.readers import guess_dataset, nyuv2
from dataset_creation.readers.base import LayoutError, Sample, SampleError


def _split(items):
    samples = [i for i in items if isinstance(i, Sample)]
    errors = [i for i in items if isinstance(i, SampleError)]
    assert len(samples) + len(errors) == len(items)
    return samples, errors


@pytest.fixture()
def nyu_root(realdata, tmp_path) -> Path:
    """The toolbox's data/nyu: the real scene folder and the real split lists side by side (symlinks)."""
    root = tmp_path / "nyu"
    root.mkdir()
    (root / "bookstore_0001d").symlink_to(realdata / "nyu" / "data" / "nyu" / "bookstore_0001d")
    for name in ("nyu_train.txt", "nyu_test.txt"):
        (root / name).symlink_to(realdata / "nyu" / "splits" / name)
    return root


def _add_pair(
    root: Path, scene: str, n: str, depth_mm: np.ndarray, size: tuple[int, int] | None = None
) -> None:
    (root / scene).mkdir(exist_ok=True)
    h, w = depth_mm.shape
    Image.new("RGB", size or (w, h), (90, 120, 150)).save(root / scene / f"rgb_{n}.jpg")
    Image.fromarray(depth_mm).save(root / scene / f"sync_depth_{n}.png")


def test_counts_follow_the_real_split_lists(nyu_root, realdata):
    lines = (realdata / "nyu" / "splits" / "nyu_train.txt").read_text().splitlines()
    samples, errors = _split(list(nyuv2.iter_samples(nyu_root, "train", ["depes"], {})))
    on_disk = [ln for ln in lines if (nyu_root / ln.split()[0].lstrip("/")).is_file()]
    assert len(lines) == 24231 and len(on_disk) == 1
    assert len(samples) == 1 and len(errors) == len(lines) - 1
    assert all("missing on disk" in str(e) for e in errors)
    s = samples[0]
    assert (s.stem, s.task, s.split, s.dataset) == ("nyuv2_bookstore_0001d_00001", "depes", "train", "nyuv2")
    assert s.source == "bookstore_0001d/rgb_00001.jpg" and s.gt == "bookstore_0001d/sync_depth_00001.png"
    assert s.image == nyu_root.resolve() / s.source and s.class_name is None
    # the real test list names 654 pairs, none of which is in this sample
    samples, errors = _split(list(nyuv2.iter_samples(nyu_root, "eval", ["depes"], {})))
    assert not samples and len(errors) == 654
    assert not list(nyuv2.iter_samples(nyu_root, "train", ["seg"], {}))


def test_depth_is_read_in_metres(nyu_root):
    (s,) = [x for x in nyuv2.iter_samples(nyu_root, "train", ["depes"], {}) if isinstance(x, Sample)]
    raw = np.asarray(Image.open(nyu_root / s.gt))
    assert raw.dtype == np.uint16 and raw.max() > 255  # genuinely 16-bit millimetres
    depth = nyuv2.load_ground_truth(nyu_root, s)
    assert depth.dtype == np.float32 and depth.shape == raw.shape
    np.testing.assert_allclose(depth * 1000.0, raw, atol=1e-3)  # decoded mm == the PNG
    assert np.array_equal(depth == 0, raw == 0)  # no data stays 0 (invalid)
    valid = depth[depth > 0]
    assert 0.5 < np.median(valid) < 10.0  # an indoor scene, in metres
    # the DESIGN.md target encoding, floor(m * 25.5): not the nearly black picture an 8-bit read gives
    target = np.clip(np.floor(depth * 25.5), 0, 255).astype(np.uint8)
    assert np.median(target[depth > 0]) > 30 and target.max() == 255
    row = {"task": "depes", "gt": s.gt, "source": s.source}
    assert np.array_equal(nyuv2.load_ground_truth(nyu_root, row), depth)
    try:
        from tasks import depth as depth_task
    except ImportError:
        return
    encoded = depth_task.encode(depth)
    np.testing.assert_array_equal(encoded[depth > 0], target[depth > 0])
    assert_filled_with_nearest(encoded, depth > 0)


def assert_filled_with_nearest(grey: np.ndarray, valid: np.ndarray) -> None:
    """Every hole holds the code of its nearest valid pixel (exact Euclidean; ties and OpenCV's
    5x5 distance approximation may pick another pixel at almost the same distance)."""
    from scipy import ndimage

    dist, (iy, ix) = ndimage.distance_transform_edt(~valid, return_indices=True)
    holes = ~valid
    assert (grey[holes] > 0).all()
    same = grey[holes] == grey[iy, ix][holes]
    assert same.mean() > 0.95, same.mean()


def test_eval_pairs_keep_their_depth_and_never_repeat_train(tmp_path):
    root = tmp_path / "nyu"
    root.mkdir()
    rng = np.random.default_rng(0)
    for scene, n in (("bathroom", "00045"), ("kitchen_0001a", "00003"), ("kitchen_0001a", "00004")):
        _add_pair(root, scene, n, rng.integers(0, 10001, (6, 8)).astype(np.uint16))
    (root / "nyu_test.txt").write_text("bathroom/rgb_00045.jpg bathroom/sync_depth_00045.png 518.8579")
    (root / "nyu_train.txt").write_text(
        "/kitchen_0001a/rgb_00003.jpg /kitchen_0001a/sync_depth_00003.png 518.8579\n"
        "/bathroom/rgb_00045.jpg /bathroom/sync_depth_00045.png 518.8579\n"  # also a test pair: eval only
        "/kitchen_0001a/rgb_00004.jpg None 518.8579\n"
        "/kitchen_0001a/rgb_00004.jpg\n"
    )
    train, train_errors = _split(list(nyuv2.iter_samples(root, "train", ["depes"], {})))
    test, test_errors = _split(list(nyuv2.iter_samples(root, "eval", ["depes"], {})))
    assert [s.stem for s in train] == ["nyuv2_kitchen_0001a_00003"]
    assert [s.stem for s in test] == ["nyuv2_bathroom_00045"] and not test_errors
    assert not {s.source for s in train} & {s.source for s in test}
    assert sorted(e.path.rsplit(":", 1)[1] for e in train_errors) == ["3", "4"]
    assert "None" in str(train_errors[0])
    (t,) = test
    assert t.gt == "bathroom/sync_depth_00045.png" and t.gt_args["format"] == "nyuv2"
    raw = np.asarray(Image.open(root / t.gt))
    np.testing.assert_allclose(nyuv2.load_ground_truth(root, t), raw / 1000.0, rtol=0, atol=1e-6)


def test_unusable_depth_files_raise_sample_error(tmp_path):
    root = tmp_path / "nyu"
    root.mkdir()
    _add_pair(root, "a", "1", np.full((6, 8), 1000, np.uint16))
    _add_pair(root, "b", "1", np.full((6, 8), 100, np.uint8))  # an 8-bit export
    _add_pair(root, "c", "1", np.full((6, 8), 1000, np.uint16), size=(16, 12))  # image and depth disagree
    (root / "d").mkdir()
    Image.new("RGB", (8, 6)).save(root / "d" / "rgb_1.jpg")
    (root / "d" / "sync_depth_1.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    (root / "nyu_test.txt").write_text(
        "".join(f"{s}/rgb_1.jpg {s}/sync_depth_1.png 518.8579\n" for s in "abcd")
    )
    samples, errors = _split(list(nyuv2.iter_samples(root, "eval", ["depes"], {})))
    assert len(samples) == 4 and not errors
    np.testing.assert_allclose(nyuv2.load_ground_truth(root, samples[0]), 1.0)
    reasons = {}
    for s in samples[1:]:
        with pytest.raises(SampleError) as err:
            nyuv2.load_ground_truth(root, s)
        reasons[s.stem] = str(err.value)
    assert "16-bit" in reasons["nyuv2_b_1"] and "b/sync_depth_1.png" in reasons["nyuv2_b_1"]
    assert "8x6, image is 16x12" in reasons["nyuv2_c_1"]
    assert "d/sync_depth_1.png" in reasons["nyuv2_d_1"]


def test_layout_detection(nyu_root, realdata, tmp_path):
    assert nyuv2.looks_like(nyu_root) and guess_dataset(nyu_root) == "nyuv2"
    assert not nyuv2.looks_like(realdata / "nyu" / "data" / "nyu")  # scenes without the split lists
    assert not nyuv2.looks_like(realdata / "pets" / "oxford-iiit-pet")
    with pytest.raises(LayoutError) as err:
        nyuv2.check_layout(tmp_path, "eval")
    assert "nyu_test.txt" in str(err.value) and "sync_depth" in str(err.value)


# --- the synthetic toolbox root (dataset_creation/synthetic.py): every listed pair is on disk ---


def test_synthetic_nyuv2_counts_and_metres(tmp_path):
    from dataset_creation import synthetic

    root = tmp_path / "nyu"
    synthetic.write_nyuv2(root, num_train=6, num_eval=4, size=(80, 60), seed=0)
    sources = {}
    for split, list_name in (("train", "nyu_train.txt"), ("eval", "nyu_test.txt")):
        lines = [ln.split() for ln in (root / list_name).read_text().splitlines() if ln.strip()]
        samples, errors = _split(list(nyuv2.iter_samples(root, split, ["depes"], {})))
        assert not errors and len(samples) == len(lines) > 0
        assert [s.source for s in samples] == [ln[0].lstrip("/") for ln in lines]
        sources[split] = {s.source for s in samples}
        for s in samples:
            raw = np.asarray(Image.open(root / s.gt))
            depth = nyuv2.load_ground_truth(root, s)
            assert raw.dtype == np.uint16 and (raw == 0).any()  # holes stay 0
            np.testing.assert_allclose(depth * 1000.0, raw, atol=1e-3)
            valid = depth[depth > 0]
            assert 0.4 < valid.min() and valid.max() <= 10.0
            assert np.median(np.clip(np.round(valid * 25.5), 0, 255)) > 30  # not nearly black
    assert not sources["train"] & sources["eval"]


# --- end to end: format_dataset writes the pairs, reopened and decoded with tasks/ ---


def test_pairs_built_from_the_real_nyu_sample(nyu_root, tmp_path):
    import tasks
    from dataset_creation import format_dataset, writer

    out = tmp_path / "pairs"
    report = format_dataset.build(out, [nyu_root], ["depes"], split="train", progress=False)
    assert len(report.skipped) == 24230  # the real list names 24,231 pairs; one is on disk
    (row,) = writer.read_index(out)
    assert row["gt"] == "bookstore_0001d/sync_depth_00001.png" and row["dataset"] == "nyuv2"
    raw_mm = np.asarray(Image.open(nyu_root / row["gt"])).astype(np.float64)
    target = np.asarray(Image.open(out / row["sample"] / f"{row['stem']}_1.png"))
    assert target.ndim == 2 or np.ptp(target, axis=-1).max() == 0
    grey = target if target.ndim == 2 else target[..., 0]
    valid = raw_mm > 0
    # the target is the DESIGN.md encoding of the millimetres, computed here independently
    expected = np.clip(np.floor(raw_mm / 1000.0 * 25.5), 1, 255)
    assert np.array_equal(grey[valid], expected[valid])
    assert_filled_with_nearest(grey, valid)  # dense: holes carry the nearest measured depth
    assert np.median(grey[valid]) > 30  # not the nearly black target of an 8-bit read
    decoded = tasks.depth.decode(target, (raw_mm.shape[1], raw_mm.shape[0]))
    close = np.abs(decoded[valid] - raw_mm[valid] / 1000.0) <= 0.5 / 25.5 + 1e-6
    assert close.mean() > 0.95  # decode may retouch pixels beside no-data holes
    assert (decoded > 0).all()
