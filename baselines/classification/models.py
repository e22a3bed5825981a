"""The two classifiers of the paper's baseline table, loaded from the hub, a folder, or built tiny.

``supervised`` is ResNet-50 pretrained on ImageNet-1k (``microsoft/resnet-50``), ``ViT-16`` is
ViT-B/16 pretrained on ImageNet-21k (``google/vit-base-patch16-224-in21k``). Both get a fresh
classification head sized to the dataset's classes; a folder written by ``cls.py`` (``best/``)
already has the right head and is loaded as it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from baselines.classification.transforms import IMAGENET_MEAN, IMAGENET_STD, Preprocess
from baselines.common import HubModel, ModelSource, load_pretrained

ALIASES: dict[str, HubModel] = {
    "supervised": HubModel("microsoft/resnet-50", "ResNet-50 (ImageNet-1k)"),
    "ViT-16": HubModel("google/vit-base-patch16-224-in21k", "ViT-B/16 (ImageNet-21k)"),
}
FAMILY_OF_ALIAS = {"supervised": "resnet", "ViT-16": "vit"}

# The original README's recipe: SGD, lr 0.01 / batch 256 for ResNet-50, lr 0.001 / batch 64 for ViT.
RECIPES: dict[str, dict[str, float | int]] = {
    "resnet": {"lr": 0.01, "batch_size": 256},
    "vit": {"lr": 0.001, "batch_size": 64},
}


@dataclass
class Classifier:
    model: Any  # a transformers *ForImageClassification
    preprocess: Preprocess
    processor: Any  # saved beside the weights so the folder reloads with the same preprocessing
    family: str  # resnet | vit | another transformers model_type


def _labels(classes: list[str]) -> dict[str, Any]:
    return {
        "num_labels": len(classes),
        "id2label": dict(enumerate(classes)),
        "label2id": {c: i for i, c in enumerate(classes)},
    }


def build_tiny(family: str, classes: list[str], seed: int = 0) -> Classifier:
    """A random few-thousand-parameter ResNet or ViT at 32 px (tests; no download)."""
    import torch
    from transformers import (
        ConvNextImageProcessorPil,
        ResNetConfig,
        ResNetForImageClassification,
        ViTConfig,
        ViTForImageClassification,
        ViTImageProcessorPil,
    )

    torch.manual_seed(seed)
    if family == "resnet":
        config = ResNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], layer_type="basic", **_labels(classes))
        model = ResNetForImageClassification(config)
        processor = ConvNextImageProcessorPil(size={"shortest_edge": 32}, crop_pct=0.875,
                                              image_mean=list(IMAGENET_MEAN), image_std=list(IMAGENET_STD))
    elif family == "vit":
        config = ViTConfig(image_size=32, patch_size=8, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                           intermediate_size=32, **_labels(classes))
        model = ViTForImageClassification(config)
        processor = ViTImageProcessorPil(size={"height": 32, "width": 32}, image_mean=[0.5] * 3, image_std=[0.5] * 3)
    else:
        raise ValueError(f"no tiny classifier for family {family!r}")
    return Classifier(model, Preprocess.from_processor(processor), processor, family)


def load_classifier(source: ModelSource, classes: list[str], family: str | None = None, seed: int = 0) -> Classifier:
    """Load weights and processor, replacing the head when its classes differ from ``classes``."""
    if source.kind == "tiny":
        return build_tiny(family or source.location, classes, seed)
    import torch
    from transformers import AutoConfig, AutoImageProcessor, AutoModelForImageClassification

    torch.manual_seed(seed)  # the new head's initialisation
    config = load_pretrained(AutoConfig, source)
    same_head = [config.id2label.get(i) for i in range(len(config.id2label))] == list(classes)
    kwargs: dict[str, Any] = {} if same_head else {**_labels(classes), "ignore_mismatched_sizes": True}
    model = load_pretrained(AutoModelForImageClassification, source, **kwargs)
    processor = load_pretrained(AutoImageProcessor, source, backend="pil")
    return Classifier(model, Preprocess.from_processor(processor), processor, family or config.model_type)
