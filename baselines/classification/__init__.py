"""Classification baselines: ResNet-50 and ViT-B/16 fine-tuned on Oxford-IIIT Pets, Caltech-101, ImageNet-sub."""
