"""Optimization levers as one configuration object. Each field changes only what it names."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

DATA_PATHS = ("tutorial", "cached", "device_resident")
PRECISIONS = ("fp32", "bf16", "fp16")
GRAPHS = ("none", "cuda_graph", "compile_cuda_graph", "compile", "compile_reduce_overhead")
CAPTURED = ("cuda_graph", "compile_cuda_graph")  # the whole train step captured in one CUDA graph by the suite
LR_SCHEDULES = ("warmup_cosine", "constant")


@dataclass(frozen=True)
class Levers:
    data_path: str = "tutorial"  # tutorial: MONAI per-sample chain in DataLoader workers; cached: decoded tensors
    # in RAM, MONAI random chain per sample; device_resident: uint8 images on the device, batched augmentation there
    precision: str = "fp32"  # autocast dtype for forward/loss (fp32 = no autocast)
    channels_last: bool = False  # NHWC memory format for model and inputs
    batch_size: int = 300
    num_workers: int = 0  # DataLoader workers (tutorial and cached paths)
    cpu_threads: int | None = None  # torch intra-op threads (None: leave as is)
    graph: str = "none"  # none | cuda_graph (whole train step captured) | compile_cuda_graph (inductor-compiled
    # model inside the captured step) | compile | compile_reduce_overhead (torch.compile modes, model only)
    fused_optimizer: bool = False  # Adam's fused CUDA kernel (one launch for all parameters) instead of foreach
    compile_options: tuple = ()  # extra inductor options for the compiled graphs, as ((name, value), ...)
    concat_free: bool = False  # the same DenseNet121 with a forward that never re-concatenates a dense block
    # (common/models/densenet_lists.py): pays under torch.compile on a GPU only
    fused_blocks: bool = False  # the same DenseNet121 whose dense blocks apply BN + ReLU inside the 1x1
    # convolutions' loads (Triton kernels, common/models/fused_dense.py): training on a GPU with Triton only
    cudnn_benchmark: bool = True  # cuDNN autotuning of every new convolution shape (seconds per shape, once)
    prewarm: bool = False  # load the kernels and build the cuDNN plans on random data while the JPEGs decode
    # (common/workloads/prewarm.py): device_resident only, where there is a decode to hide them under
    gemm_1x1: bool = False  # the same DenseNet121 whose 1x1 convolutions run as matrix products (cuBLAS) on
    # channels_last inputs (common/models/gemm_1x1.py): no cuDNN plan to build for 61 of its 66 shapes
    schedule_epochs: float | None = None  # epochs the learning-rate schedule (warm-up, cosine decay) spans;
    # validation also runs where it ends. None: it spans the epoch budget
    lr: float | None = None  # Adam's learning rate as given, for every batch size (None: LEARNING_RATE at
    # BATCH_SIZE, scaled by the square-root rule for other batches)
    lr_schedule: str = "warmup_cosine"  # warmup_cosine: linear warm-up over 5% of the steps, cosine decay to 5%
    # (training.lr_at); constant: the learning rate never changes, as in MONAI's MedNIST tutorial

    def __post_init__(self):
        if self.data_path not in DATA_PATHS:
            raise ValueError(f"data_path {self.data_path!r} not in {DATA_PATHS}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision {self.precision!r} not in {PRECISIONS}")
        if self.graph not in GRAPHS:
            raise ValueError(f"graph {self.graph!r} not in {GRAPHS}")
        if self.batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        if self.num_workers < 0:
            raise ValueError("num_workers must be >= 0")
        if self.cpu_threads is not None and self.cpu_threads < 1:
            raise ValueError("cpu_threads must be >= 1")
        if self.graph in CAPTURED and self.data_path != "device_resident":
            raise ValueError(f"{self.graph} capture needs data_path='device_resident' (static device inputs)")
        if self.compile_options and not self.graph.startswith("compile"):
            raise ValueError(f"compile_options {self.compile_options!r} need a compiled graph, not {self.graph!r}")
        if any(not (isinstance(kv, tuple) and len(kv) == 2 and isinstance(kv[0], str)) for kv in self.compile_options):
            raise ValueError("compile_options must be ((name, value), ...) pairs")
        if self.prewarm and self.data_path != "device_resident":
            raise ValueError("prewarm needs data_path='device_resident' (it runs while the JPEGs decode)")
        if self.gemm_1x1 and not self.channels_last:
            raise ValueError("gemm_1x1 needs channels_last=True (an NHWC tensor is a matrix over its channels)")
        if self.gemm_1x1 and (self.fused_blocks or self.concat_free):
            raise ValueError("gemm_1x1 applies to MONAI's DenseNet121, not with fused_blocks or concat_free")
        if self.schedule_epochs is not None and not self.schedule_epochs > 0:
            raise ValueError(f"schedule_epochs must be > 0, not {self.schedule_epochs!r}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule {self.lr_schedule!r} not in {LR_SCHEDULES}")
        if self.lr is not None and not self.lr > 0:
            raise ValueError(f"lr must be > 0, not {self.lr!r}")
        if self.schedule_epochs is not None and self.lr_schedule == "constant":
            raise ValueError("schedule_epochs shapes the warm-up + cosine schedule; a constant learning rate has none")
        if self.graph in CAPTURED and self.precision == "fp16":
            raise ValueError("cuda_graph capture does not run fp16's GradScaler; use bf16 or fp32")

    def replace(self, **changes) -> "Levers":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["compile_options"] = dict(self.compile_options)
        return d

    def label(self) -> str:
        parts = [self.data_path, self.precision]
        if self.channels_last:
            parts.append("channels_last")
        parts.append(f"b{self.batch_size}")
        if self.data_path != "device_resident":
            parts.append(f"w{self.num_workers}")
        if self.cpu_threads:
            parts.append(f"t{self.cpu_threads}")
        if self.graph != "none":
            parts.append(self.graph)
        if self.fused_optimizer:
            parts.append("fused_adam")
        if self.concat_free:
            parts.append("concat_free")
        if self.fused_blocks:
            parts.append("fused_blocks")
        if not self.cudnn_benchmark:
            parts.append("no_autotune")
        if self.prewarm:
            parts.append("prewarm")
        if self.gemm_1x1:
            parts.append("gemm_1x1")
        if self.schedule_epochs is not None:
            parts.append(f"sched{self.schedule_epochs:g}")
        if self.lr is not None:
            parts.append(f"lr{self.lr:g}")
        if self.lr_schedule != "warmup_cosine":
            parts.append(f"{self.lr_schedule}_lr")
        parts.extend(f"{k}={v}" for k, v in self.compile_options)
        return " ".join(parts)

    def diff(self, other: "Levers") -> dict:
        """Fields that differ: {name: (self, other)}."""
        a, b = self.to_dict(), other.to_dict()
        return {k: (a[k], b[k]) for k in a if a[k] != b[k]}
