"""Which samples of a shards folder a rank's data-loader worker reads in an epoch, in what order, and reading them.

The plan of an epoch (``worker_plan``) depends only on (seed, epoch, rank, world size, worker,
workers) and the per-shard sample counts of ``index.json``:

1. the shards are put in a seeded order for the epoch, and their samples concatenated;
2. rank ``r`` of ``W`` takes the ``r``-th contiguous slice of ``ceil(N / W)`` samples (the last slice
   wraps around to the start, so every rank has the same count: at most ``W - 1`` samples are read
   twice per epoch), and its worker ``k`` of ``K`` the ``k``-th contiguous part of that slice. A part
   covers whole shards except at its two ends, where the reader seeks to the sample's byte offset in
   ``index.json``: each rank opens about ``S / W`` of the ``S`` shards per epoch, never all of them;
3. a shuffle buffer (WebDataset's algorithm: keep ``buffer`` samples, emit a random one as each new
   one arrives) orders the part; it is run on sample numbers, so the emission order is known before
   anything is read and a resumed worker skips what it already emitted without reading it.

``SampleReader`` then reads samples by byte range and splits them into WebDataset members with
``webdataset.tariterators`` (``{"__key__": ..., "__url__": shard path, "jpg": bytes, ...}``), holding at
most ``buffer`` read-but-not-yet-due samples.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from webdataset.tariterators import base_plus_ext, tar_file_iterator

from instructcv.cli import UsageError

INDEX_FILE = "index.json"
INDEX_FORMAT = 1
KINDS = ("images", "latents")


@dataclass(frozen=True)
class Shard:
    """One tar file: ``offsets[j]`` is where sample ``j`` starts, ``offsets[-1]`` where the last one ends."""

    path: Path
    offsets: tuple[int, ...]
    folder: int  # which of the pooled shards folders it is in

    @property
    def samples(self) -> int:
        return len(self.offsets) - 1


@dataclass
class ShardSet:
    """The pooled shards of one or more shards folders, all of one kind (images or latents)."""

    roots: list[Path]
    indexes: list[dict[str, Any]]
    shards: list[Shard]

    @property
    def kind(self) -> str:
        return self.indexes[0]["kind"]

    @property
    def counts(self) -> np.ndarray:
        return np.array([s.samples for s in self.shards], dtype=np.int64)

    @property
    def total(self) -> int:
        return int(self.counts.sum())


def read_index(root: Path) -> dict[str, Any]:
    """``<root>/index.json`` checked for format and kind; UsageError naming the file otherwise."""
    path = root / INDEX_FILE
    if not path.is_file():
        raise UsageError(f"{path}: not found; is {root} a shards folder written by dataset_creation/pack_pairs.py?")
    try:
        index = json.loads(path.read_text())
        ok = index.get("format") == INDEX_FORMAT and index.get("kind") in KINDS and isinstance(index["shards"], list)
    except (ValueError, KeyError, AttributeError):
        ok = False
    if not ok:
        raise UsageError(f"{path}: not an index of format {INDEX_FORMAT} written by pack_pairs.py; pack again")
    return index


def open_shards(dirs: Sequence[str | os.PathLike]) -> ShardSet:
    """The shards of ``dirs`` pooled; every listed tar file must be there, at least as long as its index says."""
    if not dirs:
        raise UsageError("data.params.shards lists no shards folder")
    roots = [Path(d) for d in dirs]
    indexes = [read_index(root) for root in roots]
    kinds = {index["kind"] for index in indexes}
    if len(kinds) > 1:
        raise UsageError(f"data.params.shards mixes image and latent shards ({', '.join(map(str, roots))})")
    shards = []
    for folder, (root, index) in enumerate(zip(roots, indexes, strict=True)):
        for entry in index["shards"]:
            shard = Shard(root / entry["name"], tuple(entry["offsets"]), folder)
            size = shard.path.stat().st_size if shard.path.is_file() else -1
            if size < shard.offsets[-1]:
                reason = "missing" if size < 0 else f"{size} bytes, the index says at least {shard.offsets[-1]}"
                raise UsageError(f"{shard.path}: {reason}; pack {root} again")
            if shard.samples:
                shards.append(shard)
    if not shards:
        raise UsageError(f"no samples in {', '.join(map(str, roots))}")
    return ShardSet(roots, indexes, shards)


def rank_share(total: int, world_size: int) -> int:
    """Samples each rank reads per epoch: ``ceil(total / world_size)``, the same on every rank."""
    return -(-total // world_size)


def worker_plan(counts: np.ndarray, seed: int, epoch: int, rank: int, world_size: int, worker: int,
                workers: int) -> tuple[np.ndarray, np.ndarray]:
    """(shard number, sample number in that shard) of each sample of this worker's part, in file order."""
    total = int(counts.sum())
    share = rank_share(total, world_size)
    start = rank * share + share * worker // workers
    stop = rank * share + share * (worker + 1) // workers
    order = np.random.default_rng([seed, epoch]).permutation(len(counts))
    ends = np.cumsum(counts[order])
    positions = np.arange(start, stop, dtype=np.int64) % total
    slot = np.searchsorted(ends, positions, side="right")
    return order[slot], positions - (ends[slot] - counts[order][slot])


def buffer_order(n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """The order a shuffle buffer of ``size`` emits items ``0 .. n-1`` arriving in order."""
    if size <= 1:
        return np.arange(n)
    picks = rng.random(n)
    buffer: list[int] = []
    out = np.empty(n, dtype=np.int64)
    emitted = 0
    for item in range(n):
        buffer.append(item)
        if len(buffer) >= size:
            j = int(picks[item] * len(buffer))
            buffer[j], buffer[-1] = buffer[-1], buffer[j]
            out[emitted] = buffer.pop()
            emitted += 1
    rest = np.array(buffer, dtype=np.int64)
    rng.shuffle(rest)
    out[emitted:] = rest
    return out


class SampleReader:
    """Reads one sample's tar members by byte range; seeks only when a read does not follow the previous one."""

    def __init__(self):
        self._path: Path | None = None
        self._file = None

    def read(self, shard: Shard, j: int) -> dict[str, Any]:
        if self._path != shard.path:
            self.close()
            self._file, self._path = open(shard.path, "rb"), shard.path  # noqa: SIM115 -- kept open across reads
        start, end = shard.offsets[j], shard.offsets[j + 1]
        if self._file.tell() != start:
            self._file.seek(start)
        data = self._file.read(end - start)
        if len(data) != end - start:
            raise OSError(f"{shard.path}: ends at byte {start + len(data)}, sample {j} should end at {end}")
        sample: dict[str, Any] = {"__url__": str(shard.path), "__folder__": shard.folder}
        for member in tar_file_iterator(io.BytesIO(data)):
            key, ext = base_plus_ext(member["fname"])
            sample["__key__"] = key
            sample[ext] = member["data"]
        return sample

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
        self._file = self._path = None


def emit(shards: Sequence[Shard], plan: tuple[np.ndarray, np.ndarray], order: np.ndarray, start: int,
         reader: SampleReader) -> Iterator[tuple[int, dict[str, bytes]]]:
    """(t, sample ``order[t]``) for t from ``start`` on, reading the plan's samples forward, skipped ones never."""
    wanted = np.zeros(len(plan[0]), dtype=bool)
    wanted[order[start:]] = True
    held: dict[int, dict[str, bytes]] = {}
    frontier = 0
    for t in range(start, len(order)):
        item = int(order[t])
        while item not in held:
            if wanted[frontier]:
                held[frontier] = reader.read(shards[plan[0][frontier]], int(plan[1][frontier]))
            frontier += 1
        yield t, held.pop(item)
