"""Skipped inputs are summarised by reason on the terminal and listed in full in the save root (issue 12, item 8)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dataset_creation import format_dataset, skipped


def _nyu_root(root: Path, absent: int) -> Path:
    """An NYUv2 toolbox root whose train list names ``absent`` frames that are not on disk (a partial download)."""
    root.mkdir(parents=True)
    lines = [f"/scene_{i % 7:04d}/rgb_{i:05d}.jpg /scene_{i % 7:04d}/sync_depth_{i:05d}.png 518.8579"
             for i in range(absent)]  # fmt: skip
    (root / "nyu_train.txt").write_text("\n".join(lines) + "\n")
    (root / "nyu_test.txt").write_text("")
    return root


def test_a_list_of_1000_absent_files_prints_under_20_lines_and_writes_them_all(tmp_path: Path, capsys) -> None:
    root = _nyu_root(tmp_path / "nyu", 1000)
    save = tmp_path / "pairs"
    rc = format_dataset.main(["--save_root", str(save), "--dataset", "nyuv2", "--split", "train",
                              "--data_root", str(root), "--no_progress"])  # fmt: skip
    assert rc == 2
    out = capsys.readouterr().out.splitlines()
    assert len(out) < 20, out
    listing = save / skipped.SKIPPED_FILE
    assert any(str(listing) in line for line in out)  # the summary names the full list
    assert any("1000 x listed in <file> but missing on disk" in line for line in out)
    listed = listing.read_text().splitlines()
    expected = {str(root / f"scene_{i % 7:04d}" / f"rgb_{i:05d}.jpg") for i in range(1000)}
    assert len(listed) == 1000 and {line.split(": ", 1)[0] for line in listed} == expected
    assert all(line.endswith("listed in nyu_train.txt but missing on disk") for line in listed)
    examples = [line.strip() for line in out if line.startswith("    ")]
    assert examples == listed[:skipped.EXAMPLES]  # the first five, as listed


def test_every_reader_reports_through_the_summary(realdata: Path, tmp_path: Path, capsys) -> None:
    # VOC's real sample lists images that are not in it; its skipped inputs go to the same list
    report = format_dataset.build(tmp_path, [realdata / "voc"], progress=False)
    assert report.skipped and report.skipped_list == tmp_path / skipped.SKIPPED_FILE
    listed = report.skipped_list.read_text().splitlines()
    assert listed == [skipped.line_of(item) for item in report.skipped]
    lines = format_dataset.report_lines(report, tmp_path)
    assert sum(line.startswith("    ") for line in lines) <= skipped.EXAMPLES * skipped.MAX_KINDS


def test_reasons_group_by_kind_and_the_kinds_shown_are_bounded(tmp_path: Path) -> None:
    items = [(f"/data/img_{i}.jpg", f"image is {600 + i}x400 but its annotation says 640x480 (s{i}_det_dog)", 1)
             for i in range(30)]  # fmt: skip
    items += [(f"/data/list.txt:{i}", f"expected '<rgb> <depth>', got 'junk {i}'", 0) for i in range(3)]
    items += [(f"/data/x{i}.png", f"odd failure number {i} of its own kind: {'z' * i}", 0) for i in range(20)]
    groups = skipped.group_by_kind(items)
    assert [len(v) for _, v in groups[:2]] == [30, 3]
    assert groups[0][0] == "image is NxN but its annotation says NxN (...)"
    lines = skipped.summary_lines(items, tmp_path / "list.txt")
    assert len(lines) < 1 + skipped.MAX_KINDS * (1 + skipped.EXAMPLES) + 1
    assert lines[-1].startswith(f"  ... and {20 - (skipped.MAX_KINDS - 2)} input(s) skipped for")


@pytest.mark.parametrize("absent", [3, 0])
def test_a_build_without_skips_removes_an_earlier_list(tmp_path: Path, absent: int) -> None:
    root = _nyu_root(tmp_path / "nyu", absent)
    stale = tmp_path / "pairs" / skipped.SKIPPED_FILE
    stale.parent.mkdir()
    stale.write_text("/old/file.jpg: from an earlier run\n")
    report = format_dataset.build(tmp_path / "pairs", [root], dataset="nyuv2", split="train", progress=False)
    assert len(report.skipped) == absent
    assert stale.is_file() == bool(absent)
    if absent:
        assert "/old/file.jpg" not in stale.read_text()
