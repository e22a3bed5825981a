"""main.py end to end on the tiny config (CPU): checkpoints, previews, export, resume, DDP, signals."""

from __future__ import annotations

import copy
import csv
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from PIL import Image
from test_train_data import TINY_VAE_8X, new_datamodule, new_model, write_pairs

import main as main_py
from instructcv.cli import UsageError
from instructcv.pairs import read_prompt, read_seeds
from ldm.batch import load_pair_images, to_model_range
from ldm.callbacks import LastCheckpoint
from ldm.components import build_random_components
from ldm.loading import load_components
from ldm.model import InstructCVModel
from ldm.preview import sample_answers

REPO = Path(__file__).resolve().parents[1]
TINY = str(REPO / "configs" / "tiny.yaml")
QUIET = ["lightning.callbacks.image_every_n_steps=0", "lightning.export_on_end=false"]

pytestmark = pytest.mark.filterwarnings("ignore:Found .* module")


@pytest.fixture(autouse=True)
def no_pinned_run_dir(one_torch_thread, monkeypatch):
    """One torch thread, and no INSTRUCTCV_RUN_DIR from the environment deciding the run folder."""
    monkeypatch.delenv(main_py.RUN_DIR_ENV, raising=False)


@pytest.fixture(scope="module")
def pairs(tmp_path_factory) -> Path:
    return write_pairs(tmp_path_factory.mktemp("train") / "image_pairs", n=16)


def run_cli(args: list[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    env.pop(main_py.RUN_DIR_ENV, None)
    return subprocess.run([sys.executable, str(REPO / "main.py"), *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


def only_run(logdir: Path) -> Path:
    runs = [p for p in logdir.iterdir() if p.is_dir()]
    assert len(runs) == 1, runs
    return runs[0]


def test_cli_run_writes_checkpoints_metrics_previews_and_an_export_diffusers_reproduces(tmp_path, pairs):
    from diffusers import StableDiffusionInstructPix2PixPipeline

    result = run_cli(["--name", "tiny", "--base", TINY, "--train", "--accelerator", "cpu", "--logdir", "logs",
                      f"data.params.pairs=[{pairs}]", "lightning.trainer.max_steps=6",
                      "lightning.trainer.log_every_n_steps=1", "lightning.callbacks.checkpoint_every_n_steps=3",
                      "lightning.callbacks.image_every_n_steps=3", "lightning.callbacks.keep_every_n_steps=3",
                      "lightning.callbacks.keep_checkpoints=1"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    run = only_run(tmp_path / "logs")
    assert run.name.endswith("_tiny") and run.name[:4].isdigit()
    assert "done: step 6" in result.stdout and "images/s" in result.stdout

    ckpt = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True, map_location="cpu")
    assert ckpt["global_step"] == 6 and ckpt["instructcv"]["format"] == 1
    assert ckpt["instructcv"]["config"]["lightning"]["trainer"]["max_steps"] == 6
    state = ckpt["state_dict"]
    assert int(state["ema.num_updates"]) == 6
    assert not torch.equal(state["unet.conv_in.weight"], state["ema.model.conv_in.weight"])
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["last.ckpt", "step0000006.ckpt"]  # keep 1

    rows = list(csv.DictReader(open(next((run / "csv").glob("*/metrics.csv")))))
    for column in ("train/loss", "lr-AdamW", "train/images_per_sec"):
        assert any(row.get(column) for row in rows), column
    assert max(int(r["step"]) for r in rows) == 5
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))
    assert "max_steps: 6" in (run / "config.yaml").read_text()

    # preview grids: one row per preview pair, input | target | answer; the first two columns are the data
    records = read_seeds(pairs)
    previews = [records[0], records[-1]]  # preview_count 2, spread over the pairs
    for step in (3, 6):
        grid = np.asarray(Image.open(run / "images" / f"step_{step:07d}.png"))
        assert grid.shape == (2 * 64, 3 * 64, 3)
        for row, record in enumerate(previews):
            image, target = load_pair_images(record, 64)
            assert np.array_equal(grid[row * 64:(row + 1) * 64, :64], image)
            assert np.array_equal(grid[row * 64:(row + 1) * 64, 64:128], target)

    # the export holds the EMA UNet, opens in diffusers offline and answers like our own sampler
    export = run / "export"
    pipe = StableDiffusionInstructPix2PixPipeline.from_pretrained(export, local_files_only=True)
    torch.testing.assert_close(pipe.unet.conv_in.weight, state["ema.model.conv_in.weight"])
    ours = load_components(run / "checkpoints" / "last.ckpt")  # EMA by default
    image = load_pair_images(records[1], 64)[0]
    prompt = read_prompt(records[1])
    theirs = pipe(prompt, image=Image.fromarray(image), num_inference_steps=4, guidance_scale=7.5,
                  image_guidance_scale=1.5, generator=torch.Generator().manual_seed(0), output_type="np").images[0]
    mine = sample_answers(ours.unet, ours.vae, ours.text_encoder, ours.tokenizer, ours.scheduler_config,
                          to_model_range(image)[None], [prompt], steps=4, cfg_text=7.5, cfg_image=1.5,
                          generator=torch.Generator().manual_seed(0))
    mine = ((mine[0].permute(1, 2, 0) + 1) / 2).numpy()
    assert theirs.shape == mine.shape == (64, 64, 3)
    np.testing.assert_allclose(theirs, mine, atol=2e-3)
    assert np.abs(theirs - 0.5).max() > 0.01  # a real image, not a constant

    # --export on the run folder writes the same weights again (and replaces an earlier export)
    again = tmp_path / "exported"
    again.mkdir()
    (again / "stale.txt").write_text("old")
    assert main_py.main(["--export", str(run), "--to", str(again)]) == 0
    assert not (again / "stale.txt").exists()
    reopened = StableDiffusionInstructPix2PixPipeline.from_pretrained(again, local_files_only=True)
    torch.testing.assert_close(reopened.unet.conv_in.weight, state["ema.model.conv_in.weight"])


def test_resume_auto_continues_at_the_saved_step_with_the_saved_optimizer(tmp_path, pairs, monkeypatch):
    common = ["--name", "res", "--base", TINY, "--train", "--accelerator", "cpu", "--logdir", str(tmp_path / "logs"),
              f"data.params.pairs=[{pairs}]", "lightning.callbacks.checkpoint_every_n_steps=2",
              "lightning.trainer.log_every_n_steps=1", *QUIET]
    assert main_py.main([*common, "lightning.trainer.max_steps=4"]) == 0
    run = only_run(tmp_path / "logs")
    saved = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert saved["global_step"] == 4

    seen = {}
    original = InstructCVModel.on_train_start

    def probe(self):
        seen["step"] = self.trainer.global_step
        seen["optimizer"] = copy.deepcopy(self.trainer.optimizers[0].state_dict())  # AdamW updates in place
        seen["ema_updates"] = int(self.ema.num_updates)
        original(self)

    monkeypatch.setattr(InstructCVModel, "on_train_start", probe)
    monkeypatch.delenv(main_py.RUN_DIR_ENV, raising=False)
    assert main_py.main([*common, "--resume", "auto", "lightning.trainer.max_steps=6", "model.params.lr=5e-5"]) == 0
    assert only_run(tmp_path / "logs") == run  # same run folder, no new one

    assert seen["step"] == 4 and seen["ema_updates"] == 4
    restored, expected = seen["optimizer"]["state"], saved["optimizer_states"][0]["state"]
    assert restored.keys() == expected.keys() and len(expected) > 10
    for index, param_state in expected.items():
        for name, value in param_state.items():
            assert torch.equal(torch.as_tensor(restored[index][name]), torch.as_tensor(value)), (index, name)
    final = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert final["global_step"] == 6
    assert all(float(s["step"]) == 6 for s in final["optimizer_states"][0]["state"].values())  # AdamW kept counting
    assert saved["optimizer_states"][0]["param_groups"][0]["lr"] == 1e-4
    assert final["optimizer_states"][0]["param_groups"][0]["lr"] == 5e-5  # the resumed run's config wins
    assert len(list((run / "csv").glob("*/metrics.csv"))) == 2  # one per launch, the first one kept


def test_two_process_cpu_ddp_finishes_with_identical_weights(tmp_path, pairs):
    result = run_cli(["--name", "ddp", "--base", TINY, "--train", "--accelerator", "cpu", "--devices", "2",
                      "--logdir", "logs", f"data.params.pairs=[{pairs}]", "lightning.trainer.max_steps=4", *QUIET],
                     tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    run = only_run(tmp_path / "logs")
    report = json.loads((run / "rank_checksums.json").read_text())
    assert report["world_size"] == 2 and report["global_step"] == 4 and len(report["ranks"]) == 2
    assert report["ranks"][0] == report["ranks"][1] and report["agree"] is True
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["global_step"] == 4
    assert "done: step 4, 32 images at" in result.stdout  # 2 ranks x 4 pairs x 4 steps


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGUSR1])
def test_stop_signal_writes_last_checkpoint_then_stops(tmp_path, signum):
    comps = build_random_components("tiny", seed=0, overrides=TINY_VAE_8X)
    dm = new_datamodule(comps, [write_pairs(tmp_path / "pairs", n=8)], resolution=64, batch_size=2, num_workers=0)
    last = LastCheckpoint(tmp_path / "checkpoints" / "last.ckpt")

    class SignalAtStep3(pl.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            if trainer.global_step == 3:
                os.kill(os.getpid(), signum)

    before = signal.getsignal(signum)
    trainer = pl.Trainer(accelerator="cpu", max_steps=1000, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, callbacks=[SignalAtStep3(), last])
    trainer.fit(new_model(comps), datamodule=dm)
    assert trainer.global_step == 3 and last.stopped_by == signal.Signals(signum).name
    assert torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 3
    assert signal.getsignal(signum) == before  # handlers handed back after training


def test_config_errors_are_one_line_usage_errors(tmp_path, pairs):
    base = ["--name", "x", "--base", TINY, "--train", "--logdir", str(tmp_path), f"data.params.pairs=[{pairs}]"]
    with pytest.raises(UsageError, match="lrr"):
        main_py.main([*base, "model.params.lrr=1"])
    with pytest.raises(UsageError, match="nope.yaml"):
        main_py.main(["--name", "x", "--base", "nope.yaml", "--train"])
    with pytest.raises(UsageError, match="no training pairs"):
        main_py.main(["--name", "x", "--base", TINY, "--train"])
    with pytest.raises(UsageError, match="nothing to do"):
        main_py.main(["--name", "x", "--base", TINY])
    with pytest.raises(UsageError, match=r"task_weights=\{'depth': 1\}: keys are task tags \(det, seg, cls, depes\)"):
        main_py.main([*base, "data.params.task_weights={depth: 1}"])
    with pytest.raises(UsageError, match="values non-negative numbers"):
        main_py.main([*base, "data.params.task_weights={seg: -1}"])
    with pytest.raises(UsageError, match="task_weights is for pairs folders"):
        main_py.main([*base, "data.params.task_weights={seg: 1}", f"data.params.shards=[{pairs}]"])
    assert not any(tmp_path.iterdir())  # refused before any run folder
    config = main_py.load_config([TINY], ["model.params.lr=5e-5", "data.params.batch_size=8"])
    assert config.model.params.lr == 5e-5 and config.data.params.batch_size == 8
    assert config.data.params.resolution == 64  # from tiny.yaml over DEFAULTS


def test_resume_targets_resolve_to_run_and_checkpoint(tmp_path):
    logdir = tmp_path / "logs"
    for stamp in ("2024-01-01T00-00-00", "2024-02-01T00-00-00"):
        (logdir / f"{stamp}_exp" / "checkpoints").mkdir(parents=True)
        (logdir / f"{stamp}_exp" / "checkpoints" / "last.ckpt").write_bytes(b"x")
    (logdir / "2024-03-01T00-00-00_other").mkdir()
    args = main_py.parse_args(["--name", "exp", "--resume", "auto", "--logdir", str(logdir)])
    assert main_py.resolve_run(args, "exp") == (logdir / "2024-02-01T00-00-00_exp",
                                                logdir / "2024-02-01T00-00-00_exp" / "checkpoints" / "last.ckpt")
    older = logdir / "2024-01-01T00-00-00_exp"
    args = main_py.parse_args(["--resume", str(older / "checkpoints" / "last.ckpt"), "--logdir", str(logdir)])
    assert main_py.resolve_run(args, "exp") == (older, older / "checkpoints" / "last.ckpt")
    args = main_py.parse_args(["--name", "new", "--resume", "auto", "--logdir", str(logdir)])
    run, ckpt = main_py.resolve_run(args, "new")
    assert ckpt is None and run.parent == logdir and run.name.endswith("_new")
