"""SUN RGB-D reader: the toolbox's real validation list without its NYU part, and the 1/8 mm depth PNGs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dataset_creation.readers import guess_dataset, sunrgbd
from dataset_creation.readers.base import LayoutError, Sample, SampleError


def _split(items):
    samples = [i for i in items if isinstance(i, Sample)]
    errors = [i for i in items if isinstance(i, SampleError)]
    assert len(samples) + len(errors) == len(items)
    return samples, errors


def _rotl3(mm: np.ndarray) -> np.ndarray:
    """How SUN RGB-D stores millimetres: a 3-bit left rotation within 16 bits."""
    mm = mm.astype(np.uint32)
    return (((mm << 3) & 0xFFFF) | (mm >> 13)).astype(np.uint16)


@pytest.fixture()
def sun_root(realdata, tmp_path) -> tuple[Path, list[str]]:
    """The real SUNRGBD_val_splits.txt with three of its frames (one from NYUdata) written on disk."""
    root = tmp_path / "SUNRGBD"
    root.mkdir()
    split = realdata / "nyu" / "splits" / "SUNRGBD_val_splits.txt"
    (root / "SUNRGBD_val_splits.txt").symlink_to(split)
    lines = split.read_text().splitlines()
    picked = [next(ln for ln in lines if f"/{c}/" in ln) for c in ("kinect2data", "sun3ddata", "NYUdata")]
    rng = np.random.default_rng(1)
    for line in picked:
        rgb, depth = line.split()
        (root / rgb).parent.mkdir(parents=True)
        (root / depth).parent.mkdir(parents=True)
        Image.new("RGB", (12, 9), (120, 80, 40)).save(root / rgb)
        mm = rng.integers(0, 12000, (9, 12)).astype(np.uint16)
        mm[0, :3] = [0, 8191, 8192]  # no data, last value below the wrap, first value above it
        Image.fromarray(_rotl3(mm)).save(root / depth)
    return root, picked


def test_counts_follow_the_real_list_without_nyu(sun_root, realdata):
    root, picked = sun_root
    lines = (realdata / "nyu" / "splits" / "SUNRGBD_val_splits.txt").read_text().splitlines()
    nyu = [ln for ln in lines if ln.startswith("SUNRGBD/kv1/NYUdata/")]
    assert len(lines) == 5050 and len(nyu) == 654
    samples, errors = _split(list(sunrgbd.iter_samples(root, "eval", ["depes"], {})))
    assert len(samples) == 2 and len(samples) + len(errors) == len(lines) - len(nyu)  # 4396 pairs
    assert all("missing on disk" in str(e) and "NYUdata" not in e.path for e in errors)
    assert {s.source for s in samples} == {ln.split()[0] for ln in picked[:2]}
    for s in samples:
        assert s.task == "depes" and s.split == "eval" and s.dataset == "sunrgbd" and " " not in s.stem
        assert s.stem.startswith("sunrgbd_kv2_kinect2data_") or s.stem.startswith("sunrgbd_xtion_sun3ddata_")
        assert s.image == root.resolve() / s.source and (root / s.gt).is_file()
    assert not list(sunrgbd.iter_samples(root, "train", ["depes"], {}))  # evaluation only
    assert sunrgbd.SPLITS == ("eval",)


def test_stems_are_unique_over_the_whole_list(realdata):
    lines = (realdata / "nyu" / "splits" / "SUNRGBD_val_splits.txt").read_text().splitlines()
    rgbs = [ln.split()[0] for ln in lines if not sunrgbd.is_nyu_entry(ln.split()[0])]
    stems = {sunrgbd.stem_of(r) for r in rgbs}
    assert len(stems) == len(rgbs) == 4396
    # frame folder names alone would collide (sun3ddata sequences restart their numbering)
    assert len({Path(r).parent.parent.name for r in rgbs}) < len(rgbs)


def test_depth_is_decoded_as_the_toolbox_does(sun_root):
    root, _ = sun_root
    samples, _ = _split(list(sunrgbd.iter_samples(root, "eval", ["depes"], {})))
    for s in samples:
        raw = np.asarray(Image.open(root / s.gt))
        assert raw.dtype == np.uint16
        depth = sunrgbd.load_ground_truth(root, s)
        # the toolbox's pre_eval formula, computed independently (without its 8 m cap)
        toolbox = (np.bitwise_or(np.right_shift(raw, 3), np.left_shift(raw, 16 - 3))).astype(np.single) / 1000
        assert depth.dtype == np.float32 and depth.shape == raw.shape
        np.testing.assert_array_equal(depth, toolbox)
        assert (
            depth[0, 0] == 0 and depth[0, 1] == pytest.approx(8.191) and depth[0, 2] == pytest.approx(8.192)
        )
        below = (depth > 0) & (depth < 8.192)
        np.testing.assert_allclose(
            depth[below], raw[below] / 8000.0, rtol=1e-6
        )  # depth_scale=8000 agrees here
        assert raw[0, 2] / 8000.0 < 1.0  # ... and not above the wrap, where only the rotation is right
        row = {"task": "depes", "gt": s.gt, "source": s.source, "gt_args": s.gt_args}
        np.testing.assert_array_equal(sunrgbd.load_ground_truth(root, row), depth)
        assert s.gt_args["max_depth_m"] == 8.0


def test_bad_depth_is_a_sample_error(sun_root):
    root, _ = sun_root
    samples, _ = _split(list(sunrgbd.iter_samples(root, "eval", ["depes"], {})))
    s = samples[0]
    (root / s.gt).unlink()
    Image.fromarray(np.zeros((9, 12), np.uint8)).save(root / s.gt)
    with pytest.raises(SampleError, match="16-bit"):
        sunrgbd.load_ground_truth(root, s)
    (root / s.gt).unlink()
    with pytest.raises(SampleError, match="not found"):
        sunrgbd.load_ground_truth(root, s)


def test_layout_detection(sun_root, realdata, tmp_path):
    root, _ = sun_root
    assert sunrgbd.looks_like(root) and guess_dataset(root) == "sunrgbd"
    assert not sunrgbd.looks_like(realdata / "nyu" / "data" / "nyu")
    assert not sunrgbd.looks_like(realdata / "pets" / "oxford-iiit-pet")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(LayoutError, match="SUNRGBD_val_splits.txt"):
        sunrgbd.check_layout(empty, "eval")


# --- the synthetic toolbox root (dataset_creation/synthetic.py): sensors' sizes, CRLF list, far rooms ---


def test_synthetic_sunrgbd_counts_and_wrapped_depths(tmp_path):
    from dataset_creation import synthetic
    from dataset_creation.synthetic import depth as synthetic_depth

    root = tmp_path / "sun"
    synthetic.write_sunrgbd(root, num_eval=5, seed=0)
    lines = [ln.split() for ln in (root / "SUNRGBD_val_splits.txt").read_text().splitlines() if ln.strip()]
    nyu = [ln for ln in lines if "/kv1/NYUdata/" in ln[0]]
    samples, errors = _split(list(sunrgbd.iter_samples(root, "eval", ["depes"], {})))
    assert nyu and not errors and len(samples) == len(lines) - len(nyu) == 5
    assert len({s.stem for s in samples}) == 5
    wrapped = 0
    for s in samples:
        raw = np.asarray(Image.open(root / s.gt))
        depth = sunrgbd.load_ground_truth(root, s)
        assert depth.shape[::-1] == Image.open(s.image).size
        mm = ((raw.astype(np.uint32) >> 3) | ((raw.astype(np.uint32) << 13) & 0xFFFF)).astype(np.float64)
        np.testing.assert_allclose(depth, mm / 1000.0, rtol=1e-6)
        assert depth.max() <= 10.0
        wrapped += int((depth > 8.192).sum())
    assert wrapped > 0  # far walls: dividing by 8000 would be wrong there
    # the reader and the synthetic writer, written independently, invert each other over all 16 bits
    mm = np.arange(0, 65536, dtype=np.uint16).reshape(256, 256)
    np.testing.assert_allclose(
        sunrgbd.decode_depth(synthetic_depth.sunrgbd_encode(mm)), mm / 1000.0, rtol=1e-6
    )


# --- end to end: format_dataset writes the pairs, reopened and decoded with tasks/ ---


def test_pairs_built_from_the_synthetic_release(tmp_path):
    import tasks
    from dataset_creation import format_dataset, synthetic, writer

    root = tmp_path / "sun"
    synthetic.write_sunrgbd(root, num_eval=5, seed=0)
    out = tmp_path / "pairs"
    report = format_dataset.build(out, [root], ["depes"], progress=False)  # the default split: eval
    rows = writer.read_index(out)
    assert not report.skipped and len(rows) == 5 and {r["split"] for r in rows} == {"eval"}
    for row in rows:
        depth = sunrgbd.load_ground_truth(root, row)
        target = np.asarray(Image.open(out / row["sample"] / f"{row['stem']}_1.png"))
        valid = depth > 0
        assert np.array_equal(target[valid], np.clip(np.floor(depth * 25.5), 1, 255)[valid])  # floor(m * 25.5)
        assert (target > 0).all()  # dense: holes carry the nearest measured depth
        decoded = tasks.depth.decode(target, (depth.shape[1], depth.shape[0]))
        close = np.abs(decoded[valid] - np.minimum(depth[valid], 10.0)) <= 0.5 / 25.5 + 1e-6
        assert close.mean() > 0.95  # decode may retouch pixels beside no-data holes
