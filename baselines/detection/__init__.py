"""Object detection baselines: DETR and RT-DETR (COCO checkpoints) on COCO and VOC."""
