"""ldm.data and ldm.latent_cache on a small pairs folder in the DESIGN.md section 4 layout.

``write_pairs`` is the fixture writer the other training tests import: 64 px pairs whose target is
the white mask of a red square drawn on a noisy input ("Segment the red square.").
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import main as main_py
from instructcv.cli import UsageError
from instructcv.pairs import read_seeds, scan_pairs
from ldm.batch import tokenize
from ldm.components import build_random_components
from ldm.data import PairsDataModule, PairsDataset, task_sampling_weights
from ldm.latent_cache import CACHE_DIRNAME, CachedPairsDataset, build_latent_cache, open_latent_cache
from ldm.model import InstructCVModel

TINY_VAE_8X = {  # configs/tiny.yaml's VAE: 8x downsampling like SD, so 64 px -> 8x8 latents
    "vae": {"block_out_channels": [16, 16, 32, 32], "down_block_types": ["DownEncoderBlock2D"] * 4,
            "up_block_types": ["UpDecoderBlock2D"] * 4}
}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def new_model(components, **params) -> InstructCVModel:
    """An InstructCVModel with main.py's DEFAULTS and ``params`` on top (seed 0 unless given)."""
    return InstructCVModel(components, **main_py.model_params(**{"seed": 0, **params}))


def new_datamodule(components, pairs: list, **params) -> PairsDataModule:
    """A PairsDataModule over ``pairs`` with main.py's DEFAULTS and ``params`` on top."""
    params = main_py.data_params(pairs=[str(p) for p in pairs], **params)
    return PairsDataModule(components, **{k: v for k, v in params.items() if k not in main_py.SHARDS_ONLY_PARAMS})


def write_pairs(root: Path, n: int = 24, size: int = 64, seed: int = 0) -> Path:
    """A pairs folder: seeds.json, <sample>/<stem>_0.jpg, <stem>_1.png, prompt.json."""
    rng = np.random.default_rng(seed)
    seeds = []
    for i in range(n):
        stem = f"syn_{seed}_{i:04d}"
        sample = f"{stem}_seg_red_square"
        folder = root / sample
        folder.mkdir(parents=True, exist_ok=True)
        image = rng.integers(0, 120, (size, size, 3), dtype=np.uint8)
        x, y = rng.integers(0, size // 2, 2)
        side = size // 3
        image[y:y + side, x:x + side] = (255, 0, 0)
        mask = np.zeros((size, size, 3), np.uint8)
        mask[y:y + side, x:x + side] = 255
        Image.fromarray(image).save(folder / f"{stem}_0.jpg", quality=95)
        Image.fromarray(mask).save(folder / f"{stem}_1.png")
        prompt = "Segment the red square." if i % 2 == 0 else "Show the red square as a white mask."
        (folder / "prompt.json").write_text(json.dumps({"edit": prompt, "task": "seg", "class": "red square",
                                                        "dataset": "synthetic"}))
        seeds.append([sample, [stem]])
    (root / "seeds.json").write_text(json.dumps(sorted(seeds)))
    return root


@pytest.fixture(scope="module")
def pairs(tmp_path_factory) -> Path:
    return write_pairs(tmp_path_factory.mktemp("pairs") / "image_pairs", n=12)


@pytest.fixture(scope="module")
def tiny():
    return build_random_components("tiny", seed=1, overrides=TINY_VAE_8X)


def test_read_seeds_and_missing_files_are_reported(tmp_path):
    root = write_pairs(tmp_path / "p", n=4)
    records = read_seeds(root)
    assert [r.key for r in records] == sorted(f"{r.sample}/{r.stem}" for r in records)
    assert records[0].input_path.name.endswith("_0.jpg") and records[0].target_path.name.endswith("_1.png")
    records[1].target_path.unlink()
    kept, problems = scan_pairs([root, write_pairs(tmp_path / "q", n=2, seed=1)])  # folders are pooled
    assert len(kept) == 5 and len(problems) == 1
    assert str(records[1].target_path) in problems[0] and "skipped" in problems[0]


def test_dataset_flips_input_and_target_together(pairs, tiny):
    ds = PairsDataset(read_seeds(pairs), tiny.tokenizer, resolution=64, flip=True)
    plain = PairsDataset(read_seeds(pairs), tiny.tokenizer, resolution=64, flip=False)
    torch.manual_seed(0)
    flipped_seen = 0
    for i in range(len(ds)):
        item, ref = ds[i], plain[i]
        assert item["input"].shape == (3, 64, 64) and item["input"].min() >= -1 and item["input"].max() <= 1
        # the target mask must cover the red square of the (possibly flipped) input
        red = (item["input"][0] > 0.8) & (item["input"][1] < -0.5)
        white = item["target"].mean(0) > 0.5
        assert (red & white).sum() >= 0.9 * red.sum() > 0
        if not torch.equal(item["input"], ref["input"]):
            assert torch.equal(item["input"], ref["input"].flip(-1)) and torch.equal(item["target"], ref["target"].flip(-1))
            flipped_seen += 1
    assert 0 < flipped_seen < len(ds)
    prompt = json.loads((pairs / read_seeds(pairs)[0].sample / "prompt.json").read_text())["edit"]
    assert torch.equal(plain[0]["input_ids"], tokenize(tiny.tokenizer, prompt)[0])


def test_latent_cache_matches_direct_encoding_and_is_invalidated(tmp_path, tiny):
    root = write_pairs(tmp_path / "pairs", n=6)
    records = read_seeds(root)
    assert build_latent_cache(records, tiny, 64, batch_size=4, num_workers=0, progress=False) == 6
    assert build_latent_cache(records, tiny, 64, batch_size=4, num_workers=0, progress=False) == 0  # reused
    folders = list((root / CACHE_DIRNAME).iterdir())
    assert len(folders) == 1 and len(list(folders[0].glob("shard-*"))) == 1

    cache = open_latent_cache(records, tiny, 64)
    plain = PairsDataset(records, tiny.tokenizer, 64, flip=False)
    with torch.no_grad():
        for i in (0, 5):
            item, ref = cache.item(i), plain[i]
            posterior = tiny.vae.encode(torch.stack([ref["input"], ref["target"]])).latent_dist
            torch.testing.assert_close(item["input_mode"].float(), posterior.mode()[0], atol=2e-3, rtol=2e-3)
            torch.testing.assert_close(item["target_mean"].float(), posterior.mean[1], atol=2e-3, rtol=2e-3)
            torch.testing.assert_close(item["target_std"].float(), posterior.std[1], atol=2e-3, rtol=2e-3)
            text = tiny.text_encoder(ref["input_ids"][None])[0][0]
            torch.testing.assert_close(item["text_embedding"].float(), text, atol=2e-3, rtol=2e-3)
            assert item["input_mode"].shape == (4, 8, 8)

    torch.manual_seed(1)
    flipped = [CachedPairsDataset(cache, flip=True)[0] for _ in range(12)]
    base, mirrored = cache.item(0), cache.item(0, flipped=True)
    kinds = {all(torch.equal(f[k], mirrored[k]) for k in ("input_mode", "target_mean", "target_std"))
             for f in flipped if not torch.equal(f["input_mode"], base["input_mode"])}
    assert kinds == {True}  # every flip takes input and target latents of the flipped pair together

    # a rewritten target is encoded again (new shard); the others are kept
    target = records[2].target_path
    Image.fromarray(np.full((64, 64, 3), 255, np.uint8)).save(target)
    os.utime(target, ns=(1, 1))
    assert build_latent_cache(records, tiny, 64, batch_size=4, num_workers=0, progress=False) == 1
    assert len(list(folders[0].glob("shard-*"))) == 2
    assert open_latent_cache(records, tiny, 64).item(2)["target_mean"].float().mean() != base["target_mean"].float().mean()

    # another VAE (one changed weight) gets its own cache folder
    other = build_random_components("tiny", seed=1, overrides=TINY_VAE_8X)
    with torch.no_grad():
        other.vae.decoder.conv_out.bias.add_(1.0)
    build_latent_cache(records, other, 64, batch_size=4, num_workers=0, progress=False)
    assert len(list((root / CACHE_DIRNAME).iterdir())) == 2


def test_cached_flipped_sample_is_the_encoding_of_the_flipped_images(tmp_path, tiny):
    """The VAE is not mirror-symmetric: a flipped training sample must be what the VAE makes of the flipped
    images, not the flipped latents of the unflipped ones (issue 15)."""
    root = write_pairs(tmp_path / "pairs", n=4)
    records = read_seeds(root)
    build_latent_cache(records, tiny, 64, batch_size=4, num_workers=0, progress=False)
    cache = open_latent_cache(records, tiny, 64)
    plain = PairsDataset(records, tiny.tokenizer, 64, flip=False)
    for i in range(len(records)):
        ref = plain[i]
        images = torch.stack([ref["input"].flip(-1), ref["target"].flip(-1)])  # the flipped pair, as images
        with torch.no_grad():
            posterior = tiny.vae.encode(images).latent_dist
        torch.manual_seed(0)
        item = next(it for it in (CachedPairsDataset(cache, flip=True)[i] for _ in range(40))
                    if not torch.equal(it["input_mode"], cache.item(i)["input_mode"]))  # a flipped draw
        torch.testing.assert_close(item["input_mode"].float(), posterior.mode()[0], atol=2e-3, rtol=2e-3)
        torch.testing.assert_close(item["target_mean"].float(), posterior.mean[1], atol=2e-3, rtol=2e-3)
        torch.testing.assert_close(item["target_std"].float(), posterior.std[1], atol=2e-3, rtol=2e-3)
        # and the latents the old cache used (flipped latents of the unflipped images) are not that
        mirrored_latent = cache.item(i)["input_mode"].float().flip(-1)
        assert (mirrored_latent - posterior.mode()[0]).abs().max() > 0.05
    # without flips the cache holds one orientation, and a flipped cache serves unflipped training too
    build_latent_cache(records, tiny, 64, batch_size=4, num_workers=0, progress=False, flip=False)
    assert len(list(next((root / CACHE_DIRNAME).iterdir()).glob("shard-*"))) == 1  # the flipped one suffices
    assert len(open_latent_cache(records, tiny, 64, flip=False)) == len(records)


def test_datamodule_uses_cache_without_running_the_vae(tmp_path, tiny, monkeypatch):
    root = write_pairs(tmp_path / "pairs", n=8)
    dm = new_datamodule(tiny, [root], resolution=64, batch_size=4, num_workers=0, cache_latents=True)
    dm.prepare_data()
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert set(batch) >= {"input_mode", "target_mean", "target_std", "text_embedding"}
    model = new_model(tiny, use_ema=False)
    monkeypatch.setattr(tiny.vae, "encode", lambda *a, **k: pytest.fail("VAE ran despite the cache"))
    loss = model.diffusion_loss(*model.batch_latents(batch))
    assert torch.isfinite(loss)


def test_task_sampling_weights_by_hand():
    tasks_of = ["seg"] * 6 + ["depes"] * 2 + ["cls"] * 4
    weights = task_sampling_weights(tasks_of, {"seg": 1, "depes": 1, "cls": 2})
    assert weights.tolist() == pytest.approx([1 / 6] * 6 + [1 / 2] * 2 + [2 / 4] * 4)
    with pytest.raises(UsageError, match=r"task_weights has no weight for depes \(the training pairs hold cls, "
                                         r"depes, seg\)"):
        task_sampling_weights(tasks_of, {"seg": 1, "cls": 1})
    with pytest.raises(UsageError, match="every task of the training pairs weight 0"):
        task_sampling_weights(tasks_of, {"seg": 0, "depes": 0, "cls": 0})


@pytest.mark.parametrize("cached", [False, True])
def test_task_weights_give_each_task_its_share_of_the_batches(tmp_path, tiny, cached):
    """20 seg pairs and 4 depth pairs: pooled, depth is 1/6 of the draws; with equal weights, half."""
    root = write_pairs(tmp_path / "pairs", n=24)
    depth = sorted(p for p in root.iterdir() if p.is_dir())[:4]
    for folder in depth:  # their prompt files say depes (a pairs folder without metadata.jsonl)
        entry = json.loads((folder / "prompt.json").read_text())
        (folder / "prompt.json").write_text(json.dumps({**entry, "task": "depes"}))
    depth_keys = {f"{f.name}/{f.name.split('_seg_')[0]}" for f in depth}
    shares = {}
    for name, weights in (("pooled", {}), ("equal", {"seg": 1.0, "depes": 1.0})):
        torch.manual_seed(0)
        dm = new_datamodule(tiny, [root], resolution=64, batch_size=8, num_workers=0, cache_latents=cached,
                            task_weights=weights)
        dm.prepare_data()
        batches = [batch for _ in range(60) for batch in dm.train_dataloader()]
        keys = [k for batch in batches for k in batch["key"]]
        shares[name] = sum(k in depth_keys for k in keys) / len(keys)
        # every item carries its task (the one-step commit loss reads the cls ones)
        assert all(task == ("depes" if key in depth_keys else "seg")
                   for batch in batches for key, task in zip(batch["key"], batch["task"], strict=True))
    assert shares["pooled"] == pytest.approx(4 / 24, abs=0.001)  # every pair once per epoch
    assert shares["equal"] == pytest.approx(0.5, abs=0.04)  # 1,440 draws: 3 binomial sigmas
