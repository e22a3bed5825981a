"""WebDataset shards: packing (determinism, broken samples, latents), per-rank reading, resume, DDP training."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
import webdataset as wds
from test_train_data import TINY_VAE_8X, new_model, write_pairs

from dataset_creation.shard_latents import pack_latents
from dataset_creation.shards import pack_images
from instructcv.cli import UsageError
from instructcv.pairs import read_seeds
from ldm.batch import load_pair_images, to_model_range
from ldm.components import build_random_components
from ldm.latent_cache import embed_prompts, encode_pair_latents
from ldm.shard_reader import open_shards
from ldm.shards import ShardsDataModule, ShardsDataset

REPO = Path(__file__).resolve().parents[1]
TINY = str(REPO / "configs" / "tiny.yaml")

pytestmark = [pytest.mark.usefixtures("one_torch_thread"), pytest.mark.filterwarnings("ignore:Found .* module")]


def cli(script: str, args: list[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    env.pop("INSTRUCTCV_RUN_DIR", None)
    return subprocess.run([sys.executable, str(REPO / script), *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="module")
def two_folders(tmp_path_factory) -> list[Path]:
    root = tmp_path_factory.mktemp("pairs")
    return [write_pairs(root / "a", n=12, seed=0), write_pairs(root / "b", n=5, seed=1)]


@pytest.fixture(scope="module")
def shards(two_folders, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("shards") / "shards"
    pack_images(two_folders, out, shard_size=20_000, progress=False)
    return out


def tar_samples(path: Path) -> dict[str, dict[str, bytes]]:
    """Every sample of a tar file read with tarfile alone: key -> {extension: bytes}."""
    samples: dict[str, dict[str, bytes]] = {}
    with tarfile.open(path) as tar:
        for member in tar.getmembers():
            key, ext = member.name.split(".", 1)
            samples.setdefault(key, {})[ext] = tar.extractfile(member).read()
            assert (member.mtime, member.uid, member.gid, member.uname, member.mode) == (0, 0, 0, "", 0o444)
    return samples


def test_packing_pools_folders_in_order_and_twice_gives_identical_bytes(two_folders, shards, tmp_path):
    index = json.loads((shards / "index.json").read_text())
    records = [r for folder in two_folders for r in read_seeds(folder)]
    assert index["kind"] == "images" and index["samples"] == 17 and index["counts"] == {"seg": {"synthetic": 17}}
    assert len(index["shards"]) > 3 and sum(s["samples"] for s in index["shards"]) == 17
    assert index["sources"] == [str(f.resolve()) for f in two_folders] and index["skipped"] == []

    seen = {}
    for entry in index["shards"]:
        path = shards / entry["name"]
        assert entry["bytes"] == path.stat().st_size <= 20_000
        seen.update(tar_samples(path))
    assert sorted(seen) == [f"{i:08d}" for i in range(17)]
    for i, record in enumerate(records):  # bytes as stored, pooled order, metadata naming the source
        sample = seen[f"{i:08d}"]
        assert sample["jpg"] == record.input_path.read_bytes() and sample["png"] == record.target_path.read_bytes()
        assert sample["prompt.json"] == record.prompt_path.read_bytes()
        meta = json.loads(sample["json"])
        assert (meta["sample"], meta["stem"], meta["source"], meta["task"]) == (
            record.sample, record.stem, 0 if i < 12 else 1, "seg")

    names = [str(shards / entry["name"]) for entry in index["shards"]]  # plain webdataset reads them too
    opened = list(wds.WebDataset(names, shardshuffle=False).decode("rgb"))
    assert [s["__key__"] for s in opened] == sorted(seen) and opened[0]["jpg"].shape == (64, 64, 3)
    assert opened[0]["prompt.json"]["edit"] == json.loads(records[0].prompt_path.read_text())["edit"]

    again = tmp_path / "again"
    pack_images(two_folders, again, shard_size=20_000, workers=2, progress=False)  # processes do not change it
    assert sorted(p.name for p in again.iterdir()) == sorted(p.name for p in shards.iterdir())
    for path in shards.iterdir():
        assert (again / path.name).read_bytes() == path.read_bytes(), path.name


def test_a_broken_sample_is_named_the_rest_packed_exit_2(tmp_path):
    pairs = write_pairs(tmp_path / "pairs", n=6)
    records = read_seeds(pairs)
    records[1].target_path.write_bytes(b"not a png at all")
    records[4].input_path.unlink()
    result = cli("dataset_creation/pack_pairs.py", ["--pairs", str(pairs), "--out", str(tmp_path / "out"),
                                                    "--quiet", "--workers", "1"], tmp_path)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert str(records[1].target_path) in result.stderr and str(records[4].input_path) in result.stderr
    assert "packed 4 images samples" in result.stdout and "2 left out" in result.stdout
    index = json.loads((tmp_path / "out" / "index.json").read_text())
    assert index["samples"] == 4 and len(index["skipped"]) == 2

    bad = cli("dataset_creation/pack_pairs.py", ["--pairs", str(tmp_path / "nope"), "--out", str(tmp_path / "o2")],
              tmp_path)
    assert bad.returncode == 2 and "seeds.json" in bad.stderr and "Traceback" not in bad.stderr


@pytest.mark.parametrize("world_size", [1, 2, 3, 4])
@pytest.mark.parametrize("workers", [1, 2])
def test_ranks_read_disjoint_parts_that_cover_the_epoch(shards, world_size, workers):
    shard_set = open_shards([shards])
    total = shard_set.total

    def epoch_keys(epoch: int) -> list[list[str]]:
        per_rank = []
        for rank in range(world_size):
            ds = ShardsDataset(shard_set, batch_size=1, resolution=64, rank=rank, world_size=world_size,
                               num_workers=workers, shuffle_buffer=4, seed=5)
            per_rank.append([s["__key__"] for w in range(workers) for _, s in ds.raw_samples(epoch, w, workers)])
        return per_rank

    ranks = epoch_keys(0)
    share = -(-total // world_size)
    assert all(len(keys) == share for keys in ranks)  # equal counts: DDP ranks step together
    everything = [k for keys in ranks for k in keys]
    assert set(everything) == {f"{i:08d}" for i in range(total)}  # the epoch is covered ...
    assert len(everything) - len(set(everything)) == share * world_size - total  # ... only the padding repeats
    if world_size == 2:  # 17 samples: ranks 0 and 1 share exactly one (the wrap-around pad)
        assert len(set(ranks[0]) & set(ranks[1])) == 1
    if total % world_size == 0:
        assert all(not set(a) & set(b) for i, a in enumerate(ranks) for b in ranks[i + 1:])
    assert epoch_keys(0) == ranks  # seeded
    assert epoch_keys(1) != ranks  # a new order every epoch


def test_batches_are_equal_per_rank_and_resume_skips_exactly(shards):
    comps = build_random_components("tiny", seed=0, overrides=TINY_VAE_8X)
    shard_set = open_shards([shards])
    datasets = [ShardsDataset(shard_set, batch_size=2, resolution=64, tokenizer=comps.tokenizer, rank=r,
                              world_size=2, shuffle_buffer=3, seed=1) for r in range(2)]
    full = [[b["key"] for b in ds] for ds in datasets]
    assert [len(f) for f in full] == [len(ds) for ds in datasets] == [4, 4]  # 9 per rank -> 4 full batches
    batch = next(iter(datasets[0]))
    assert batch["input"].shape == (2, 3, 64, 64) and batch["input_ids"].shape == (2, 77)
    assert -1 <= float(batch["input"].min()) and float(batch["target"].max()) <= 1

    datasets[0].set_position(0, 3)  # 3 batches trained on: only the fourth comes
    assert [b["key"] for b in datasets[0]] == full[0][3:]
    datasets[0].set_position(1, 0)
    assert [b["key"] for b in datasets[0]] != full[0]


def test_training_resumed_mid_epoch_sees_what_an_uninterrupted_run_sees(shards, tmp_path):
    class Keys(pl.Callback):
        def __init__(self):
            self.keys = []

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            self.keys += batch["key"]
            assert batch["task"] == ["seg"] * len(batch["key"])  # each sample's task, from its prompt.json

    def fit(max_steps: int, ckpt=None) -> tuple[list[str], pl.Trainer]:
        comps = build_random_components("tiny", seed=0, overrides=TINY_VAE_8X)
        dm = ShardsDataModule([shards], comps, resolution=64, batch_size=4, num_workers=0, shuffle_buffer=5, seed=3)
        keys = Keys()
        trainer = pl.Trainer(accelerator="cpu", max_steps=max_steps, logger=False, enable_checkpointing=False,
                             enable_progress_bar=False, enable_model_summary=False, callbacks=[keys])
        trainer.fit(new_model(comps), datamodule=dm, ckpt_path=ckpt)
        return keys.keys, trainer

    whole, _ = fit(7)  # 17 samples, batch 4: 4 batches an epoch; 7 steps end inside epoch 1
    first, trainer = fit(5)
    trainer.save_checkpoint(tmp_path / "mid.ckpt")
    rest, _ = fit(7, tmp_path / "mid.ckpt")
    assert len(whole) == 28 and first + rest == whole


def test_latent_shards_hold_both_orientations_encoded_separately(tmp_path):
    pairs = write_pairs(tmp_path / "pairs", n=6)
    comps = build_random_components("tiny", seed=2, overrides=TINY_VAE_8X)
    out = tmp_path / "latents"
    index = pack_latents([pairs], out, 10**9, comps, 64, flip=True, batch_size=4, progress=False)
    assert index["kind"] == "latents" and index["orientations"] == 2 and index["samples"] == 6
    sample = tar_samples(out / "shard-000000.tar")["00000002"]
    latents = np.load(io.BytesIO(sample["latents.npy"]))
    assert latents.shape == (2, 3, 4, 8, 8) and latents.dtype == np.float16

    record = read_seeds(pairs)[2]
    image, target = (to_model_range(a)[None] for a in load_pair_images(record, 64))
    for view, (x, y) in enumerate([(image, target), (image.flip(-1), target.flip(-1))]):
        expected = encode_pair_latents(comps.vae, x, y, "cpu")
        for i, name in enumerate(("input_mode", "target_mean", "target_std")):
            np.testing.assert_allclose(latents[view, i], expected[name][0], rtol=2e-3, atol=2e-3)
    assert not np.allclose(latents[1, 0], latents[0, 0][..., ::-1], atol=1e-2)  # not the mirrored latent
    meta = json.loads(sample["json"])
    embeddings = np.load(out / "text_embeddings.npy")
    np.testing.assert_allclose(embeddings[meta["prompt"]], embed_prompts(comps, [meta["edit"]], "cpu")[0],
                               rtol=2e-3, atol=2e-3)

    dm = ShardsDataModule([out], comps, resolution=64, batch_size=3, num_workers=0)
    batch = next(iter(dm.train_dataloader()))
    assert batch["input_mode"].shape == (3, 4, 8, 8) and batch["text_embedding"].shape == (3, 77, 32)
    model = new_model(comps)
    loss = model.diffusion_loss(*model.batch_latents(batch))
    assert torch.isfinite(loss)
    with pytest.raises(UsageError, match="another VAE"):
        ShardsDataModule([out], build_random_components("tiny", seed=3, overrides=TINY_VAE_8X),
                         resolution=64, batch_size=3, num_workers=0).train_dataloader()
    with pytest.raises(UsageError, match="resolution=32"):
        ShardsDataModule([out], comps, resolution=32)


def test_pack_then_two_process_ddp_trains_from_shards(two_folders, tmp_path):
    packed = cli("dataset_creation/pack_pairs.py", ["--pairs", *map(str, two_folders), "--out", "shards",
                                                    "--shard-size", "20KB", "--quiet"], tmp_path)
    assert packed.returncode == 0, packed.stderr
    assert "packed 17 images samples (seg 17)" in packed.stdout
    result = cli("main.py", ["--name", "ddp", "--base", TINY, "--train", "--accelerator", "cpu", "--devices", "2",
                             "--logdir", "logs", "data.params.shards=[shards]", "data.params.num_workers=1",
                             "lightning.trainer.max_steps=4", "lightning.callbacks.image_every_n_steps=0",
                             "lightning.export_on_end=false"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    run = next((tmp_path / "logs").iterdir())
    assert torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 4
    report = json.loads((run / "rank_checksums.json").read_text())
    assert report["world_size"] == 2 and report["agree"] is True
    assert "done: step 4, 32 images at" in result.stdout  # 2 ranks x batch 4 x 4 steps (2 epochs of 2 batches)

    missing = cli("main.py", ["--name", "x", "--base", TINY, "--train", "--accelerator", "cpu",
                              f"data.params.shards=[{tmp_path / 'nope'}]"], tmp_path)
    assert missing.returncode == 2 and "index.json" in missing.stderr and "Traceback" not in missing.stderr


def test_cli_latent_shards_train_a_model_loaded_from_the_same_checkpoint(tmp_path, tiny_model_dir):
    pairs = write_pairs(tmp_path / "pairs", n=8)
    no_ckpt = cli("dataset_creation/pack_pairs.py", ["--pairs", str(pairs), "--out", "x", "--latents"], tmp_path)
    assert no_ckpt.returncode == 2 and "--ckpt" in no_ckpt.stderr and "Traceback" not in no_ckpt.stderr
    packed = cli("dataset_creation/pack_pairs.py", ["--pairs", str(pairs), "--out", "latents", "--latents", "--quiet",
                                                    "--ckpt", str(tiny_model_dir), "--resolution", "64",
                                                    "--workers", "0", "--device", "cpu"], tmp_path)
    assert packed.returncode == 0, packed.stderr
    assert "packed 8 latents samples (seg 8)" in packed.stdout
    result = cli("main.py", ["--name", "lat", "--base", TINY, "--train", "--accelerator", "cpu", "--logdir", "logs",
                             "data.params.shards=[latents]", f"model.params.ckpt_path={tiny_model_dir}",
                             "lightning.trainer.max_steps=3", "lightning.callbacks.image_every_n_steps=0",
                             "lightning.export_on_end=false"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "done: step 3, 12 images at" in result.stdout
