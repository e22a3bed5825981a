"""One-step models (model.params.objective=one_step): training, checkpoint, export to diffusers, every CLI."""

from __future__ import annotations

import importlib.util
import json
import logging
import sys
from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from conftest import FAST_TINY
from PIL import Image
from test_train_data import new_datamodule, new_model, write_pairs

import main as main_py
from instructcv.cli import UsageError
from instructcv.pairs import read_prompt, read_seeds
from ldm import one_step, training
from ldm.batch import load_pair_images
from ldm.components import build_random_components
from ldm.inference import InstructCV
from ldm.loading import load_components
from tasks import segmentation

REPO = Path(__file__).resolve().parents[1]
TINY = str(REPO / "configs" / "tiny.yaml")
PROMPT = "Segment the red square."

pytestmark = [pytest.mark.filterwarnings("ignore:Found .* module"), pytest.mark.usefixtures("one_torch_thread")]


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(f"{name}_cli", REPO / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def pairs(tmp_path_factory) -> Path:
    return write_pairs(tmp_path_factory.mktemp("one_step") / "pairs", n=8)


@pytest.fixture(scope="module")
def run(pairs, tmp_path_factory) -> Path:
    """A one-step run of main.py on the tiny config: 4 steps, previews at step 2, exported at the end."""
    logdir = tmp_path_factory.mktemp("one_step_logs")
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv(main_py.RUN_DIR_ENV, raising=False)
        assert main_py.main(["--name", "os", "--base", TINY, "--train", "--accelerator", "cpu", "--logdir",
                             str(logdir), f"data.params.pairs=[{pairs}]", "model.params.objective=one_step",
                             "model.params.decoder_loss_weight=0.5", "model.params.commit_loss_weight=2.0",
                             "lightning.trainer.max_steps=4", "lightning.trainer.log_every_n_steps=1",
                             "lightning.callbacks.image_every_n_steps=2"]) == 0
    (folder,) = logdir.iterdir()
    return folder


def iou(answer: Image.Image, target: np.ndarray) -> float:
    pred, truth = segmentation.decode(answer, answer.size), target.mean(-1) > 127
    return float((pred & truth).sum() / max((pred | truth).sum(), 1))


def test_unknown_objective_or_loss_is_a_usage_error_before_any_run_folder(tmp_path, pairs, monkeypatch):
    monkeypatch.delenv(main_py.RUN_DIR_ENV, raising=False)
    base = ["--name", "x", "--base", TINY, "--train", "--logdir", str(tmp_path / "logs"),
            f"data.params.pairs=[{pairs}]"]
    with pytest.raises(UsageError, match="objective 'bogus'.*diffusion, one_step"):
        main_py.main([*base, "model.params.objective=bogus"])
    with pytest.raises(UsageError, match="one-step loss 'l3'"):
        main_py.main([*base, "model.params.objective=one_step", "model.params.one_step_loss=l3"])
    with pytest.raises(UsageError, match="decoder_loss_weight"):
        main_py.main([*base, "model.params.objective=one_step", "model.params.decoder_loss_weight=-1"])
    with pytest.raises(UsageError, match="commit_loss_weight=-1.0: must not be negative"):
        main_py.main([*base, "model.params.objective=one_step", "model.params.commit_loss_weight=-1.0"])
    with pytest.raises(UsageError, match="unknown lr_decay 'linear'; one of constant, cosine"):
        main_py.main([*base, "model.params.lr_decay=linear"])
    assert not (tmp_path / "logs").exists()


def test_one_step_model_overfits_8_pairs_to_decodable_masks(tmp_path, pairs):
    """The tiny model (its autoencoder trained alongside) answers its 8 training pairs with masks of IoU >= 90 %."""
    torch.manual_seed(0)  # the batch order and its noise: not whatever RNG state earlier tests left (seeds 0, 1: pass)
    comps = build_random_components("tiny", seed=0, overrides=FAST_TINY)
    model = new_model(comps, lr=3e-3, use_ema=False, trainable=("unet", "vae"), objective="one_step",
                      decoder_loss_weight=1.0, cond_drop_prob=0.0)
    data = new_datamodule(comps, [pairs], resolution=64, batch_size=8, num_workers=0, flip=False)
    trainer = pl.Trainer(accelerator="cpu", max_steps=150, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
                         limit_val_batches=0)
    trainer.fit(model, datamodule=data)
    answerer = InstructCV.from_components(model.components, device="cpu")
    scores = []
    for record in read_seeds(pairs):
        image, target = load_pair_images(record, 64)
        (answer,) = answerer([Image.fromarray(image)], read_prompt(record), resolution=64, progress=False)
        scores.append(iou(answer, target))
    assert min(scores) >= 0.9, scores
    # the start-latent weights stayed exactly zero: the UNet ignores any start latent
    assert torch.count_nonzero(model.unet.conv_in.weight[:, :4]) == 0


def test_checkpoint_records_the_objective_and_the_export_reproduces_in_diffusers(run, pairs):
    from diffusers import DDIMScheduler, StableDiffusionInstructPix2PixPipeline

    ckpt = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True, map_location="cpu")
    assert ckpt["instructcv"]["objective"] == "one_step"
    assert torch.count_nonzero(ckpt["state_dict"]["ema.model.conv_in.weight"][:, :4]) == 0
    assert torch.count_nonzero(ckpt["state_dict"]["ema.model.conv_in.weight"][:, 4:]) > 0
    assert sorted(p.name for p in (run / "images").iterdir()) == ["step_0000002.png", "step_0000004.png"]
    (log,) = (run / "csv").glob("*/metrics.csv")
    header, *rows = [line.split(",") for line in log.read_text().splitlines()]
    logged = [{k: v for k, v in zip(header, row, strict=True) if v} for row in rows]
    steps = [r for r in logged if "train/commit_loss" in r]
    # seg pairs only: the commit loss reads classification answers alone, so it is logged as 0
    assert len(steps) == 4 and all(float(r["train/commit_loss"]) == 0 and float(r["train/decoder_loss"]) > 0
                                   for r in steps)
    for r in steps:  # the logged total is the sum of its parts
        parts = sum(float(r[f"train/{k}"]) for k in ("latent_loss", "decoder_loss", "commit_loss"))
        assert float(r["train/loss"]) == pytest.approx(parts, rel=1e-5)

    export = run / "export"
    info = json.loads((export / one_step.MODEL_INFO_FILE).read_text())
    assert info["objective"] == "one_step" and info["timestep"] == 999
    assert info["scheduler_config"]["prediction_type"] == "epsilon"  # the training schedule, kept
    assert load_components(export).objective == "one_step"

    record = read_seeds(pairs)[1]
    image = Image.fromarray(load_pair_images(record, 64)[0])
    prompt = read_prompt(record)
    (ours,) = InstructCV.from_pretrained(run, device="cpu")([image], prompt, resolution=64, progress=False)
    pipe = StableDiffusionInstructPix2PixPipeline.from_pretrained(export, local_files_only=True)
    assert isinstance(pipe.scheduler, DDIMScheduler) and pipe.scheduler.config.prediction_type == "sample"
    ours = np.asarray(ours, dtype=int)
    for seed in (0, 7):  # the start latent (seeded noise in diffusers) does not matter
        theirs = pipe(prompt, image=image, num_inference_steps=1, guidance_scale=1.0, image_guidance_scale=1.0,
                      generator=torch.Generator().manual_seed(seed)).images[0]
        assert np.abs(np.asarray(theirs, dtype=int) - ours).max() <= 2
    zeros = torch.zeros(1, 4, 8, 8)  # the documented start latent works as well
    theirs = pipe(prompt, image=image, num_inference_steps=1, guidance_scale=1.0, image_guidance_scale=1.0,
                  latents=zeros).images[0]
    assert np.abs(np.asarray(theirs, dtype=int) - ours).max() <= 2
    assert ours.std() > 0.5  # a real picture, not a constant


def test_fine_tuning_a_diffusion_model_into_one_step_starts_from_its_weights(tiny_model_dir):
    config = main_py.load_config([TINY], [f"model.params.ckpt_path={tiny_model_dir}",
                                          "model.params.objective=one_step"])
    components = training.build_components(config, None, allow_unsafe_pickle=False)
    model = training.build_model(config, components, main_py.model_params(config))
    source = load_components(tiny_model_dir)
    assert source.objective == "diffusion" and model.objective == "one_step"
    theirs, mine = source.unet.state_dict(), model.unet.state_dict()
    for name, value in theirs.items():
        if name == "conv_in.weight":  # the start-latent channels are zeroed, the image channels kept
            assert torch.count_nonzero(mine[name][:, :4]) == 0
            torch.testing.assert_close(mine[name][:, 4:], value[:, 4:], rtol=0, atol=0)
        else:
            torch.testing.assert_close(mine[name], value, rtol=0, atol=0)
    torch.testing.assert_close(model.ema.model.conv_in.weight, model.unet.conv_in.weight, rtol=0, atol=0)
    assert model.components.objective == "one_step"


def test_one_step_checkpoint_answers_through_edit_cli_evaluate_and_app(run, pairs, tmp_path, caplog):
    from dataset_creation.format_dataset import build
    from dataset_creation.synthetic import write_all

    record = read_seeds(pairs)[2]
    image = Image.fromarray(load_pair_images(record, 64)[0])
    model = InstructCV.from_pretrained(run, device="cpu")
    assert model.objective == "one_step" and "one step" in repr(model)
    (expected,) = model([image], PROMPT, resolution=64, progress=False)

    folder = tmp_path / "in"
    folder.mkdir()
    image.save(folder / "a.png")
    edit_cli = load_script("edit_cli")
    with caplog.at_level(logging.WARNING):
        assert edit_cli.main(["--input", str(folder), "--output", str(tmp_path / "out"), "--edit", PROMPT,
                              "--ckpt", str(run), "--steps", "5", "--cfg-text", "2", "--resolution", "64"]) == 0
    assert sum("ignored" in r.message for r in caplog.records) == 1
    assert np.array_equal(np.asarray(Image.open(tmp_path / "out" / "a.png")), np.asarray(expected))

    app = load_script("app")
    answer, _ = app.Demo(model, resolution=64).answer(image, PROMPT, steps=30, cfg_text=9.0)
    assert np.array_equal(np.asarray(answer), np.asarray(expected))

    raw = tmp_path / "raw"
    write_all(raw, ("coco",), num_train=0, num_eval=2, size=64, seed=0, progress=False)
    build(tmp_path / "eval", [raw / "coco"], dataset="coco", split="eval", progress=False)
    rows = [json.loads(line) for line in (tmp_path / "eval" / "metadata.jsonl").read_text().splitlines()]
    seg = next(r for r in rows if r["task"] == "seg")
    evaluate = load_script("evaluate")
    out = tmp_path / "metrics.json"
    assert evaluate.main(["--pairs", str(tmp_path / "eval"), "--ckpt", str(run), "--out", str(out), "--limit", "1",
                          "--resolution", "64", "--quiet"]) == 0
    assert "seg" in json.loads(out.read_text())
    answers = tmp_path / "metrics_answers"
    source = tmp_path / "eval" / seg["sample"] / f"{seg['stem']}_0.jpg"
    (direct,) = model([source], seg["edit"], resolution=64, progress=False)
    assert np.array_equal(np.asarray(Image.open(answers / f"{seg['sample']}.png")), np.asarray(direct))


def test_the_demo_trains_answers_and_scores_a_one_step_model(tmp_path):
    """`make demo DEMO_ARGS="--model-config configs/demo_one_step.yaml"` runs end to end with a one-step UNet."""
    from test_demo import SMALL, make_demo

    out = tmp_path / "demo"
    result = make_demo(out, f"{SMALL} --model-config configs/demo_one_step.yaml")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    ckpt = torch.load(out / "runs" / "model" / "checkpoints" / "last.ckpt", weights_only=True, map_location="cpu")
    assert ckpt["instructcv"]["objective"] == "one_step"
    assert ckpt["instructcv"]["config"]["model"]["params"]["one_step_loss"] == "mse"
    first = torch.load(out / "runs" / "autoencoder" / "checkpoints" / "last.ckpt", weights_only=True,
                       map_location="cpu")
    assert first["instructcv"]["objective"] == "diffusion"  # the autoencoder stage is the diffusion demo's
    assert "ignored" in result.stdout + result.stderr  # --sampling-steps / --cfg-* say they do nothing here
    metrics = json.loads((out / "eval" / "metrics.json").read_text())
    assert set(metrics) == {"det", "seg", "cls", "depes"}


def _fit_constant_answer(weight: float, red: torch.Tensor, green: torch.Tensor, p_red: float) -> torch.Tensor:
    """The one answer latent a model that cannot tell the cases apart learns for a question answered red with
    probability ``p_red``: gradient descent on the expected one-step loss (MSE + ``weight`` x commit)."""
    answer = torch.zeros_like(red, requires_grad=True)
    optimizer = torch.optim.Adam([answer], lr=0.05)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1 - step / 3000)  # settles on the kink
    for _ in range(3000):
        optimizer.zero_grad()
        loss = sum(p * (torch.nn.functional.mse_loss(answer, target)
                        + weight * one_step.commit_loss(answer, target))
                   for p, target in ((p_red, red), (1 - p_red, green)))
        loss.backward()
        optimizer.step()
        schedule.step()
    return answer.detach()


def test_commit_loss_turns_the_blend_of_two_colours_into_the_likelier_one():
    """MSE alone regresses an unsure classification answer to 0.7 red + 0.3 green (read as neither colour);
    with the commit loss the same model draws red, the likelier answer (hand-worked: the optimum moves from
    0.7 to min(1, 0.7 + weight * 0.4 / (2 d)) of the way to red, d the per-channel distance)."""
    red = torch.tensor([1.0, -0.5, 0.25, 0.0]).view(1, 4, 1, 1).expand(1, 4, 8, 8).contiguous()
    green = torch.tensor([-1.0, 0.5, 0.25, 1.0]).view(1, 4, 1, 1).expand(1, 4, 8, 8).contiguous()
    blend = _fit_constant_answer(0.0, red, green, 0.7)
    assert torch.allclose(blend, 0.7 * red + 0.3 * green, atol=0.01)
    committed = _fit_constant_answer(3.0, red, green, 0.7)
    assert torch.allclose(committed, red, atol=0.02)
    # a question the model is sure of is not pulled anywhere else
    assert torch.allclose(_fit_constant_answer(3.0, red, green, 1.0), red, atol=0.02)
    # L1 between spatial means, by hand: the channel means differ by 2, 1, 0, 1 -> mean 1
    assert one_step.commit_loss(red, green).item() == pytest.approx(1.0)
    # only the samples of the mask (the cls ones) count; none selected: 0, with a graph to backpropagate
    pred, target = torch.cat([red, green, red]), torch.cat([green, green, red])
    assert one_step.commit_loss(pred, target, torch.tensor([True, False, True])).item() == pytest.approx(0.5)
    none = one_step.commit_loss(pred.requires_grad_(), target, torch.zeros(3, dtype=torch.bool))
    assert none.item() == 0.0 and none.requires_grad


def test_architecture_overrides_a_checkpoint_contradicts_are_named_as_ignored(tiny_model_dir, caplog):
    config = main_py.load_config([TINY], [f"model.params.ckpt_path={tiny_model_dir}",
                                          "model.params.architecture_overrides.unet.layers_per_block=3"])
    with caplog.at_level("WARNING", logger="ldm.training"):
        components = training.build_components(config, None, allow_unsafe_pickle=False)
    assert components.unet.config.layers_per_block == load_components(tiny_model_dir).unet.config.layers_per_block
    warning = " ".join(r.getMessage() for r in caplog.records)
    assert "unet.layers_per_block=3" in warning and str(tiny_model_dir) in warning
    # tiny.yaml's own VAE override (4 levels) is not what this 3-level model has: named too
    assert "vae.block_out_channels" in warning
    same = {"unet": {"layers_per_block": components.unet.config.layers_per_block,
                     "block_out_channels": list(components.unet.config.block_out_channels)}}
    assert training.check_overrides_match(components, same, "m") == []
    with pytest.raises(UsageError, match="architecture_overrides.unte: no such component"):
        training.check_overrides_match(components, {"unte": {"x": 1}}, "m")
