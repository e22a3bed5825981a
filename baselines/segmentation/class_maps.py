"""Which ADE20K classes an ADE-trained segmenter's prediction counts as, for each dataset class.

ADE20K: model label ``i`` is ADE label ``i + 1`` (label 0, "other", is ignored), so classes match
one to one (the reader's ``ADE20K_CLASSES`` are the names the public checkpoints use). PASCAL VOC: the 20 VOC object classes are mapped explicitly onto the ADE20K classes
that mean the same thing; a VOC class is predicted wherever the arg-max ADE class is one of its
ADE classes. Seven VOC classes have no ADE20K counterpart (ADE has a single ``animal`` class and
no train): they cannot be predicted and are left out of the VOC mIoU (listed in the result file).
VOC's ``background`` is not a scored class, as in InstructCV's VOC evaluation.
"""

from __future__ import annotations

from collections.abc import Sequence

from dataset_creation.readers.ade20k import ADE20K_CLASSES
from dataset_creation.readers.voc import CLASSES as VOC_SAMPLE_CLASSES
from dataset_creation.readers.voc import VOC_TO_COCO

# VOC class -> the ADE20K classes that are that object (the reasons are in the comments).
VOC_TO_ADE20K: dict[str, tuple[str, ...]] = {
    "aeroplane": ("airplane",),
    "bicycle": ("bicycle",),
    "boat": ("boat", "ship"),
    "bottle": ("bottle",),
    "bus": ("bus",),
    "car": ("car",),  # ADE separates van and truck; VOC calls vans "car" rarely, trucks never
    "chair": ("chair", "armchair", "swivel chair"),
    "diningtable": ("table",),  # ADE "table" is the dining/kitchen table; desk and coffee table are separate
    "motorbike": ("minibike",),  # ADE's "minibike, motorbike"
    "person": ("person",),
    "pottedplant": ("plant", "pot"),  # ADE splits the plant ("plant, flora") from its "pot, flowerpot"
    "sofa": ("sofa",),
    "tvmonitor": ("television receiver", "monitor", "crt screen"),  # not "screen": ADE's is a projection screen
}
VOC_NOT_IN_ADE20K = ("bird", "cat", "cow", "dog", "horse", "sheep", "train")


def dataset_classes(dataset: str) -> list[str]:
    """The class names the dataset's reader gives its seg samples, in label order."""
    if dataset == "ade20k":
        return list(ADE20K_CLASSES)
    if dataset == "voc":
        return list(VOC_SAMPLE_CLASSES)  # VOC classes under their COCO names (airplane, tv, ...)
    raise ValueError(f"no segmentation class list for {dataset!r}")


def norm(name: str) -> str:
    """Class names compared loosely: lower case, first comma part, no spaces/underscores/hyphens."""
    return "".join(ch for ch in name.split(",")[0].strip().lower() if ch.isalnum())


def label_groups(dataset: str, dataset_classes: Sequence[str], model_labels: Sequence[str]) -> tuple[dict[str, list[int]], list[str]]:
    """For each dataset class the model label ids that predict it, and the dataset classes no label covers.

    ``model_labels[i]`` is the name of model label ``i`` (its ``config.id2label``).
    """
    by_name: dict[str, list[int]] = {}
    for i, name in enumerate(model_labels):
        by_name.setdefault(norm(name), []).append(i)
    groups: dict[str, list[int]] = {}
    missing: list[str] = []
    if dataset == "voc":
        # keyed by the VOC name and by the COCO name the voc reader gives its samples
        table = {norm(k): v for k, v in VOC_TO_ADE20K.items()}
        table.update({norm(VOC_TO_COCO[k]): v for k, v in VOC_TO_ADE20K.items()})
        for cls in dataset_classes:
            ade_names = table.get(norm(cls), ())
            ids = sorted({i for a in ade_names for i in by_name.get(norm(a), [])})
            if ids:
                groups[cls] = ids
            else:
                missing.append(cls)
        return groups, missing
    if dataset == "ade20k" and len(model_labels) == len(dataset_classes):
        return {cls: [i] for i, cls in enumerate(dataset_classes)}, []  # same label order
    for cls in dataset_classes:  # any other pairing: by name
        ids = by_name.get(norm(cls))
        if ids:
            groups[cls] = ids
        else:
            missing.append(cls)
    return groups, missing
