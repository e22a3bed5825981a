"""scripts/probe_conditioning.py: it tells a model that ignores the class from one that ignores the image."""

from __future__ import annotations

import importlib.util
import json

import pytest
from test_train_data import write_pairs

from ldm.components import build_random_components
from ldm.loading import load_components

spec = importlib.util.spec_from_file_location("probe_conditioning", "scripts/probe_conditioning.py")
probe_conditioning = importlib.util.module_from_spec(spec)
spec.loader.exec_module(probe_conditioning)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    root = write_pairs(tmp_path_factory.mktemp("probe") / "pairs", n=6)
    rows = []
    for k, folder in enumerate(sorted(p for p in root.iterdir() if p.is_dir())):
        name = ("red square", "blue circle", "green star")[k % 3]
        rows.append({"sample": folder.name, "stem": folder.name.split("_seg_")[0], "task": "seg",
                     "dataset": "synthetic", "class": name, "edit": f"Segment the {name}."})
    (root / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root


def test_swap_class_replaces_whole_words_in_any_case():
    assert probe_conditioning.swap_class("Segment the Cat.", "cat", "dog") == "Segment the dog."
    assert probe_conditioning.swap_class("Show red if there is a cat, otherwise green.", "cat", "sports ball") == \
        "Show red if there is a sports ball, otherwise green."
    assert probe_conditioning.swap_class("Detect the catfish.", "cat", "dog") == "Detect the catfish."


@pytest.mark.parametrize("uses", ["text", "image"])
def test_probe_sees_what_the_answer_depends_on(pairs, monkeypatch, uses):
    components = build_random_components("tiny", seed=0)

    def answer(sample, timestep, encoder_hidden_states, return_dict=False):
        b, _, h, w = sample.shape
        text = encoder_hidden_states[:, :, 0].mean(dim=1).view(b, 1, 1, 1)  # (a layer-normed mean is 0)
        image = sample[:, 4:].mean(dim=(1, 2, 3)).view(b, 1, 1, 1)
        return ((text if uses == "text" else image) * 100 + 1).expand(b, 4, h, w).contiguous(),

    monkeypatch.setattr(components.unet, "forward", answer)
    result = probe_conditioning.probe(components, pairs, n=6)
    assert result["seg"]["pairs"] == 6
    moved, still = ("class", "image") if uses == "text" else ("image", "class")
    assert result["seg"][moved] > 0.02
    assert result["seg"][still] == pytest.approx(0.0, abs=1e-6)


def test_a_diffusion_model_is_refused_in_one_line(tmp_path, pairs, tiny_model_dir):
    from instructcv.cli import UsageError

    assert load_components(tiny_model_dir).objective == "diffusion"
    with pytest.raises(UsageError, match="a diffusion model; the probe reads one-step answers"):
        probe_conditioning.main(["--ckpt", str(tiny_model_dir), "--pairs", str(pairs)])
