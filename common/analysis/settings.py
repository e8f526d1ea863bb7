"""The resolved settings of one analysis run: config.py, overridden by flags, adapted to
quick mode and to the device. Every record carries them."""

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


SCALING_KEYS = ("SCALING_GPUS", "SCALING_BATCH_PER_GPU", "SCALING_CPU_PROCS", "SCALING_CPU_BATCH_PER_PROC",
                "SCALING_TIMEOUT_S", "NNODES", "NODE_RANK", "MASTER_ADDR", "MASTER_PORT")


@dataclass
class Settings:
    device: str  # "cuda" or "cpu"
    quick: bool
    data_dir: str
    results_dir: str
    volume_path: str | None
    label_path: str | None
    batch_size: int
    lr: float
    base_batch: int
    epochs: int
    accuracy_target: float
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
    ladder_seeds: tuple[int, ...] = (0,)
    energy_window_s: float = 0.0
    cache_dir: str = "cache"
    winner_max_j_per_image: float | None = None
    ladder_inductor_tuning: bool = False
    ladder_compiled_rungs: bool = True
    # the scaling section's SCALING_* constants and torchrun's rendezvous (NNODES, NODE_RANK, MASTER_ADDR, MASTER_PORT)
    scaling: dict[str, Any] = dataclasses.field(default_factory=dict)
    notes: tuple[str, ...] = ()

    @classmethod
    def resolve(cls, values: dict[str, Any], device: str, quick: bool) -> "Settings":
        v = dict(values)
        explicit = set(v.pop("_EXPLICIT", set()))
        notes = []
        if quick:  # a constant given on the command line wins over its quick-mode counterpart
            pairs = (("MEASURE_STEPS", "QUICK_MEASURE_STEPS"), ("REPEATS", "QUICK_REPEATS"),
                                     ("EPOCHS", "QUICK_EPOCHS"), ("EPOCHS", "QUICK_CPU_EPOCHS"),
                                     ("BATCH_SIZE", "QUICK_CPU_BATCH_SIZE"), ("BATCH_SIZES", "QUICK_BATCH_SIZES"),
                                     ("BATCH_SIZES", "QUICK_CPU_BATCH_SIZES"),
                                     ("VOLUME_SPACING_MM", "QUICK_VOLUME_SPACING_MM"),
                                     ("VOLUME_TRAIN_STEPS", "QUICK_VOLUME_TRAIN_STEPS"),
                     ("PATCH_SIZE", "QUICK_PATCH_SIZE"), ("INFERENCE_REPEATS", "QUICK_INFERENCE_REPEATS"))
            for name, quick_name in pairs:
                if name in explicit and quick_name not in explicit:
                    v[quick_name] = v[name]
        batch = v["BATCH_SIZE"]
        if quick and device == "cpu" and batch > v["QUICK_CPU_BATCH_SIZE"]:
            notes.append(f"quick mode on the CPU: batch {v['QUICK_CPU_BATCH_SIZE']} instead of {batch}")
            batch = v["QUICK_CPU_BATCH_SIZE"]
        cpu_quick = quick and device == "cpu"
        cpu_default = not quick and device == "cpu"
        if cpu_default:  # constants given on the command line win over the CPU defaults
            for name, cpu_name in (("BATCH_SIZES", "CPU_BATCH_SIZES"), ("MEASURE_STEPS", "CPU_MEASURE_STEPS"),
                                   ("EPOCHS", "CPU_EPOCHS")):
                if name not in explicit:
                    v[name] = v[cpu_name]
        workers = v["NUM_WORKERS"] if v["NUM_WORKERS"] is not None else default_workers()
        return cls(
            device=device,
            quick=quick,
            data_dir=v["DATA_DIR"],
            results_dir=v["RESULTS_DIR"],
            volume_path=v["VOLUME_PATH"],
            label_path=v["LABEL_PATH"],
            batch_size=batch,
            lr=v["LEARNING_RATE"],
            base_batch=v["BATCH_SIZE"],
            epochs=v["QUICK_CPU_EPOCHS"] if cpu_quick else v["QUICK_EPOCHS"] if quick else v["EPOCHS"],
            accuracy_target=v["TARGET_VAL_ACCURACY"],
            accuracy_tolerance=v["ACCURACY_TOLERANCE"],
            num_workers=workers,
            cpu_threads=v["CPU_THREADS"] or default_threads(),
            sample_hz=v["SAMPLE_HZ"],
            warmup_steps=min(v["WARMUP_STEPS"], 1) if quick and "WARMUP_STEPS" not in explicit else v["WARMUP_STEPS"],
            measure_steps=v["QUICK_MEASURE_STEPS"] if quick else v["MEASURE_STEPS"],
            repeats=v["QUICK_REPEATS"] if quick else v["REPEATS"],
            seed=v["SEED"],
            val_fraction=v["VAL_FRACTION"],
            test_fraction=v["TEST_FRACTION"],
            max_train_images=v["QUICK_CPU_MAX_TRAIN_IMAGES"] if cpu_quick else v["QUICK_MAX_TRAIN_IMAGES"] if quick
            else v["CPU_MAX_TRAIN_IMAGES"] if cpu_default else None,
            max_eval_images=v["QUICK_MAX_EVAL_IMAGES"] if quick else None,
            cudnn_benchmark=bool(v["QUICK_CUDNN_BENCHMARK"]) if quick else True,
            batch_sizes=tuple(v["QUICK_CPU_BATCH_SIZES"] if cpu_quick else v["QUICK_BATCH_SIZES"] if quick
                              else v["BATCH_SIZES"]),
            inference_repeats=v["QUICK_INFERENCE_REPEATS"] if quick else v["INFERENCE_REPEATS"],
            volume_spacing_mm=v["QUICK_VOLUME_SPACING_MM"] if quick else v["VOLUME_SPACING_MM"],
            patch_size=v["QUICK_PATCH_SIZE"] if quick else v["PATCH_SIZE"],
            unet_channels=tuple(v["UNET_CHANNELS"]),
            volume_train_steps=v["QUICK_VOLUME_TRAIN_STEPS"] if quick else v["VOLUME_TRAIN_STEPS"],
            gpu_price_per_hour=v["GPU_PRICE_PER_HOUR"],
            cpu_price_per_hour=v["CPU_PRICE_PER_HOUR"],
            ladder_seeds=tuple(v["QUICK_LADDER_SEEDS"] if quick else v["LADDER_SEEDS"]),
            energy_window_s=v["QUICK_ENERGY_WINDOW_S"] if quick else v["ENERGY_WINDOW_S"],
            cache_dir=v["CACHE_DIR"],
            winner_max_j_per_image=v["WINNER_MAX_J_PER_IMAGE"],
            ladder_inductor_tuning=bool(v["LADDER_INDUCTOR_TUNING"]),
            ladder_compiled_rungs=bool(v["LADDER_COMPILED_RUNGS"]),
            scaling={k.lower(): v[k] for k in SCALING_KEYS},
            notes=tuple(notes),
        )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
