"""Settings: every constant of config.py reaches a field of the resolved settings through
``--set`` (so a new constant without a field fails here), the mode rules (quick, CPU) and the
settings being frozen and stored whole."""

from __future__ import annotations

import dataclasses
import functools

import pytest

import config
from common.analysis.settings import BY_MODE, SAME_IN_EVERY_MODE, Settings, constants_read

CONSTANTS = sorted(k for k in dir(config) if k.isupper())

# a valid value different from config.py's default, for each constant
NEW_VALUES = {
    "DATA_DIR": "other_data", "RESULTS_DIR": "other_results", "VOLUME_PATH": config.__file__,
    "LABEL_PATH": config.__file__,
    "MEDNIST_URL": "https://example.org/MedNIST.tar.gz", "MEDNIST_MD5": "0" * 32, "DOWNLOAD_TIMEOUT_S": 12.5,
    "EMBEDDED_MEDNIST_ARCHIVE": "elsewhere/subset.tar.gz", "EMBEDDED_MEDNIST_MD5": "1" * 32,
    "LATENCY_BUDGET_MS": 20.0, "INFERENCE_MIN_AGREEMENT": 0.99, "INFERENCE_LATENCY_CALLS": 500,
    "QUICK_INFERENCE_LATENCY_CALLS": 100, "INFERENCE_BATCH_SIZES": (1, 4), "CPU_INFERENCE_BATCH_SIZES": (1, 2),
    "QUICK_INFERENCE_BATCH_SIZES": (1, 8), "QUICK_CPU_INFERENCE_BATCH_SIZES": (1, 4), "INFERENCE_CURVE_SECONDS": 2.0,
    "INFERENCE_TRAIN_STEPS": 50, "INFERENCE_MAX_AUTOTUNE": True, "INFERENCE_COMPILE": False,
    "SCALING_GPUS": 2, "SCALING_BATCH_PER_GPU": 256, "SCALING_CPU_PROCS": (1, 3), "SCALING_CPU_BATCH_PER_PROC": 16,
    "SCALING_TIMEOUT_S": 600.0, "SCALING_GRAPH": "none", "SCALING_CUDNN_BENCHMARK": True, "NNODES": 2,
    "NODE_RANK": 1, "MASTER_ADDR": "10.0.0.1", "MASTER_PORT": 29511,
    "SYNTHETIC_PER_CLASS": 7, "VAL_FRACTION": 0.2, "TEST_FRACTION": 0.15, "SEED": 11, "BATCH_SIZE": 64,
    "LEARNING_RATE": 3e-4, "EPOCHS": 4, "TARGET_VAL_ACCURACY": 0.9, "NUM_WORKERS": 13, "CPU_THREADS": 13,
    "SAMPLE_HZ": 20.0, "WARMUP_STEPS": 5, "MEASURE_STEPS": 7, "REPEATS": 4, "UNSTABLE_IQR_FRACTION": 0.2,
    "BOOTSTRAP_RESAMPLES": 500, "BATCH_SIZES": (8, 24), "INFERENCE_REPEATS": 50, "VOLUME_SPACING_MM": 2.0,
    "PATCH_SIZE": 48, "UNET_CHANNELS": (8, 16, 32), "VOLUME_TRAIN_STEPS": 20, "QUICK_MEASURE_STEPS": 3,
    "QUICK_REPEATS": 2, "QUICK_EPOCHS": 3, "QUICK_MAX_TRAIN_IMAGES": 600, "QUICK_BATCH_SIZES": (8, 32),
    "QUICK_VOLUME_SPACING_MM": 4.0, "QUICK_VOLUME_TRAIN_STEPS": 5, "QUICK_INFERENCE_REPEATS": 10,
    "CPU_BATCH_SIZES": (4, 8), "CPU_MEASURE_STEPS": 3, "CPU_MAX_TRAIN_IMAGES": 1000, "CPU_EPOCHS": 2,
    "GPU_PRICE_PER_HOUR": 2.5, "CPU_PRICE_PER_HOUR": 0.4, "QUICK_CUDNN_BENCHMARK": True,
    "QUICK_MAX_EVAL_IMAGES": 120, "QUICK_CPU_BATCH_SIZE": 16, "QUICK_CPU_BATCH_SIZES": (4, 16),
    "QUICK_CPU_MAX_TRAIN_IMAGES": 240, "QUICK_CPU_EPOCHS": 2, "QUICK_PATCH_SIZE": 24,
    "LADDER_INDUCTOR_TUNING": True, "LADDER_COMPILED_RUNGS": False,
    "ACCURACY_TOLERANCE": 0.01,
    "WINNER_MAX_J_PER_IMAGE": 0.02, "LADDER_SEEDS": (3, 4), "QUICK_LADDER_SEEDS": (5,), "ENERGY_WINDOW_S": 12.0,
    "QUICK_ENERGY_WINDOW_S": 1.5, "CACHE_DIR": "other_cache", "AUGMENTATION_IMAGES": 100,
    "QUICK_AUGMENTATION_IMAGES": 20, "AUGMENTATION_QUALITY_IMAGES": 32, "QUICK_AUGMENTATION_QUALITY_IMAGES": 8,
    "INFERENCE_THROUGHPUT_ITERS": 5, "QUICK_INFERENCE_THROUGHPUT_ITERS": 2,
    "QUICK_WARMUP_STEPS": 2, "VOLUME_BATCH_SIZE": 3, "QUICK_VOLUME_BATCH_SIZE": 1,
    "VOLUME_AUGMENTATION_PATCHES": 6, "QUICK_VOLUME_AUGMENTATION_PATCHES": 2, "RENDER_AZIMUTHS_DEG": (10.0, 20.0),
    "QUICK_RENDER_AZIMUTHS_DEG": (30.0,), "RENDER_SIZE": 128, "QUICK_RENDER_SIZE": 64,
}
BY_HAND = {"BATCH_SIZE": "batch_size", "QUICK_CPU_BATCH_SIZE": "batch_size", "NUM_WORKERS": "num_workers",
           "CPU_THREADS": "cpu_threads"}


def _mode(name: str) -> tuple[str, bool]:
    """(device, quick) of the run in which the constant takes effect."""
    if name.startswith("QUICK_CPU_"):
        return "cpu", True
    if name.startswith("QUICK_"):
        return "cuda", True
    if name.startswith("CPU_") and name != "CPU_THREADS" and name != "CPU_PRICE_PER_HOUR":
        return "cpu", False
    return "cuda", False


def _field(name: str) -> str:
    if name in BY_HAND:
        return BY_HAND[name]
    fields = [f for f, c in SAME_IN_EVERY_MODE.items() if c == name]
    fields += [f for f, row in BY_MODE.items() if name in row]
    assert fields, f"config.{name} reaches no Settings field: add one (common/analysis/settings.py)"
    return fields[0]


@functools.cache
def _defaults(device: str, quick: bool) -> Settings:
    return _resolve([], device, quick)


def _resolve(argv: list[str], device: str, quick: bool) -> Settings:
    """As the analysis scripts do: flags, --set, validation, resolution."""
    from common.analysis.engine import build_parser
    from common.cli import explicit_flags, validate_config, values_from_args

    parser = build_parser(device)
    args = parser.parse_args(argv)
    values = values_from_args(args, explicit_flags(parser, argv))
    validate_config(values)
    return Settings.resolve(values, device, quick)


@pytest.mark.parametrize("name", CONSTANTS)
def test_set_of_each_constant_reaches_the_settings(name):
    assert name in NEW_VALUES, f"give config.{name} a valid non-default value in NEW_VALUES (and a Settings field)"
    value = NEW_VALUES[name]
    assert value != getattr(config, name), f"NEW_VALUES[{name!r}] must differ from config.py's value"
    device, quick = _mode(name)
    argv = ["--set", f"{name}={value!r}"]
    if name == "LABEL_PATH":  # a label map needs its volume
        argv += ["--set", f"VOLUME_PATH={config.__file__!r}"]
    if name in ("NNODES", "NODE_RANK"):  # several machines need a rendezvous address (and rank 1 a second node)
        argv += ["--set", "NNODES=2", "--set", "MASTER_ADDR='10.0.0.1'"]
    before = _defaults(device, quick)
    after = _resolve(argv, device, quick)
    field = _field(name)
    assert getattr(after, field) == value, (name, field, getattr(after, field))
    assert getattr(before, field) != value
    assert after.to_dict()[field] == value, "to_dict (what every record stores) carries it"


def test_every_constant_is_read_by_the_settings():
    assert set(CONSTANTS) <= constants_read(), sorted(set(CONSTANTS) - constants_read())


def test_settings_are_frozen():
    s = Settings.defaults("cpu", quick=True)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.batch_size = 1  # type: ignore[misc]


def test_quick_cpu_run_uses_its_own_sizes_unless_the_base_constant_is_given():
    s = _resolve(["--quick"], "cpu", True)
    assert s.batch_size == config.QUICK_CPU_BATCH_SIZE and s.epochs == config.QUICK_CPU_EPOCHS
    assert s.batch_sizes == config.QUICK_CPU_BATCH_SIZES and s.notes
    s = _resolve(["--quick", "--epochs", "5", "--batch-size", "12"], "cpu", True)
    assert s.epochs == 5 and s.batch_size == 12 and not s.notes
    s = _resolve(["--quick", "--epochs", "5", "--set", "QUICK_CPU_EPOCHS=2"], "cpu", True)
    assert s.epochs == 2, "the mode's constant, given too, wins"


def test_default_cpu_run_uses_the_cpu_constants():
    s = _resolve([], "cpu", False)
    assert s.batch_sizes == config.CPU_BATCH_SIZES and s.measure_steps == config.CPU_MEASURE_STEPS
    assert s.max_train_images == config.CPU_MAX_TRAIN_IMAGES and s.epochs == config.CPU_EPOCHS
    g = _resolve([], "cuda", False)
    assert g.batch_sizes == config.BATCH_SIZES and g.max_train_images is None and g.cudnn_benchmark is True
    assert g.ladder_seeds == config.LADDER_SEEDS
    assert _resolve([], "cuda", True).ladder_seeds == config.QUICK_LADDER_SEEDS
