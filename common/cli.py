"""Command-line flags built from ``config.py``: every flag's default is the config value,
``--help`` shows it, and invalid values are refused before any work, naming the constant."""

from __future__ import annotations

import argparse
import math
import os
from typing import Any

from common.errors import UserError, load_config

config = load_config()  # a broken config.py ends here with one line naming the file and line

# constant -> (flag, type, help); flags override the constants of the same name
FLAGS: dict[str, tuple[str, Any, str]] = {
    "DATA_DIR": ("--data-dir", str, "folder holding MedNIST/ (from download_mednist.py)"),
    "RESULTS_DIR": ("--results-dir", str, "root of the results tree"),
    "VOLUME_PATH": ("--volume", str, "NIfTI volume for the 3D sections (default: MNI152 T1 shipped by nilearn)"),
    "LABEL_PATH": ("--label", str, "NIfTI label map matching --volume"),
    "BATCH_SIZE": ("--batch-size", int, "training batch size of the tutorial recipe"),
    "LEARNING_RATE": ("--lr", float, "Adam learning rate at --batch-size"),
    "EPOCHS": ("--epochs", int, "epochs of each accuracy-gated training run"),
    "TARGET_VAL_ACCURACY": ("--target-val-accuracy", float,
                            "validation accuracy that counts as trained (time to target)"),
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


# --- validation: one rule per constant of config.py ---------------------------------------


def _num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _pos_int(v):
    return _int(v) and v >= 1


def _pos(v):
    return _num(v) and v > 0


def _ints_tuple(lo: int, distinct: bool = False):
    def ok(v):
        return (isinstance(v, (tuple, list)) and len(v) > 0 and all(_int(b) and b >= lo for b in v)
                and (not distinct or len(set(v)) == len(v)))
    return ok


def _optional(rule):
    return lambda v: v is None or rule(v)


def _text(v):
    return isinstance(v, str) and v.strip() != ""


def _md5(v):
    return isinstance(v, str) and len(v) == 32 and all(c in "0123456789abcdefABCDEF" for c in v)


def _fraction(v):
    return _num(v) and 0 < v < 1


# constant -> (rule, allowed values in words); every constant of config.py has one (tested)
RULES: dict[str, tuple[Any, str]] = {
    "DATA_DIR": (_text, "a folder path (text)"),
    "RESULTS_DIR": (_text, "a folder path (text) that can be written"),
    "CACHE_DIR": (_text, "a folder path (text) that can be written"),
    "VOLUME_PATH": (_optional(_text), "None or the path of an existing NIfTI file"),
    "LABEL_PATH": (_optional(_text), "None or the path of an existing NIfTI label file"),
    "MEDNIST_URL": (lambda v: isinstance(v, str) and v.startswith(("https://", "http://", "file:")),
                    "an http(s):// or file: URL"),
    "MEDNIST_MD5": (_md5, "an md5 (32 hex digits)"),
    "DOWNLOAD_TIMEOUT_S": (lambda v: _num(v) and 0 < v <= 3600, "a number of seconds in (0, 3600]"),
    "SYNTHETIC_PER_CLASS": (lambda v: _int(v) and 1 <= v <= 10_000, "an integer from 1 to 10,000"),
    "VAL_FRACTION": (_fraction, "a number strictly between 0 and 1"),
    "TEST_FRACTION": (_fraction, "a number strictly between 0 and 1"),
    "SEED": (lambda v: _int(v) and v >= 0, "an integer >= 0"),
    "LEARNING_RATE": (lambda v: _num(v) and 0 < v <= 10, "a finite number in (0, 10]"),
    "TARGET_VAL_ACCURACY": (_fraction, "a number strictly between 0 and 1"),
    "ACCURACY_TOLERANCE": (lambda v: _num(v) and 0 <= v < 1, "a number in [0, 1)"),
    "NUM_WORKERS": (_optional(lambda v: _int(v) and 0 <= v <= 1024), "None (auto) or an integer from 0 to 1024"),
    "CPU_THREADS": (_optional(lambda v: _int(v) and 1 <= v <= 4096), "None (auto) or an integer from 1 to 4096"),
    "SAMPLE_HZ": (lambda v: _num(v) and 0.1 <= v <= 100, "a number of Hz from 0.1 to 100"),
    "WARMUP_STEPS": (lambda v: _int(v) and v >= 0, "an integer >= 0"),
    "UNSTABLE_IQR_FRACTION": (_fraction, "a number strictly between 0 and 1"),
    "BOOTSTRAP_RESAMPLES": (lambda v: _int(v) and 100 <= v <= 1_000_000, "an integer from 100 to 1,000,000"),
    "VOLUME_SPACING_MM": (lambda v: _num(v) and 0.1 <= v <= 50, "a finite number of mm from 0.1 to 50"),
    "QUICK_VOLUME_SPACING_MM": (lambda v: _num(v) and 0.1 <= v <= 50, "a finite number of mm from 0.1 to 50"),
    "PATCH_SIZE": (lambda v: _int(v) and 8 <= v <= 512, "an integer from 8 to 512 (divisible by 2**(levels-1))"),
    "QUICK_PATCH_SIZE": (lambda v: _int(v) and 8 <= v <= 512, "an integer from 8 to 512 (divisible by 2**(levels-1))"),
    "UNET_CHANNELS": (_ints_tuple(1), "a non-empty tuple of positive integers"),
    "QUICK_CUDNN_BENCHMARK": (lambda v: isinstance(v, bool), "True or False"),
    "LADDER_INDUCTOR_TUNING": (lambda v: isinstance(v, bool), "True or False"),
    "LADDER_COMPILED_RUNGS": (lambda v: isinstance(v, bool), "True or False"),
    "QUICK_WARMUP_STEPS": (lambda v: _int(v) and v >= 0, "an integer >= 0"),
    "EMBEDDED_MEDNIST_ARCHIVE": (_text, "a path (text) to a MedNIST-layout .tar.gz"),
    "EMBEDDED_MEDNIST_MD5": (_md5, "an md5 (32 hex digits)"),
    "WINNER_MAX_J_PER_IMAGE": (_optional(_pos), "None (off) or a positive finite number of joules per image"),
    "LADDER_SEEDS": (_ints_tuple(0, distinct=True), "a non-empty tuple of distinct integers >= 0"),
    "QUICK_LADDER_SEEDS": (_ints_tuple(0, distinct=True), "a non-empty tuple of distinct integers >= 0"),
    "ENERGY_WINDOW_S": (_pos, "a positive finite number of seconds"),
    "QUICK_ENERGY_WINDOW_S": (_pos, "a positive finite number of seconds"),
    "GPU_PRICE_PER_HOUR": (_optional(_pos), "None or a positive finite number"),
    "CPU_PRICE_PER_HOUR": (_optional(_pos), "None or a positive finite number"),
}
for _name in ("BATCH_SIZE", "EPOCHS", "MEASURE_STEPS", "REPEATS", "VOLUME_TRAIN_STEPS", "INFERENCE_REPEATS",
              "QUICK_MEASURE_STEPS", "QUICK_REPEATS", "QUICK_EPOCHS", "QUICK_MAX_TRAIN_IMAGES",
              "QUICK_VOLUME_TRAIN_STEPS", "QUICK_INFERENCE_REPEATS", "QUICK_CPU_BATCH_SIZE", "QUICK_CPU_EPOCHS",
              "QUICK_CPU_MAX_TRAIN_IMAGES", "QUICK_MAX_EVAL_IMAGES", "CPU_MEASURE_STEPS", "CPU_MAX_TRAIN_IMAGES",
              "CPU_EPOCHS"):
    RULES[_name] = (_pos_int, "a positive integer")
for _name in ("AUGMENTATION_IMAGES", "QUICK_AUGMENTATION_IMAGES", "AUGMENTATION_QUALITY_IMAGES",
              "QUICK_AUGMENTATION_QUALITY_IMAGES", "INFERENCE_THROUGHPUT_ITERS", "QUICK_INFERENCE_THROUGHPUT_ITERS",
              "VOLUME_BATCH_SIZE", "QUICK_VOLUME_BATCH_SIZE", "VOLUME_AUGMENTATION_PATCHES",
              "QUICK_VOLUME_AUGMENTATION_PATCHES", "RENDER_SIZE", "QUICK_RENDER_SIZE"):
    RULES[_name] = (_pos_int, "a positive integer")
for _name in ("BATCH_SIZES", "QUICK_BATCH_SIZES", "QUICK_CPU_BATCH_SIZES", "CPU_BATCH_SIZES",
              "INFERENCE_BATCH_SIZES", "CPU_INFERENCE_BATCH_SIZES", "QUICK_INFERENCE_BATCH_SIZES",
              "QUICK_CPU_INFERENCE_BATCH_SIZES"):
    RULES[_name] = (_ints_tuple(1), "a non-empty tuple of positive integers")
RULES.update({
    "SCALING_GPUS": (_optional(_pos_int), "None (every visible GPU) or a positive integer"),
    "SCALING_BATCH_PER_GPU": (_pos_int, "a positive integer"),
    "SCALING_CPU_PROCS": (_ints_tuple(1), "a non-empty tuple of positive integers"),
    "SCALING_CPU_BATCH_PER_PROC": (_pos_int, "a positive integer"),
    "SCALING_TIMEOUT_S": (_pos, "a positive finite number of seconds"),
    "SCALING_GRAPH": (lambda v: v in ("cuda_graph", "none"), "'cuda_graph' or 'none'"),
    "SCALING_CUDNN_BENCHMARK": (lambda v: isinstance(v, bool), "True or False"),
    "NNODES": (_pos_int, "a positive integer"),
    "NODE_RANK": (lambda v: _int(v) and v >= 0, "an integer >= 0 (below NNODES)"),
    "MASTER_ADDR": (_optional(_text), "None or the address of the node-rank-0 machine"),
    "MASTER_PORT": (lambda v: _int(v) and 0 < v < 65536, "a TCP port 1..65535"),
    "INFERENCE_LATENCY_CALLS": (_pos_int, "a positive integer"),
    "QUICK_INFERENCE_LATENCY_CALLS": (_pos_int, "a positive integer"),
    "LATENCY_BUDGET_MS": (_pos, "a positive finite number of milliseconds"),
    "INFERENCE_CURVE_SECONDS": (_pos, "a positive finite number of seconds"),
    "INFERENCE_MIN_AGREEMENT": (lambda v: _num(v) and 0 < v <= 1, "a number in (0, 1]"),
    "INFERENCE_TRAIN_STEPS": (lambda v: _int(v) and v >= 0, "an integer >= 0"),
    "INFERENCE_MAX_AUTOTUNE": (lambda v: isinstance(v, bool), "True or False"),
    "INFERENCE_COMPILE": (lambda v: isinstance(v, bool), "True or False"),
})
for _name in ("RENDER_AZIMUTHS_DEG", "QUICK_RENDER_AZIMUTHS_DEG"):
    RULES[_name] = (lambda v: isinstance(v, tuple) and len(v) > 0 and all(_num(a) for a in v),
                    "a non-empty tuple of finite angles in degrees")


def _refuse(name: str, value: Any, allowed: str) -> UserError:
    flag = FLAGS.get(name, ("--set " + name + "=...",))[0]
    return UserError(f"config.{name} = {value!r} is invalid: allowed is {allowed}; fix it in config.py or with {flag}")


def writable_folder_problem(path: str) -> str | None:
    """Why ``path`` cannot be a folder this run writes into, or None."""
    p = os.path.abspath(path)
    if os.path.exists(p) and not os.path.isdir(p):
        return "it is a file, not a folder"
    probe = p
    while not os.path.exists(probe):
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    if not os.path.isdir(probe):
        return f"{probe} is a file, so the folder cannot be created"
    if not os.access(probe, os.W_OK | os.X_OK):
        return f"{probe} is not writable"
    return None


def validate_config(values: dict[str, Any]) -> None:
    """Refuse invalid constants before any work: one line naming the constant, its value and
    what is allowed. Every constant with a rule in RULES is checked; then the cross-checks."""
    for name, value in values.items():
        if name in RULES and not RULES[name][0](value):
            raise _refuse(name, value, RULES[name][1])
    if values.get("VAL_FRACTION", 0) + values.get("TEST_FRACTION", 0) >= 1:
        raise UserError(f"config.VAL_FRACTION + config.TEST_FRACTION = "
                        f"{values.get('VAL_FRACTION', 0) + values.get('TEST_FRACTION', 0)!r} is invalid: "
                        "allowed is a sum below 1")
    levels = len(values.get("UNET_CHANNELS") or (1,))
    for name in ("PATCH_SIZE", "QUICK_PATCH_SIZE"):
        if name in values and values[name] % 2 ** (levels - 1):
            raise _refuse(name, values[name], f"a multiple of {2 ** (levels - 1)} (the UNet of UNET_CHANNELS has "
                                              f"{levels} levels)")
    for name in ("RESULTS_DIR", "CACHE_DIR"):
        if isinstance(values.get(name), str):
            problem = writable_folder_problem(values[name])
            if problem:
                raise _refuse(name, values[name], f"a folder that can be written ({problem})")
    for name in ("VOLUME_PATH", "LABEL_PATH"):
        v = values.get(name)
        if v is not None and not os.path.isfile(v):
            flag = FLAGS[name][0]
            raise UserError(f"{v}: file not found (config.{name} / {flag}); give an existing NIfTI file or leave it "
                            f"unset for the MNI152 default")
    _validate_scaling(values)
    if values.get("LABEL_PATH") and not values.get("VOLUME_PATH"):
        raise UserError("--label needs --volume (config.LABEL_PATH is set but config.VOLUME_PATH is not)")


def _validate_scaling(values: dict[str, Any]) -> None:
    """The scaling section's cross-checks (each constant alone has its rule in RULES)."""
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
