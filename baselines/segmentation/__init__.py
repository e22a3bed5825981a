"""Semantic segmentation baselines: SegFormer and Mask2Former (ADE20K checkpoints) on ADE20K and VOC."""
