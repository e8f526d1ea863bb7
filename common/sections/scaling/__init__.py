"""data-parallel training on 1..N GPUs (torchrun + DDP) or CPU processes"""
