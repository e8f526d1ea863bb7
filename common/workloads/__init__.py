"""Workloads the suite measures, each split into timed stages: MedNIST training and
inference, augmentation, and the 3D volume pipeline."""
