"""the tutorial's augmentation chain per sample (MONAI) and batched on the device, with its quality"""
