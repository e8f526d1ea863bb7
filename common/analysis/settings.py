"""The resolved settings of one run: config.py, overridden by flags and ``--set``, adapted to
quick mode and to the device. Built once (``Settings.resolve``), frozen, passed down whole, and
stored whole in every record (``environment.config``).

Every constant of config.py reaches a field here (``tests/analysis/test_settings.py`` sets each
one with ``--set`` and finds it in the settings). A constant that depends on the mode has one
field and up to four constants: the default run, ``--quick``, the default CPU run and the quick
CPU run (``BY_MODE``); a constant given on the command line wins over its mode's counterpart
unless that counterpart is given too.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any

import psutil


def logical_cpus() -> int:
    """CPUs this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def default_workers() -> int:
    return max(0, min(10, logical_cpus() - 1))


def default_threads() -> int:
    return psutil.cpu_count(logical=False) or logical_cpus()


# field -> (default run, --quick, default CPU run, quick CPU run); None: the next one along
# (quick CPU -> quick -> default; default CPU -> default); a field whose default-run constant is
# None has no constant there (``NO_CONSTANT`` gives its value)
BY_MODE: dict[str, tuple[str | None, str | None, str | None, str | None]] = {
    "epochs": ("EPOCHS", "QUICK_EPOCHS", "CPU_EPOCHS", "QUICK_CPU_EPOCHS"),
    "warmup_steps": ("WARMUP_STEPS", "QUICK_WARMUP_STEPS", None, None),
    "measure_steps": ("MEASURE_STEPS", "QUICK_MEASURE_STEPS", "CPU_MEASURE_STEPS", None),
    "repeats": ("REPEATS", "QUICK_REPEATS", None, None),
    "max_train_images": (None, "QUICK_MAX_TRAIN_IMAGES", "CPU_MAX_TRAIN_IMAGES", "QUICK_CPU_MAX_TRAIN_IMAGES"),
    "max_eval_images": (None, "QUICK_MAX_EVAL_IMAGES", None, None),
    "cudnn_benchmark": (None, "QUICK_CUDNN_BENCHMARK", None, None),
    "batch_sizes": ("BATCH_SIZES", "QUICK_BATCH_SIZES", "CPU_BATCH_SIZES", "QUICK_CPU_BATCH_SIZES"),
    "inference_repeats": ("INFERENCE_REPEATS", "QUICK_INFERENCE_REPEATS", None, None),
    "volume_spacing_mm": ("VOLUME_SPACING_MM", "QUICK_VOLUME_SPACING_MM", None, None),
    "patch_size": ("PATCH_SIZE", "QUICK_PATCH_SIZE", None, None),
    "volume_train_steps": ("VOLUME_TRAIN_STEPS", "QUICK_VOLUME_TRAIN_STEPS", None, None),
    "ladder_seeds": ("LADDER_SEEDS", "QUICK_LADDER_SEEDS", None, None),
    "energy_window_s": ("ENERGY_WINDOW_S", "QUICK_ENERGY_WINDOW_S", None, None),
    "augmentation_images": ("AUGMENTATION_IMAGES", "QUICK_AUGMENTATION_IMAGES", None, None),
    "augmentation_quality_images": ("AUGMENTATION_QUALITY_IMAGES", "QUICK_AUGMENTATION_QUALITY_IMAGES", None, None),
    "inference_throughput_iters": ("INFERENCE_THROUGHPUT_ITERS", "QUICK_INFERENCE_THROUGHPUT_ITERS", None, None),
    "volume_batch_size": ("VOLUME_BATCH_SIZE", "QUICK_VOLUME_BATCH_SIZE", None, None),
    "volume_augmentation_patches": ("VOLUME_AUGMENTATION_PATCHES", "QUICK_VOLUME_AUGMENTATION_PATCHES", None, None),
    "render_azimuths_deg": ("RENDER_AZIMUTHS_DEG", "QUICK_RENDER_AZIMUTHS_DEG", None, None),
    "render_size": ("RENDER_SIZE", "QUICK_RENDER_SIZE", None, None),
    "inference_latency_calls": ("INFERENCE_LATENCY_CALLS", "QUICK_INFERENCE_LATENCY_CALLS", None, None),
    "inference_batch_sizes": ("INFERENCE_BATCH_SIZES", "QUICK_INFERENCE_BATCH_SIZES", "CPU_INFERENCE_BATCH_SIZES",
                              "QUICK_CPU_INFERENCE_BATCH_SIZES"),
}
NO_CONSTANT = {"max_train_images": None, "max_eval_images": None, "cudnn_benchmark": True}

# field -> constant, read as it is in every mode
SAME_IN_EVERY_MODE: dict[str, str] = {
    "data_dir": "DATA_DIR", "results_dir": "RESULTS_DIR", "volume_path": "VOLUME_PATH", "label_path": "LABEL_PATH",
    "lr": "LEARNING_RATE", "base_batch": "BATCH_SIZE", "accuracy_target": "TARGET_VAL_ACCURACY",
    "accuracy_tolerance": "ACCURACY_TOLERANCE", "sample_hz": "SAMPLE_HZ", "seed": "SEED",
    "val_fraction": "VAL_FRACTION", "test_fraction": "TEST_FRACTION", "unet_channels": "UNET_CHANNELS",
    "gpu_price_per_hour": "GPU_PRICE_PER_HOUR", "cpu_price_per_hour": "CPU_PRICE_PER_HOUR",
    "bootstrap_resamples": "BOOTSTRAP_RESAMPLES", "unstable_iqr_fraction": "UNSTABLE_IQR_FRACTION",
    "ladder_inductor_tuning": "LADDER_INDUCTOR_TUNING", "ladder_compiled_rungs": "LADDER_COMPILED_RUNGS",
    "winner_max_j_per_image": "WINNER_MAX_J_PER_IMAGE", "cache_dir": "CACHE_DIR", "mednist_url": "MEDNIST_URL",
    "mednist_md5": "MEDNIST_MD5", "download_timeout_s": "DOWNLOAD_TIMEOUT_S",
    "synthetic_per_class": "SYNTHETIC_PER_CLASS", "embedded_mednist_archive": "EMBEDDED_MEDNIST_ARCHIVE",
    "embedded_mednist_md5": "EMBEDDED_MEDNIST_MD5", "latency_budget_ms": "LATENCY_BUDGET_MS",
    "inference_min_agreement": "INFERENCE_MIN_AGREEMENT", "inference_curve_seconds": "INFERENCE_CURVE_SECONDS",
    "inference_train_steps": "INFERENCE_TRAIN_STEPS", "inference_max_autotune": "INFERENCE_MAX_AUTOTUNE",
    "inference_compile": "INFERENCE_COMPILE", "scaling_gpus": "SCALING_GPUS",
    "scaling_batch_per_gpu": "SCALING_BATCH_PER_GPU", "scaling_cpu_procs": "SCALING_CPU_PROCS",
    "scaling_cpu_batch_per_proc": "SCALING_CPU_BATCH_PER_PROC", "scaling_timeout_s": "SCALING_TIMEOUT_S",
    "scaling_graph": "SCALING_GRAPH", "scaling_cudnn_benchmark": "SCALING_CUDNN_BENCHMARK",
    "nnodes": "NNODES", "node_rank": "NODE_RANK", "master_addr": "MASTER_ADDR", "master_port": "MASTER_PORT",
}
SCALING_KEYS = ("SCALING_GPUS", "SCALING_BATCH_PER_GPU", "SCALING_CPU_PROCS", "SCALING_CPU_BATCH_PER_PROC",
                "SCALING_TIMEOUT_S", "SCALING_GRAPH", "SCALING_CUDNN_BENCHMARK", "NNODES", "NODE_RANK", "MASTER_ADDR",
                "MASTER_PORT")
# constants resolved by hand in ``resolve`` (batch_size, num_workers, cpu_threads)
BY_HAND = ("BATCH_SIZE", "QUICK_CPU_BATCH_SIZE", "NUM_WORKERS", "CPU_THREADS")


@dataclass(frozen=True)
class Settings:
    device: str  # "cuda" or "cpu"
    quick: bool
    data_dir: str
    results_dir: str
    volume_path: str | None
    label_path: str | None
    batch_size: int  # training batch of the tutorial recipe in this run (quick CPU runs: QUICK_CPU_BATCH_SIZE)
    lr: float  # Adam learning rate at base_batch
    base_batch: int  # BATCH_SIZE: the batch the learning rate is given for
    epochs: int
    accuracy_target: float  # TARGET_VAL_ACCURACY
    accuracy_tolerance: float
    num_workers: int
    cpu_threads: int
    sample_hz: float
    warmup_steps: int
    measure_steps: int
    repeats: int
    seed: int
    val_fraction: float
    test_fraction: float
    max_train_images: int | None
    max_eval_images: int | None
    cudnn_benchmark: bool
    batch_sizes: tuple[int, ...]
    inference_repeats: int
    volume_spacing_mm: float
    patch_size: int
    unet_channels: tuple[int, ...]
    volume_train_steps: int
    gpu_price_per_hour: float | None
    cpu_price_per_hour: float | None
    bootstrap_resamples: int  # resamples of every 95% bootstrap interval
    unstable_iqr_fraction: float  # a measurement whose IQR exceeds this share of its median is flagged unstable
    ladder_inductor_tuning: bool  # the GPU ladder also runs inductor's tuning rungs
    ladder_compiled_rungs: bool  # the GPU ladder also runs the torch.compile throughput leader
    winner_max_j_per_image: float | None  # optional energy bound on the winner (GPU board counter)
    ladder_seeds: tuple[int, ...]  # seeds per ladder rung
    energy_window_s: float  # sustained-training window of a rung's J/image
    cache_dir: str  # persistent caches a second run reuses
    augmentation_images: int
    augmentation_quality_images: int
    inference_throughput_iters: int
    volume_batch_size: int
    volume_augmentation_patches: int
    render_azimuths_deg: tuple[float, ...]
    render_size: int
    mednist_url: str
    mednist_md5: str
    download_timeout_s: float
    synthetic_per_class: int
    embedded_mednist_archive: str
    embedded_mednist_md5: str
    latency_budget_ms: float  # the inference ladder's serving budget (p99 of one batch call)
    inference_min_agreement: float  # top-1 agreement with eager fp32 a ladder rung needs to win
    inference_latency_calls: int  # timed batch-1 calls per inference-ladder rung
    inference_batch_sizes: tuple[int, ...]  # the inference ladder's throughput-latency curve
    inference_curve_seconds: float  # timed seconds per point of that curve
    inference_train_steps: int  # training steps of the served model before the inference ladder
    inference_max_autotune: bool  # GPU: the max-autotune-no-cudagraphs compile rung
    inference_compile: bool  # the inference ladder's torch.compile rungs
    scaling_gpus: int | None  # GPUs per machine of the scaling section (None: every visible GPU)
    scaling_batch_per_gpu: int
    scaling_cpu_procs: tuple[int, ...]
    scaling_cpu_batch_per_proc: int
    scaling_timeout_s: float
    scaling_graph: str  # "cuda_graph" or "none": the GPU step of the scaling section (CPU runs are eager)
    scaling_cudnn_benchmark: bool  # cuDNN autotuning in the scaling section's GPU runs
    nnodes: int
    node_rank: int
    master_addr: str | None
    master_port: int
    notes: tuple[str, ...] = ()

    @classmethod
    def resolve(cls, values: dict[str, Any], device: str, quick: bool) -> "Settings":
        """``values``: every config constant as given (``common.cli.values_from_args``), with
        ``values['_EXPLICIT']`` naming the ones set on the command line."""
        v = dict(values)
        explicit = set(v.pop("_EXPLICIT", set()))
        cpu = device == "cpu"
        fields: dict[str, Any] = {f: v[name] for f, name in SAME_IN_EVERY_MODE.items()}
        for f, names in BY_MODE.items():
            fields[f] = _by_mode(v, explicit, names, quick, cpu, NO_CONSTANT.get(f))
        notes = []
        batch = v["BATCH_SIZE"]
        small = v["QUICK_CPU_BATCH_SIZE"]
        if quick and cpu and batch > small and ("BATCH_SIZE" not in explicit or "QUICK_CPU_BATCH_SIZE" in explicit):
            notes.append(f"quick mode on the CPU: batch {small} instead of {batch}")
            batch = small
        for f in ("batch_sizes", "unet_channels", "ladder_seeds", "render_azimuths_deg", "inference_batch_sizes",
                  "scaling_cpu_procs"):
            fields[f] = tuple(fields[f])
        if quick:  # the inference ladder's curve and its served model's training: a quarter in --quick runs
            fields["inference_curve_seconds"] = fields["inference_curve_seconds"] / 4
            if fields["inference_train_steps"]:
                fields["inference_train_steps"] = max(1, fields["inference_train_steps"] // 4)
        return cls(device=device, quick=quick, batch_size=batch,
                   num_workers=v["NUM_WORKERS"] if v["NUM_WORKERS"] is not None else default_workers(),
                   cpu_threads=v["CPU_THREADS"] or default_threads(), notes=tuple(notes), **fields)

    @property
    def scaling(self) -> dict[str, Any]:
        """The scaling section's constants and torchrun's rendezvous, by lower-case constant name."""
        return {c.lower(): getattr(self, f) for f, c in SAME_IN_EVERY_MODE.items() if c in SCALING_KEYS}

    @classmethod
    def defaults(cls, device: str = "cpu", quick: bool = False) -> "Settings":
        """The settings config.py alone gives (no flags): for tests and library callers."""
        from common.cli import values_from_args

        return cls.resolve(values_from_args(None), device, quick)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _by_mode(v: dict[str, Any], explicit: set[str], names: tuple, quick: bool, cpu: bool, none_value: Any) -> Any:
    default, quick_name, cpu_name, cpu_quick_name = names
    chain = [cpu_quick_name, quick_name] if quick and cpu else [quick_name] if quick else \
        [cpu_name] if cpu else []
    for name in chain:
        if name is None:
            continue
        if default in explicit and name not in explicit:
            break  # the constant given on the command line wins over its mode's counterpart
        return v[name]
    return v[default] if default is not None else none_value


def constants_read() -> set[str]:
    """Every config constant some Settings field is resolved from."""
    names = set(SAME_IN_EVERY_MODE.values()) | set(BY_HAND)
    for row in BY_MODE.values():
        names |= {n for n in row if n}
    return names
