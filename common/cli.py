"""Command-line flags built from ``config.py``: every flag's default is the config value,
``--help`` shows it, and invalid values are refused before any work, naming the constant."""

from __future__ import annotations

import argparse
import os
from typing import Any

import config
from common.errors import UserError

# constant -> (flag, type, help); flags override the constants of the same name
FLAGS: dict[str, tuple[str, Any, str]] = {
    "DATA_DIR": ("--data-dir", str, "folder holding MedNIST/ (from download_mednist.py)"),
    "RESULTS_DIR": ("--results-dir", str, "root of the results tree"),
    "VOLUME_PATH": ("--volume", str, "NIfTI volume for the 3D sections (default: MNI152 T1 shipped by nilearn)"),
    "LABEL_PATH": ("--label", str, "NIfTI label map matching --volume"),
    "BATCH_SIZE": ("--batch-size", int, "training batch size of the tutorial recipe"),
    "LEARNING_RATE": ("--lr", float, "Adam learning rate at --batch-size"),
    "EPOCHS": ("--epochs", int, "epochs of each accuracy-gated training run"),
    "TARGET_VAL_ACCURACY": ("--target-val-accuracy", float, "validation accuracy that counts as trained (time to target)"),
    "NUM_WORKERS": ("--num-workers", int, "DataLoader workers of the tutorial recipe (default: min(10, cores-1))"),
    "CPU_THREADS": ("--cpu-threads", int, "torch intra-op threads (default: all physical cores)"),
    "SAMPLE_HZ": ("--sample-hz", float, "sampler rate in Hz (0.1 to 100)"),
    "WARMUP_STEPS": ("--warmup-steps", int, "warm-up steps before each measured window (excluded)"),
    "MEASURE_STEPS": ("--measure-steps", int, "measured steps per window"),
    "REPEATS": ("--repeats", int, "repeated windows per measurement"),
    "SEED": ("--seed", int, "seed of split, initialisation and augmentation"),
    "VOLUME_SPACING_MM": ("--volume-spacing", float, "isotropic spacing (mm) the volume is resampled to"),
    "VOLUME_TRAIN_STEPS": ("--volume-train-steps", int, "3D UNet training steps"),
    "GPU_PRICE_PER_HOUR": ("--gpu-price-per-hour", float, "GPU machine price per hour, for cost per million images"),
    "CPU_PRICE_PER_HOUR": ("--cpu-price-per-hour", float, "CPU machine price per hour, same currency"),
    "SCALING_GPUS": ("--gpus", int, "GPUs per machine of the scaling section, measured at 1, 2, 4, ... up to it "
                                    "(default: every visible GPU)"),
    "NNODES": ("--nnodes", int, "machines in the scaling section (torchrun --nnodes; run the same command on each)"),
    "NODE_RANK": ("--node-rank", int, "this machine's rank among --nnodes (torchrun --node-rank; 0 writes the record)"),
    "MASTER_ADDR": ("--master-addr", str, "address of the --node-rank 0 machine (torchrun --master-addr)"),
    "MASTER_PORT": ("--master-port", int, "rendezvous port on that machine (torchrun --master-port)"),
}
SCALING_FLAGS = ["SCALING_GPUS", "NNODES", "NODE_RANK", "MASTER_ADDR", "MASTER_PORT"]


def add_config_flags(parser: argparse.ArgumentParser, names: list[str]) -> None:
    for name in names:
        flag, typ, text = FLAGS[name]
        default = getattr(config, name)
        parser.add_argument(flag, dest=name, type=typ, default=default,
                            help=f"{text} [config.{name} = {default!r}]")


def add_set_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--set", dest="SET", action="append", default=[], metavar="NAME=VALUE",
                        help="override any config.py constant, e.g. --set QUICK_CPU_BATCH_SIZES=8,16 "
                             "(Python literal; may repeat)")


def parse_set(items: list[str]) -> dict[str, Any]:
    import ast

    out: dict[str, Any] = {}
    for item in items or []:
        if "=" not in item:
            raise UserError(f"--set {item!r}: expected NAME=VALUE, e.g. --set BATCH_SIZE=64")
        name, raw = item.split("=", 1)
        name = name.strip()
        if not name.isupper() or not hasattr(config, name):
            raise UserError(f"--set {item!r}: config.py has no constant {name}")
        try:
            value = ast.literal_eval(raw) if raw.strip() not in ("", "None") else None
        except (ValueError, SyntaxError):
            value = raw  # a plain string (a path)
        if isinstance(getattr(config, name), tuple) and isinstance(value, (int, float)):
            value = (value,)
        out[name] = value
    return out


def explicit_flags(parser: argparse.ArgumentParser, argv: list[str] | None) -> set[str]:
    """The config constants whose flags were given on the command line (not defaulted)."""
    import copy

    probe = copy.deepcopy(parser)
    for action in probe._actions:
        action.default = argparse.SUPPRESS
        action.required = False
    ns, _ = probe.parse_known_args(argv)
    return {k for k in vars(ns) if k.isupper() and k != "SET"}


def values_from_args(args: argparse.Namespace, explicit: set[str] | None = None) -> dict[str, Any]:
    """All config constants, with the ones given as flags or --set overridden.
    ``values['_EXPLICIT']`` names the constants the user set on the command line."""
    values = {k: getattr(config, k) for k in dir(config) if k.isupper()}
    for k in FLAGS:
        if hasattr(args, k):
            values[k] = getattr(args, k)
    sets = parse_set(getattr(args, "SET", []))
    values.update(sets)
    values["_EXPLICIT"] = set(explicit or ()) | set(sets)
    return values


def _positive(values, name, allow_none=False, integer=True):
    v = values.get(name)
    if v is None and allow_none:
        return
    if v is None or isinstance(v, bool) or not isinstance(v, (int, float)) or (integer and int(v) != v) or v <= 0:
        kind = "a positive integer" if integer else "a positive number"
        raise UserError(f"config.{name} = {v!r} is invalid: it must be {kind}; fix it in config.py or with "
                        f"{FLAGS.get(name, ('its flag',))[0]}")


def validate_config(values: dict[str, Any]) -> None:
    """Refuse invalid constants before any work, naming the constant and the fix."""
    for name in ("BATCH_SIZE", "EPOCHS", "MEASURE_STEPS", "REPEATS", "VOLUME_TRAIN_STEPS", "PATCH_SIZE",
                 "INFERENCE_REPEATS", "QUICK_MEASURE_STEPS", "QUICK_REPEATS", "QUICK_EPOCHS",
                 "QUICK_MAX_TRAIN_IMAGES", "QUICK_VOLUME_TRAIN_STEPS", "QUICK_INFERENCE_REPEATS",
                 "BOOTSTRAP_RESAMPLES", "SYNTHETIC_PER_CLASS", "QUICK_CPU_BATCH_SIZE", "QUICK_PATCH_SIZE",
                 "QUICK_CPU_EPOCHS", "QUICK_CPU_MAX_TRAIN_IMAGES", "QUICK_MAX_EVAL_IMAGES", "CPU_MEASURE_STEPS",
                 "CPU_MAX_TRAIN_IMAGES", "CPU_EPOCHS"):
        if name in values:
            _positive(values, name)
    for name in ("LEARNING_RATE", "SAMPLE_HZ", "VOLUME_SPACING_MM", "QUICK_VOLUME_SPACING_MM", "DOWNLOAD_TIMEOUT_S"):
        if name in values:
            _positive(values, name, integer=False)
    for name in ("NUM_WORKERS",):
        v = values.get(name)
        if v is not None and (not isinstance(v, int) or v < 0):
            raise UserError(f"config.{name} = {v!r} is invalid: it must be None (auto) or an integer >= 0")
    for name in ("CPU_THREADS", "GPU_PRICE_PER_HOUR", "CPU_PRICE_PER_HOUR"):
        if name in values:
            _positive(values, name, allow_none=True, integer=name == "CPU_THREADS")
    if "WARMUP_STEPS" in values and (not isinstance(values["WARMUP_STEPS"], int) or values["WARMUP_STEPS"] < 0):
        raise UserError(f"config.WARMUP_STEPS = {values['WARMUP_STEPS']!r} is invalid: it must be an integer >= 0")
    hz = values.get("SAMPLE_HZ")
    if hz is not None and not (0.1 <= hz <= 100):
        raise UserError(f"config.SAMPLE_HZ = {hz!r} is invalid: it must lie between 0.1 and 100 Hz (--sample-hz)")
    for name in ("TARGET_VAL_ACCURACY", "VAL_FRACTION", "TEST_FRACTION", "UNSTABLE_IQR_FRACTION"):
        v = values.get(name)
        if v is not None and not (0 < v < 1):
            raise UserError(f"config.{name} = {v!r} is invalid: it must lie strictly between 0 and 1")
    if values.get("VAL_FRACTION", 0) + values.get("TEST_FRACTION", 0) >= 1:
        raise UserError("config.VAL_FRACTION + config.TEST_FRACTION must be below 1")
    seed = values.get("SEED")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
        raise UserError(f"config.SEED = {seed!r} is invalid: it must be an integer >= 0 (--seed)")
    tol = values.get("ACCURACY_TOLERANCE")
    if tol is not None and (not isinstance(tol, (int, float)) or not 0 <= tol < 1):
        raise UserError(f"config.ACCURACY_TOLERANCE = {tol!r} is invalid: it must lie in [0, 1)")
    for name in ("BATCH_SIZES", "QUICK_BATCH_SIZES", "QUICK_CPU_BATCH_SIZES", "CPU_BATCH_SIZES", "UNET_CHANNELS"):
        v = values.get(name)
        if v is not None and (not v or any(not isinstance(b, int) or b < 1 for b in v)):
            raise UserError(f"config.{name} = {v!r} is invalid: it must be a non-empty tuple of positive integers")
    for name in ("VOLUME_PATH", "LABEL_PATH"):
        v = values.get(name)
        if v is not None and not os.path.exists(v):
            flag = FLAGS[name][0]
            raise UserError(f"{v}: file not found (config.{name} / {flag}); give an existing NIfTI file or leave it "
                            f"unset for the MNI152 default")
    _validate_scaling(values)
    if values.get("LABEL_PATH") and not values.get("VOLUME_PATH"):
        raise UserError("--label needs --volume (config.LABEL_PATH is set but config.VOLUME_PATH is not)")


def _validate_scaling(values: dict[str, Any]) -> None:
    for name in ("SCALING_BATCH_PER_GPU", "SCALING_CPU_BATCH_PER_PROC", "NNODES", "SCALING_TIMEOUT_S"):
        if name in values:
            _positive(values, name, integer=name != "SCALING_TIMEOUT_S")
    if "SCALING_GPUS" in values:
        _positive(values, "SCALING_GPUS", allow_none=True)
    procs = values.get("SCALING_CPU_PROCS")
    if procs is not None and (not procs or any(not isinstance(p, int) or p < 1 for p in procs)):
        raise UserError(f"config.SCALING_CPU_PROCS = {procs!r} is invalid: it must be a non-empty tuple of positive "
                        "integers")
    nnodes, rank = values.get("NNODES", 1), values.get("NODE_RANK", 0)
    if not isinstance(rank, int) or not 0 <= rank < nnodes:
        raise UserError(f"config.NODE_RANK = {rank!r} is invalid: it must lie in 0..NNODES-1 ({nnodes} node(s)); "
                        "fix --node-rank")
    port = values.get("MASTER_PORT", 29500)
    if not isinstance(port, int) or not 0 < port < 65536:
        raise UserError(f"config.MASTER_PORT = {port!r} is invalid: it must be a TCP port 1..65535 (--master-port)")
    if nnodes > 1 and not values.get("MASTER_ADDR"):
        raise UserError(f"--nnodes {nnodes} needs --master-addr (config.MASTER_ADDR): the address of the "
                        "--node-rank 0 machine")
