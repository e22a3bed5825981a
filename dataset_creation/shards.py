"""Pack pooled pairs folders into WebDataset tar shards, so that training opens a few large files.

A shards folder holds ``shard-000000.tar`` ... and ``index.json`` (written last). Each sample is a
group of tar members named ``<key>.<ext>`` (WebDataset's convention; ``<key>`` is the sample's
8-digit position in the pooled order):

- image shards: ``<key>.jpg`` (the input JPEG bytes as stored), ``<key>.png`` (the target),
  the prompt file and (det only) the box file as stored, each as ``<key>.<its file name>``, and
  ``<key>.json`` (sample, stem, source folder, task, dataset, class);
- latent shards (``dataset_creation/shard_latents.py``): ``<key>.latents.npy`` and ``<key>.json``.

``index.json`` lists every shard with its sample count, size and the byte offset of each sample
(what lets a training rank start reading mid-shard), the per-task/dataset counts, the source folders
and the samples left out. Packing is deterministic: samples in pooled index order, tar
members sorted by name with a fixed mtime, owner and mode, so the same folders give byte-identical
shards. A sample with a missing or unreadable file is named and left out.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import tarfile
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from multiprocessing import Pool
from pathlib import Path
from typing import Any

import webdataset as wds
from tqdm.auto import tqdm

from instructcv.cli import UsageError
from instructcv.images import ImageReadError, load_rgb
from instructcv.io import atomic_path, write_json
from instructcv.pairs import BBOX_FILE, PROMPT_FILE, PairSample, read_prompt, read_seeds
from ldm.shard_reader import INDEX_FILE, INDEX_FORMAT

log = logging.getLogger(__name__)

SHARD_PATTERN = "shard-{:06d}.tar"
TAR_BLOCK = 512
DEFAULT_SHARD_SIZE = "1GB"
_UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
          "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}


def parse_size(text: str) -> int:
    """``"1GB"``, ``"500MB"``, ``"64KiB"``, ``"1e6"`` -> bytes (decimal units, binary with ``iB``)."""
    match = re.fullmatch(r"\s*([0-9.eE+]+)\s*([A-Za-z]*)\s*", str(text))
    unit = match.group(2).upper() if match else None
    if match is None or unit not in _UNITS:
        raise UsageError(f"--shard-size {text!r}: a size such as 1GB, 500MB or 64KiB")
    try:
        size = int(float(match.group(1)) * _UNITS[unit])
    except ValueError:
        raise UsageError(f"--shard-size {text!r}: a size such as 1GB, 500MB or 64KiB") from None
    if size <= 0:
        raise UsageError(f"--shard-size {text!r}: must be positive")
    return size


def member_bytes(size: int) -> int:
    """Bytes one tar member of ``size`` data bytes takes: a 512-byte header + data padded to 512."""
    return TAR_BLOCK + -(-size // TAR_BLOCK) * TAR_BLOCK


def tar_file_bytes(members: int) -> int:
    """Size of a tar file whose members take ``members`` bytes: + the end blocks, padded to tarfile's 10 KiB records."""
    return -(-(members + 2 * TAR_BLOCK) // tarfile.RECORDSIZE) * tarfile.RECORDSIZE


@dataclass
class PackedSample:
    """One sample ready for a shard: its tar members (extension -> bytes) and its index entry."""

    members: dict[str, bytes]
    task: str
    dataset: str

    @property
    def tar_bytes(self) -> int:
        return sum(member_bytes(len(v)) for v in self.members.values())


def pool_records(roots: Sequence[str | os.PathLike]) -> list[tuple[int, PairSample]]:
    """(source folder index, pair) over every folder's index, folders in the order given."""
    return [(i, record) for i, root in enumerate(roots) for record in read_seeds(root)]


def sample_meta(source: int, record: PairSample, prompt: dict[str, Any]) -> dict[str, Any]:
    """The ``<key>.json`` member: where the sample came from and what it is."""
    return {"sample": record.sample, "stem": record.stem, "source": source,
            "task": prompt.get("task"), "dataset": prompt.get("dataset"), "class": prompt.get("class")}


def read_prompt_object(record: PairSample) -> tuple[bytes, dict[str, Any]]:
    """The prompt file's bytes as stored and its object (with a string 'edit'); ImageReadError if unusable."""
    read_prompt(record)  # validates the 'edit' instruction, naming the file
    data = record.prompt_path.read_bytes()
    return data, json.loads(data)


def read_image_sample(item: tuple[int, PairSample]) -> PackedSample | str:
    """The members of one pair (images decoded once to prove they are readable), or why it is left out."""
    source, record = item
    try:
        for path in (record.input_path, record.target_path):
            load_rgb(path)
        prompt_bytes, prompt = read_prompt_object(record)
        members = {"jpg": record.input_path.read_bytes(), "png": record.target_path.read_bytes(),
                   PROMPT_FILE: prompt_bytes}
        if record.bbox_path.is_file():
            members[BBOX_FILE] = record.bbox_path.read_bytes()
    except ImageReadError as e:
        return f"{e}; pair {record.key} left out"
    except (OSError, ValueError) as e:
        return f"{record.folder}: {type(e).__name__}: {e}; pair {record.key} left out"
    members["json"] = json.dumps(sample_meta(source, record, prompt), sort_keys=True).encode()
    return PackedSample(members, str(prompt.get("task")), str(prompt.get("dataset")))


def read_samples(items: Sequence[tuple[int, PairSample]], workers: int) -> Iterator[PackedSample | str]:
    """``read_image_sample`` over ``items`` in order, with ``workers`` processes."""
    if workers <= 1:
        yield from map(read_image_sample, items)
        return
    with Pool(workers) as pool:  # the platform default: fork on Linux starts in milliseconds
        yield from pool.imap(read_image_sample, items, chunksize=16)


@dataclass
class ShardStats:
    """What a packing wrote: per shard name, sample count, bytes and sample offsets."""

    shards: list[dict[str, Any]] = field(default_factory=list)
    counts: Counter = field(default_factory=Counter)
    skipped: list[str] = field(default_factory=list)

    @property
    def samples(self) -> int:
        return sum(s["samples"] for s in self.shards)

    @property
    def bytes(self) -> int:
        return sum(s["bytes"] for s in self.shards)


class RollingShards:
    """Write samples into ``shard-NNNNNN.tar`` files of at most ``shard_size`` bytes (atomic, reproducible)."""

    def __init__(self, out: Path, shard_size: int, stats: ShardStats):
        self.out, self.shard_size, self.stats = out, shard_size, stats
        self._files: contextlib.ExitStack | None = None  # the open shard: its atomic temp path and file
        self._writer: wds.TarWriter | None = None
        self._offsets: list[int] = []

    @property
    def name(self) -> str:
        return SHARD_PATTERN.format(len(self.stats.shards))

    def add(self, sample: PackedSample) -> None:
        size = sample.tar_bytes
        if self._writer is not None and tar_file_bytes(self._offsets[-1] + size) > self.shard_size:
            self.close()
        if self._writer is None:
            self._files = contextlib.ExitStack()
            tmp = self._files.enter_context(atomic_path(self.out / self.name))
            stream = self._files.enter_context(open(tmp, "wb"))
            self._writer = wds.TarWriter(stream, user="", group="", mode=0o444, mtime=0, encoder=False)
            self._offsets = [0]
        key = f"{self.stats.samples + len(self._offsets) - 1:08d}"
        self._writer.write({"__key__": key, **sample.members})
        self._offsets.append(self._offsets[-1] + size)
        self.stats.counts[f"{sample.task}/{sample.dataset}"] += 1

    def close(self) -> None:
        """Finish the open shard: end blocks, rename into place, record it."""
        if self._writer is None:
            return
        self._writer.close()
        self._files.close()
        self.stats.shards.append({"name": self.name, "samples": len(self._offsets) - 1,
                                  "bytes": (self.out / self.name).stat().st_size, "offsets": self._offsets})
        self._writer = None

    def abort(self, error: BaseException) -> None:
        """Drop the open shard's temporary file."""
        if self._writer is not None:
            self._files.__exit__(type(error), error, error.__traceback__)
            self._writer = None


def write_shards(samples: Iterable[PackedSample | str], out: Path, shard_size: int,
                 total: int | None = None, progress: bool = True) -> ShardStats:
    """Stream ``samples`` (a string is a left-out sample's message) into rolling shards under ``out``."""
    stats = ShardStats()
    shards = RollingShards(out, shard_size, stats)
    try:
        for sample in tqdm(samples, total=total, desc=f"packing {out.name}", unit="pair", disable=not progress):
            if isinstance(sample, str):
                log.warning(sample)
                stats.skipped.append(sample)
            else:
                shards.add(sample)
        shards.close()
    except BaseException as e:
        shards.abort(e)
        raise
    return stats


def write_index(out: Path, stats: ShardStats, roots: Sequence[str | os.PathLike], kind: str,
                extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """``index.json`` (written last), then old shards that the new index does not list are removed."""
    counts: dict[str, dict[str, int]] = {}
    for name, n in sorted(stats.counts.items()):
        task, dataset = name.split("/", 1)
        counts.setdefault(task, {})[dataset] = n
    index = {"format": INDEX_FORMAT, "kind": kind, "samples": stats.samples, "bytes": stats.bytes,
             "counts": counts, "sources": [str(Path(r).resolve()) for r in roots],
             "skipped": stats.skipped, **(extra or {}), "shards": stats.shards}
    write_json(out / INDEX_FILE, index)
    listed = {s["name"] for s in stats.shards}
    for old in out.glob("shard-*.tar"):
        if old.name not in listed:
            old.unlink()
    return index


def check_out(out: Path, roots: Sequence[str | os.PathLike]) -> None:
    """The output folder must not be (or be inside) a pairs folder: training would pool the shards' files."""
    if not roots:
        raise UsageError("--pairs lists no pairs folder")
    out = out.resolve()
    for root in roots:
        if out == Path(root).resolve() or Path(root).resolve() in out.parents:
            raise UsageError(f"--out {out}: inside the pairs folder {root}; pack into a folder of its own")
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out}: exists and is not a folder")


def pack_images(roots: Sequence[str | os.PathLike], out: str | os.PathLike, shard_size: int,
                workers: int = 1, progress: bool = True) -> dict[str, Any]:
    """Pack the pairs of ``roots`` (pooled) as image shards into ``out``; returns the index."""
    out = Path(out)
    check_out(out, roots)
    items = pool_records(roots)
    out.mkdir(parents=True, exist_ok=True)
    stats = write_shards(read_samples(items, workers), out, shard_size, total=len(items), progress=progress)
    for stale in ("text_embeddings.npy",):  # from an earlier latent packing into the same folder
        (out / stale).unlink(missing_ok=True)
    return write_index(out, stats, roots, "images")
