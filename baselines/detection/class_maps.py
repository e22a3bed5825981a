"""Which class of a COCO-trained detector counts as which dataset class (COCO itself, or PASCAL VOC).

COCO: by name (the checkpoints' ``id2label`` use the COCO category names). VOC: the 20 VOC classes
are all COCO categories, six of them under another name (aeroplane -> airplane, tvmonitor -> tv,
motorbike -> motorcycle, sofa -> couch, diningtable -> dining table, pottedplant -> potted plant);
the voc reader's explicit ``VOC_TO_COCO`` table maps them and its samples carry the COCO names.
(The original InstructCV evaluation matched names literally, so ``aeroplane`` and ``tvmonitor``
never matched ``airplane`` and ``tv`` and were silently dropped.) Detections of the 60 COCO
categories that are not VOC classes are discarded on VOC.
"""

from __future__ import annotations

from collections.abc import Sequence

from dataset_creation.readers.voc import CLASSES as VOC_SAMPLE_CLASSES
from dataset_creation.readers.voc import VOC_TO_COCO

# The 80 COCO 2017 detection categories in category-id order.
COCO_CLASSES = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
    "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow",
    "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee",
    "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard",
    "tennis racket", "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
    "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard",
    "cell phone", "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase",
    "scissors", "teddy bear", "hair drier", "toothbrush",
)  # fmt: skip

def norm(name: str) -> str:
    """Class names compared loosely: lower case without spaces, underscores or hyphens."""
    return "".join(ch for ch in name.strip().lower() if ch.isalnum())


def dataset_classes(dataset: str) -> list[str]:
    """The detection classes of ``dataset`` as its reader names them."""
    if dataset == "coco":
        return list(COCO_CLASSES)
    if dataset == "voc":
        return list(VOC_SAMPLE_CLASSES)
    raise ValueError(f"no detection class list for {dataset!r}")


def label_to_class(dataset: str, dataset_classes: Sequence[str], model_labels: dict[int, str]) -> tuple[dict[int, str], list[str]]:
    """Model label id -> dataset class name for the labels that are dataset classes, and the uncovered classes."""
    wanted: dict[str, str] = {}  # normalised COCO name -> dataset class
    for cls in dataset_classes:
        coco = {norm(k): v for k, v in VOC_TO_COCO.items()}.get(norm(cls), cls) if dataset == "voc" else cls
        wanted[norm(coco)] = cls
    mapping = {i: wanted[norm(name)] for i, name in model_labels.items() if norm(name) in wanted}
    covered = set(mapping.values())
    return mapping, [c for c in dataset_classes if c not in covered]
