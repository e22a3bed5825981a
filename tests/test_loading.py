"""ldm.loading: every model source loads offline into the same components, and unsafe pickles are refused."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from ldm.components import architecture_of, build_random_components
from ldm.loading import CheckpointError, load_components

pytestmark = pytest.mark.usefixtures("one_torch_thread")


# ---- a test-side converter from diffusers key names back to the original CompVis LDM layout ----------
# (diffusers ships LDM -> diffusers only; this mirrors the mapping of its
# scripts/convert_diffusers_to_original_stable_diffusion.py, generalised to any block count.)

_UNET_RESNET = [("norm1", "in_layers.0"), ("conv1", "in_layers.2"), ("norm2", "out_layers.0"),
                ("conv2", "out_layers.3"), ("time_emb_proj", "emb_layers.1"), ("conv_shortcut", "skip_connection")]


def unet_to_ldm(state: dict, config: dict) -> dict:
    lpb, n = config["layers_per_block"], len(config["block_out_channels"])
    prefixes = [("time_embedding.linear_1.", "time_embed.0."), ("time_embedding.linear_2.", "time_embed.2."),
                ("conv_in.", "input_blocks.0.0."), ("conv_norm_out.", "out.0."), ("conv_out.", "out.2."),
                ("mid_block.resnets.0.", "middle_block.0."), ("mid_block.attentions.0.", "middle_block.1."),
                ("mid_block.resnets.1.", "middle_block.2.")]
    for i in range(n):
        for j in range(lpb):
            prefixes += [(f"down_blocks.{i}.resnets.{j}.", f"input_blocks.{(lpb + 1) * i + j + 1}.0."),
                         (f"down_blocks.{i}.attentions.{j}.", f"input_blocks.{(lpb + 1) * i + j + 1}.1.")]
        for j in range(lpb + 1):
            prefixes += [(f"up_blocks.{i}.resnets.{j}.", f"output_blocks.{(lpb + 1) * i + j}.0."),
                         (f"up_blocks.{i}.attentions.{j}.", f"output_blocks.{(lpb + 1) * i + j}.1.")]
        if i < n - 1:
            up_has_attention = "CrossAttn" in config["up_block_types"][i]
            prefixes += [(f"down_blocks.{i}.downsamplers.0.conv.", f"input_blocks.{(lpb + 1) * (i + 1)}.0.op."),
                         (f"up_blocks.{i}.upsamplers.0.", f"output_blocks.{(lpb + 1) * i + lpb}.{2 if up_has_attention else 1}.")]
    out = {}
    for key, value in state.items():
        hf, ldm = next((hf, ldm) for hf, ldm in prefixes if key.startswith(hf))
        rest = key[len(hf):]
        if ".resnets." in hf:
            for a, b in _UNET_RESNET:
                rest = rest.replace(a, b)
        out[ldm + rest] = value
    assert len(out) == len(state)
    return out


def vae_to_ldm(state: dict, config: dict) -> dict:
    lpb, n = config["layers_per_block"], len(config["block_out_channels"])
    prefixes = [("encoder.conv_norm_out.", "encoder.norm_out."), ("decoder.conv_norm_out.", "decoder.norm_out.")]
    for part in ("encoder", "decoder"):
        prefixes += [(f"{part}.mid_block.resnets.0.", f"{part}.mid.block_1."),
                     (f"{part}.mid_block.resnets.1.", f"{part}.mid.block_2."),
                     (f"{part}.mid_block.attentions.0.", f"{part}.mid.attn_1.")]
    for i in range(n):
        prefixes += [(f"encoder.down_blocks.{i}.resnets.{j}.", f"encoder.down.{i}.block.{j}.") for j in range(lpb)]
        prefixes += [(f"decoder.up_blocks.{i}.resnets.{j}.", f"decoder.up.{n - 1 - i}.block.{j}.") for j in range(lpb + 1)]
        if i < n - 1:
            prefixes += [(f"encoder.down_blocks.{i}.downsamplers.0.", f"encoder.down.{i}.downsample."),
                         (f"decoder.up_blocks.{i}.upsamplers.0.", f"decoder.up.{n - 1 - i}.upsample.")]
    out = {}
    for key, value in state.items():
        hf, ldm = next(((hf, ldm) for hf, ldm in prefixes if key.startswith(hf)), ("", ""))
        rest = key[len(hf):].replace("conv_shortcut", "nin_shortcut")
        if ".attentions." in hf:
            for a, b in [("group_norm.", "norm."), ("to_q.", "q."), ("to_k.", "k."), ("to_v.", "v."), ("to_out.0.", "proj_out.")]:
                rest = rest.replace(a, b)
            if value.ndim == 2:  # LDM stores the attention projections as 1x1 convolutions
                value = value[:, :, None, None]
        out[ldm + rest] = value
    assert len(out) == len(state)
    return out


def original_state_dict(components, ema_offset: float | None = None) -> dict:
    """A CompVis-layout single-file state dict of ``components`` (with ``model_ema.*`` if ema_offset)."""
    unet = unet_to_ldm(components.unet.state_dict(), dict(components.unet.config))
    sd = {"model.diffusion_model." + k: v.clone() for k, v in unet.items()}
    if ema_offset is not None:
        for k, v in unet.items():
            sd["model_ema." + "diffusion_model" + k.replace(".", "")] = v.clone() + ema_offset
        sd["model_ema.decay"] = torch.tensor(0.9999)
        sd["model_ema.num_updates"] = torch.tensor(100, dtype=torch.int32)
    sd.update({"first_stage_model." + k: v.clone() for k, v in vae_to_ldm(components.vae.state_dict(), dict(components.vae.config)).items()})
    # the original files name the CLIP weights cond_stage_model.transformer.text_model.*
    text = {("" if k.startswith("text_model.") else "text_model.") + k: v for k, v in components.text_encoder.state_dict().items()}
    sd.update({"cond_stage_model.transformer." + k: v.clone() for k, v in text.items()})
    return sd


def write_config_dir(components, root: Path) -> Path:
    """A configs/sd15-like folder describing the tiny architecture (configs only, no weights)."""
    components.unet.save_config(root / "unet")
    components.vae.save_config(root / "vae")
    components.text_encoder.config.save_pretrained(root / "text_encoder")
    return root


def assert_same_weights(module_a, module_b):
    a, b = module_a.state_dict(), module_b.state_dict()
    assert set(a) == set(b)
    for k in a:
        assert torch.equal(a[k].float(), b[k].float()), k


def unet_output(unet, latents, image_latents=None, seed=0):
    g = torch.Generator().manual_seed(seed)
    text = torch.randn(1, 77, unet.config.cross_attention_dim, generator=g)
    x = latents if image_latents is None else torch.cat([latents, image_latents], 1)
    with torch.no_grad():
        return unet(x, torch.tensor([500]), text).sample


@pytest.fixture(scope="module")
def tiny():
    return build_random_components("tiny", seed=3)


@pytest.mark.parametrize("suffix", [".safetensors", ".ckpt"])
def test_original_single_file_loads_offline(tmp_path, tiny, suffix):
    sd = original_state_dict(tiny)
    path = tmp_path / f"model{suffix}"
    if suffix == ".safetensors":
        save_file({k: v.contiguous() for k, v in sd.items()}, str(path))
    else:
        torch.save({"state_dict": sd, "global_step": 7}, path)  # the usual Lightning-era wrapping
    loaded = load_components(path, config_dir=write_config_dir(tiny, tmp_path / "cfg"))
    assert_same_weights(loaded.unet, tiny.unet)
    assert_same_weights(loaded.vae, tiny.vae)
    assert_same_weights(loaded.text_encoder, tiny.text_encoder)
    assert loaded.scheduler_config["beta_schedule"] == "scaled_linear"
    assert loaded.tokenizer.model_max_length == 77


def test_four_channel_checkpoint_is_widened_with_zero_channels(tmp_path):
    sd4 = build_random_components("tiny", seed=5, overrides={"unet": {"in_channels": 4}})
    path = tmp_path / "sd.safetensors"
    save_file({k: v.contiguous() for k, v in original_state_dict(sd4).items()}, str(path))
    loaded = load_components(path, config_dir=write_config_dir(sd4, tmp_path / "cfg"))

    weight = loaded.unet.conv_in.weight
    assert weight.shape[1] == 8 and loaded.unet.config.in_channels == 8
    assert torch.equal(weight[:, :4], sd4.unet.conv_in.weight)
    assert torch.count_nonzero(weight[:, 4:]) == 0
    latents = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(1))
    image_latents = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(unet_output(loaded.unet, latents, image_latents), unet_output(sd4.unet, latents),
                               rtol=1e-5, atol=1e-5)


def test_original_checkpoint_ema_weights_chosen_by_use_ema(tmp_path, tiny):
    path = tmp_path / "ip2p.ckpt"
    torch.save({"state_dict": original_state_dict(tiny, ema_offset=0.5)}, path)
    cfg = write_config_dir(tiny, tmp_path / "cfg")
    ema = load_components(path, config_dir=cfg, use_ema=True).unet
    raw = load_components(path, config_dir=cfg, use_ema=False).unet
    assert_same_weights(raw, tiny.unet)
    torch.testing.assert_close(ema.conv_out.weight, tiny.unet.conv_out.weight + 0.5)


def test_arbitrary_pickle_is_refused_unless_allowed(tmp_path, tiny):
    path = tmp_path / "pickled.ckpt"
    torch.save({"state_dict": original_state_dict(tiny), "args": argparse.Namespace(lr=1)}, path)
    cfg = write_config_dir(tiny, tmp_path / "cfg")
    with pytest.raises(CheckpointError) as err:
        load_components(path, config_dir=cfg)
    message = str(err.value)
    assert "refused to unpickle" in message and "argparse.Namespace" in message and str(path) in message
    assert "\n" not in message
    loaded = load_components(path, config_dir=cfg, allow_unsafe_pickle=True)
    assert_same_weights(loaded.unet, tiny.unet)


def test_diffusers_folder_and_four_channel_folder(tmp_path, tiny):
    for name, comps in (("ip2p", tiny), ("sd", build_random_components("tiny", seed=4, overrides={"unet": {"in_channels": 4}}))):
        folder = tmp_path / name
        comps.unet.save_pretrained(folder / "unet")
        comps.vae.save_pretrained(folder / "vae")
        comps.text_encoder.save_pretrained(folder / "text_encoder")
        loaded = load_components(folder)
        assert loaded.unet.config.in_channels == 8
        assert torch.equal(loaded.unet.conv_in.weight[:, : comps.unet.config.in_channels], comps.unet.conv_in.weight)
        assert_same_weights(loaded.vae, comps.vae)
        assert_same_weights(loaded.text_encoder, comps.text_encoder)


def test_main_checkpoint_and_run_folder(tmp_path, tiny):
    """The main.py checkpoint layout documented in ARCHITECTURE.md section 4, written by hand."""
    state = {}
    for prefix, module in (("unet.", tiny.unet), ("vae.", tiny.vae), ("text_encoder.", tiny.text_encoder)):
        state.update({prefix + k: v for k, v in module.state_dict().items()})
    state.update({"ema.model." + k: v + 1.0 for k, v in tiny.unet.state_dict().items()})
    state["ema.num_updates"] = torch.tensor(3)
    info = {"format": 1, "architecture": architecture_of(tiny), "scheduler_config": dict(tiny.scheduler_config),
            "config": {"model": {"params": {"lr": 1e-4}}}}
    run = tmp_path / "logs" / "2024-01-01T00-00-00_exp"
    (run / "checkpoints").mkdir(parents=True)
    torch.save({"state_dict": state, "instructcv": info, "global_step": 3}, run / "checkpoints" / "last.ckpt")

    raw = load_components(run / "checkpoints" / "last.ckpt", use_ema=False)
    assert_same_weights(raw.unet, tiny.unet)
    assert_same_weights(raw.text_encoder, tiny.text_encoder)
    ema = load_components(run)  # run folder -> checkpoints/last.ckpt, EMA by default
    torch.testing.assert_close(ema.unet.conv_in.weight, tiny.unet.conv_in.weight + 1.0)
    assert_same_weights(ema.vae, tiny.vae)


def test_unusable_sources_fail_with_one_line(tmp_path):
    start = time.monotonic()
    with pytest.raises(CheckpointError) as err:
        load_components("nobody-here/not-a-cached-model")
    assert time.monotonic() - start < 5
    assert "HF_HUB_OFFLINE" in str(err.value) and "local path" in str(err.value)
    with pytest.raises(CheckpointError, match="no such file"):
        load_components(tmp_path / "missing.ckpt")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="neither a diffusers model"):
        load_components(tmp_path / "empty")
    (tmp_path / "junk.ckpt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="junk.ckpt"):
        load_components(tmp_path / "junk.ckpt")
    save_file({"x": torch.zeros(1)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(CheckpointError, match="not a Stable Diffusion checkpoint"):
        load_components(tmp_path / "other.safetensors")
