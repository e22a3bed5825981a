"""The pairs writer: ``Sample`` records in, sample folders and the pairs index out (DESIGN.md section 4).

It knows nothing about datasets: targets are drawn with ``tasks/`` from what the reader put in the
sample (boxes, the cls answer) or from the reader's own ``load_ground_truth`` (seg masks, depth).

On disk, under ``save_root``: the layout of ``instructcv.pairs`` (sample folders, each with its input,
target, prompt, det boxes and its own metadata row; the index of every finished sample folder, sorted
by name), plus ``.images/<dataset>/<stem>.jpg``: each raw image stored once, which every sample
folder hard-links as its input (a copy where the file system refuses links).

Input images keep their full resolution and pixel grid (no EXIF rotation: annotations are drawn
in the stored frame; when the annotation's ``image_size`` only matches the EXIF-rotated image,
the rotation is applied). A raw file that already is a plain RGB JPEG is stored byte for byte (no
second compression); anything else (PNG or GIF named .jpg, RGBA, grey, CMYK, EXIF-rotated) is
decoded and encoded once as JPEG quality 95, 4:4:4. Det targets are drawn on the stored input's
decoded pixels, so the target aligns pixel for pixel with what the model sees. Masks are 1-bit PNGs.

A sample folder is written under ``.tmp/`` and renamed into place when complete, so a folder
that exists is finished; re-runs skip it. The index is rebuilt from the finished folders (from
scratch with ``full=True``) and rewritten only when its content changes, atomically.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import time
import uuid
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image, ImageOps

import tasks
from dataset_creation.readers import get_reader
from dataset_creation.readers.base import Sample, SampleError
from instructcv import pairs
from instructcv.images import ImageReadError, load_rgb
from instructcv.io import atomic_path, save_image

IMAGES_DIR = ".images"
TMP_DIR = ".tmp"
RECORD_FILE = pairs.RECORD_FILE
JPEG_QUALITY = 95
ORIENTATION_TAG = 0x0112


@dataclass(frozen=True)
class WriterOptions:
    """How pairs are drawn: prompt style and seed (instructions, colours), image encodings."""

    prompts: str = "rephrased"
    seed: int = 0
    jpeg_quality: int = JPEG_QUALITY


@dataclass
class BuildReport:
    """What one build did: counts per (dataset, split, task), skipped inputs, bytes, the index."""

    written: Counter = field(default_factory=Counter)  # (dataset, split, task) -> samples written
    present: Counter = field(default_factory=Counter)  # (dataset, split, task) -> already there
    skipped: list[tuple[str, str, int]] = field(default_factory=list)  # (path, reason, samples lost)
    bytes_written: int = 0
    seconds: float = 0.0
    index: IndexResult | None = None
    skipped_list: Path | None = None  # the file listing every skipped input (dataset_creation/skipped.py)

    @property
    def n_written(self) -> int:
        return sum(self.written.values())

    @property
    def n_present(self) -> int:
        return sum(self.present.values())

    def merge(self, other: GroupResult) -> None:
        self.written.update(other.written)
        self.present.update(other.present)
        self.skipped.extend(other.skipped)
        self.bytes_written += other.bytes_written


@dataclass
class GroupResult:
    """What writing the samples of one raw image did."""

    written: Counter = field(default_factory=Counter)
    present: Counter = field(default_factory=Counter)
    skipped: list[tuple[str, str, int]] = field(default_factory=list)
    bytes_written: int = 0


# ----------------------------------------------------------------------------------------------
# Inputs


def stored_input_path(save_root: Path, dataset: str, stem: str) -> Path:
    """Where the one stored copy of a raw image lives."""
    return save_root / IMAGES_DIR / dataset / f"{stem}.jpg"


def _decode_stored(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def store_input(save_root: Path, sample: Sample, jpeg_quality: int = JPEG_QUALITY) -> tuple[Path, np.ndarray, int]:
    """Store ``sample.image`` once (see the module docstring); return (stored path, its RGB pixels, bytes written).

    Raises ``SampleError`` when the raw image is unreadable or does not have the annotation's size.
    """
    stored = stored_input_path(save_root, sample.dataset, sample.stem)
    if stored.is_file():
        try:
            return stored, _decode_stored(stored), 0
        except OSError:
            stored.unlink(missing_ok=True)  # damaged by something outside us: store it again
    raw = Path(sample.image)
    try:
        with Image.open(raw) as head:
            fmt, mode = head.format, head.mode
            orientation = head.getexif().get(ORIENTATION_TAG, 1)
    except FileNotFoundError:
        raise SampleError(raw, "image file not found") from None
    except OSError as e:
        raise SampleError(raw, f"not a readable image ({e})") from None
    try:
        img = load_rgb(raw, exif_transpose=False)  # full decode: truncated files fail here
    except ImageReadError as e:
        raise SampleError(raw, e.reason) from None
    rotated = False
    expected = (sample.gt_args or {}).get("image_size")
    if expected and None not in expected and tuple(img.size) != tuple(int(v) for v in expected):
        turned = ImageOps.exif_transpose(img) if orientation not in (1, None) else img
        if tuple(turned.size) == tuple(int(v) for v in expected):
            img, rotated = turned, True
        else:
            raise SampleError(raw, f"image is {img.size[0]}x{img.size[1]} but its annotation says "
                                   f"{int(expected[0])}x{int(expected[1])}")  # fmt: skip
    if fmt == "JPEG" and mode == "RGB" and orientation in (1, None) and not rotated:
        with atomic_path(stored) as tmp:
            shutil.copyfile(raw, tmp)
        return stored, np.asarray(img), stored.stat().st_size
    save_image(stored, img, quality=jpeg_quality, subsampling=0)
    return stored, _decode_stored(stored), stored.stat().st_size


# ----------------------------------------------------------------------------------------------
# Targets and sample folders


def make_pair(sample: Sample, pixels: np.ndarray, data_root: Path, options: WriterOptions) -> tuple[np.ndarray, dict]:
    """(target image, metadata row without ``data_root``) of one sample whose input pixels are ``pixels``.

    The sample's task draws the target (``tasks.base.Task.build_target``); the reader's
    ``load_ground_truth`` is called only when the task asks for the raw truth (seg masks, depth).
    """
    try:
        task = tasks.task(sample.task)
    except ValueError:
        raise SampleError(sample.image, f"unknown task {sample.task!r}") from None
    height, width = pixels.shape[:2]
    row: dict[str, Any] = {
        "sample": sample.name, "stem": sample.stem, "task": sample.task, "dataset": sample.dataset,
        "split": sample.split, "class": sample.class_name, "source": sample.source,
    }  # fmt: skip
    def load_truth() -> Any:
        return get_reader(sample.dataset).load_ground_truth(data_root, sample)

    try:
        target = task.build_target(sample, pixels, load_truth, options.seed, options.prompts)
    except (SampleError, ImageReadError):  # they name the raw file themselves
        raise
    except ValueError as e:  # the task's reason about this sample
        raise SampleError(sample.image, str(e)) from None
    if target.image.shape[:2] != (height, width):
        got = target.image.shape
        raise SampleError(data_root / sample.gt if sample.gt else sample.image,
                          f"ground truth is {got[1]}x{got[0]} but the image is {width}x{height}")
    row.update(target.fields)
    if sample.absent:  # an absent-class det/seg query: its answer is empty (the evaluator's absent queries)
        row["absent"] = True
    row["edit"] = task.make_instruction(sample.name, options.seed, options.prompts, class_name=sample.class_name,
                                        **target.words)
    if sample.gt is not None:
        row["gt"] = sample.gt
    public_args = {k: v for k, v in (sample.gt_args or {}).items() if not k.startswith("_")}
    if public_args:
        row["gt_args"] = public_args
    return target.image, row


# Photo-like targets (det): one fixed "up" filter and zlib's RLE strategy encode ~5x faster than
# Pillow's adaptive filtering at level 6 (10 ms of CPU for 640x480), for files within ~3% of its
# size (measured on COCO photos and synthetic scenes).
_PNG_PHOTO = [cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_UP, cv2.IMWRITE_PNG_STRATEGY,
              cv2.IMWRITE_PNG_STRATEGY_RLE, cv2.IMWRITE_PNG_COMPRESSION, 1]  # fmt: skip
_PNG_FLAT = [cv2.IMWRITE_PNG_COMPRESSION, 9]  # masks, depth, solid colours: small and quick at any level


def encode_png(target: np.ndarray, photo: bool = False) -> bytes:
    """PNG bytes of a target: bool (H, W) -> 1-bit; uint8 (H, W) -> 8-bit grey; (H, W, 3) RGB -> 24-bit.

    ``photo``: photo-like content (det targets), encoded with the fast settings above.
    """
    if target.dtype == bool:
        ok, buf = cv2.imencode(".png", target.view(np.uint8) * np.uint8(255), [cv2.IMWRITE_PNG_BILEVEL, 1, *_PNG_FLAT])
    elif target.ndim == 2:
        ok, buf = cv2.imencode(".png", target, _PNG_FLAT)
    else:
        ok, buf = cv2.imencode(".png", target[:, :, ::-1], _PNG_PHOTO if photo else _PNG_FLAT)  # RGB -> BGR view
    if not ok:
        raise ValueError(f"PNG encoding failed for a {target.dtype} {target.shape} target")
    return buf.tobytes()


def _write_bytes(path: Path, data: bytes) -> int:
    # No fsync per file: the sample folder's rename is the commit point (see write_sample_folder).
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return len(data)


def _write_json(path: Path, obj: Any) -> int:
    return _write_bytes(path, (json.dumps(obj, ensure_ascii=False) + "\n").encode("utf-8"))


def _link_or_copy(src: Path, dst: Path) -> int:
    """Hard-link ``src`` to ``dst``; copy where links fail. Returns the bytes a copy cost (0 for a link)."""
    try:
        os.link(src, dst)
        return 0
    except OSError:
        with atomic_path(dst) as tmp:
            shutil.copyfile(src, tmp)
        return dst.stat().st_size


def _tmp_dir(save_root: Path, name: str) -> Path:
    return save_root / TMP_DIR / f"{name}.{_host()}.{os.getpid()}.{uuid.uuid4().hex[:8]}"


def _host() -> str:
    return socket.gethostname().replace(".", "-") or "host"


def write_sample_folder(save_root: Path, sample: Sample, stored: Path, target: np.ndarray, row: dict) -> int | None:
    """Write one sample folder under ``.tmp/`` and rename it into place; bytes written, None if already there.

    The folder only appears under its final name once every file in it is complete, so a crash
    leaves at most a leftover in ``.tmp/`` (removed by later runs), never a half-written sample.
    """
    final = save_root / sample.name
    tmp = _tmp_dir(save_root, sample.name)
    tmp.mkdir(parents=True)
    try:
        nbytes = _link_or_copy(stored, tmp / pairs.input_name(sample.stem))
        nbytes += _write_bytes(tmp / pairs.target_name(sample.stem), encode_png(target, photo=sample.task == "det"))
        drawn = row.pop("_drawn", None)
        nbytes += _write_json(tmp / pairs.PROMPT_FILE,
                              pairs.prompt_entry(row["edit"], sample.task, sample.class_name, sample.dataset))
        if sample.task == "det":
            nbytes += _write_json(tmp / pairs.BBOX_FILE, pairs.bbox_entry(drawn, (target.shape[1], target.shape[0])))
        nbytes += _write_json(tmp / pairs.RECORD_FILE, row)
        try:
            os.rename(tmp, final)
        except OSError:
            if final.is_dir():  # finished meanwhile by a concurrent run
                return None
            raise
        return nbytes
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _key(sample: Sample) -> tuple[str, str, str]:
    return (sample.dataset, sample.split, sample.task)


def write_group(save_root: Path, data_root: Path, samples: list[Sample], options: WriterOptions) -> GroupResult:
    """Write the samples of one raw image (decoded and stored once); bad input is reported, not raised."""
    result = GroupResult()
    todo = [s for s in samples if not (save_root / s.name).is_dir()]
    for s in samples:
        if s not in todo:
            result.present[_key(s)] += 1
    if not todo:
        return result
    try:
        stored, pixels, nbytes = store_input(save_root, todo[0], options.jpeg_quality)
    except SampleError as e:
        result.skipped.append((e.path, e.reason, len(todo)))
        return result
    result.bytes_written += nbytes
    for sample in todo:
        try:
            target, row = make_pair(sample, pixels, data_root, options)
            row["data_root"] = str(data_root)
            written = write_sample_folder(save_root, sample, stored, target, row)
        except (SampleError, ImageReadError) as e:
            result.skipped.append((e.path, f"{e.reason} ({sample.name})", 1))
            continue
        if written is None:
            result.present[_key(sample)] += 1
        else:
            result.written[_key(sample)] += 1
            result.bytes_written += written
    return result


# ----------------------------------------------------------------------------------------------
# Running a build: grouping, sharding, the process pool


def shard_of(dataset: str, stem: str, num_shards: int) -> int:
    """The shard (0..num_shards-1) that writes every sample of raw image ``stem``: stable across runs."""
    return zlib.crc32(f"{dataset}/{stem}".encode()) % num_shards


def iter_groups(
    items: Iterable[tuple[Path, Sample | SampleError]], report: BuildReport, shard: int = 0, num_shards: int = 1
) -> Iterator[tuple[Path, list[Sample]]]:
    """Consecutive samples of one raw image as one group; reader errors go straight to ``report``."""
    current: list[Sample] = []
    current_root: Path | None = None
    for data_root, item in items:
        if isinstance(item, SampleError):
            report.skipped.append((item.path, item.reason, 0))
            continue
        if num_shards > 1 and shard_of(item.dataset, item.stem, num_shards) != shard:
            continue
        if current and (data_root, item.dataset, item.stem) != (current_root, current[0].dataset, current[0].stem):
            yield current_root, current  # type: ignore[misc]
            current = []
        current_root = data_root
        current.append(item)
    if current:
        yield current_root, current  # type: ignore[misc]


_WORKER: dict[str, Any] = {}


def _init_worker(save_root: Path, options: WriterOptions, single_threaded: bool = False) -> None:
    if single_threaded:  # one OpenCV thread per worker process: the pool already uses the cores
        cv2.setNumThreads(1)
    _WORKER.update(save_root=save_root, options=options)


def _run_batch(batch: list[tuple[Path, list[Sample]]]) -> tuple[GroupResult, int]:
    total, n = GroupResult(), 0
    for data_root, samples in batch:
        r = write_group(_WORKER["save_root"], data_root, samples, _WORKER["options"])
        total.written.update(r.written)
        total.present.update(r.present)
        total.skipped.extend(r.skipped)
        total.bytes_written += r.bytes_written
        n += len(samples)
    return total, n


def _batches(groups: Iterable[tuple[Path, list[Sample]]], save_root: Path, report: BuildReport,
             batch_samples: int) -> Iterator[list[tuple[Path, list[Sample]]]]:  # fmt: skip
    """Groups with work to do, packed into batches of about ``batch_samples``; finished ones counted."""
    batch: list[tuple[Path, list[Sample]]] = []
    size = 0
    for data_root, samples in groups:
        todo = [s for s in samples if not (save_root / s.name).is_dir()]
        for s in samples:
            if s not in todo:
                report.present[_key(s)] += 1
        if not todo:
            continue
        batch.append((data_root, todo))
        size += len(todo)
        if size >= batch_samples:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def write_pairs(
    save_root: str | Path,
    items: Iterable[tuple[Path, Sample | SampleError]],
    options: WriterOptions = WriterOptions(),
    workers: int = 1,
    shard: int = 0,
    num_shards: int = 1,
    progress: bool | None = None,
    write_index: bool = True,
) -> BuildReport:
    """Write every sample of ``items`` ((data_root, Sample or SampleError) pairs) into ``save_root``.

    ``workers`` > 1 writes in a process pool (fork where available). With ``num_shards`` > 1 only the
    raw images of ``shard`` are written and the index is left alone (run ``rebuild_index(full=True)``,
    ``format_dataset.py --merge``, when every shard has finished). ``progress``: tqdm bar (None: on a tty).
    """
    from tqdm import tqdm

    save_root = Path(save_root).resolve()
    save_root.mkdir(parents=True, exist_ok=True)
    clean_stale_tmp(save_root)
    report = BuildReport()
    start = time.perf_counter()
    batches = _batches(iter_groups(items, report, shard, num_shards), save_root, report, batch_samples=16)
    bar = tqdm(desc="writing pairs", unit="sample", disable=(None if progress is None else not progress),
               dynamic_ncols=True)  # fmt: skip
    try:
        if workers <= 1:
            _init_worker(save_root, options)
            for batch in batches:
                result, n = _run_batch(batch)
                report.merge(result)
                bar.update(n)
        else:
            _run_pool(save_root, options, workers, batches, report, bar)
    finally:
        bar.close()
    if write_index and num_shards <= 1:
        report.index = rebuild_index(save_root)
        report.bytes_written += report.index.bytes_written
    report.seconds = time.perf_counter() - start
    return report


def _run_pool(save_root: Path, options: WriterOptions, workers: int, batches: Iterator, report: BuildReport,
              bar: Any) -> None:  # fmt: skip
    import multiprocessing as mp

    # Not plain fork: a process that already ran OpenCV (its thread pool) or tqdm (its monitor
    # thread) can deadlock its forked children. A fork server forks workers from a clean process
    # that has imported this module once, so a worker still starts in milliseconds.
    if "forkserver" in mp.get_all_start_methods():
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(["dataset_creation.writer", "tasks"])
    else:
        ctx = mp.get_context("spawn")
    max_in_flight = 3 * workers  # bounded: a reader may yield millions of samples
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker,
                             initargs=(save_root, options, True)) as pool:  # fmt: skip
        in_flight: set[Future] = set()

        def collect(done: set[Future]) -> None:
            for fut in done:
                result, n = fut.result()
                report.merge(result)
                bar.update(n)

        for batch in batches:
            if len(in_flight) >= max_in_flight:
                done, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
                collect(done)
            in_flight.add(pool.submit(_run_batch, batch))
        collect(wait(in_flight).done)


# ----------------------------------------------------------------------------------------------
# The index


@dataclass
class IndexResult:
    """What rebuilding the index found and did."""

    samples: int
    changed: bool
    bytes_written: int
    contents: Counter  # (dataset, split) -> samples listed
    unindexed: list[str]  # folders without a readable .meta.json (not made by this writer)


def rebuild_index(save_root: str | Path, full: bool = False) -> IndexResult:
    """Rewrite the index to list every finished sample folder, sorted by name.

    Rows of folders already in the index are reused unless ``full``; new folders are read from the
    row each keeps of itself. Files are rewritten (atomically) only when their content changes.
    """
    save_root = Path(save_root)
    known = {} if full else (pairs.read_index(save_root) or {})
    rows, unindexed = [], []
    for name in pairs.sample_folders(save_root):
        row = known.get(name)
        if row is None:
            try:
                row = pairs.read_record(save_root / name)
            except (OSError, ValueError):
                unindexed.append(name)  # not a folder this writer made: left out of the index
                continue
        rows.append(row)
    nbytes = pairs.write_index(save_root, rows)
    contents = Counter((r.get("dataset"), r.get("split")) for r in rows)
    return IndexResult(len(rows), nbytes > 0, nbytes, contents, unindexed)


def clean_stale_tmp(save_root: Path, everything: bool = False) -> int:
    """Remove half-written sample folders of dead processes on this host (``everything``: all of them)."""
    tmp_root = save_root / TMP_DIR
    if not tmp_root.is_dir():
        return 0
    host, removed = _host(), 0
    for entry in tmp_root.iterdir():
        parts = entry.name.rsplit(".", 3)
        stale = everything
        if not stale and len(parts) == 4 and parts[1] == host and parts[2].isdigit():
            try:
                os.kill(int(parts[2]), 0)
            except ProcessLookupError:
                stale = True
            except PermissionError:
                pass
        if stale:
            shutil.rmtree(entry, ignore_errors=True)
            removed += 1
    return removed


def read_index(save_root: str | Path) -> list[dict]:
    """The metadata rows of a pairs folder (empty when there is none)."""
    return list((pairs.read_index(save_root) or {}).values())
