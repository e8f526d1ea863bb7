#!/usr/bin/env python3
"""Where the time and energy of one training step go, for several variants of a
configuration, in one process on one device.

For each variant: build the trainer, warm it up (compilation, CUDA-graph capture), time the
training step end to end in repeated windows with the board's energy counter, profile a few
steps with torch.profiler and sort the device time of every kernel into families (cuDNN
convolutions, cuBLAS matrix products, inductor's fused pointwise and reduction kernels, ATen
elementwise kernels, the optimizer, copies). Optionally train each variant for the ladder's
epochs first, so that a variant that changes the optimization (a larger batch) shows the
accuracy it reaches. The GPU's idle power is measured once, before anything runs.

    python benchmarks/step_breakdown.py --variant base:batch=2048 \\
        --variant fused:batch=2048,fused=1 --variant mm1x1:batch=2048,opt.conv_1x1_as_mm=1

A variant is NAME:key=value,...; keys: batch, precision, channels_last, graph, fused, concat_free,
fused_blocks and opt.NAME for an inductor option (values 0/1 are booleans). The rest comes from --base.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common.errors import UserError, load_config, run_main  # noqa: E402

config = load_config()
from common.atomic import write_json  # noqa: E402
from common.formatting import fmt_or_na  # noqa: E402

# kernel name -> family; first match wins (names from cuDNN 9, cuBLAS/cuBLASLt 12-13, inductor, ATen)
FAMILIES: tuple[tuple[str, str], ...] = (
    ("memcpy/memset", r"^(memcpy|memset)|memcpy|memset"),
    ("optimizer (Adam)", r"adam|multi_tensor_apply"),
    ("fused BN+ReLU+1x1 conv (Triton)", r"^fused_bn_relu"),
    ("inductor reduction", r"^triton_(red|per)_"),
    ("matrix product (inductor template)", r"^triton_tem_"),
    ("inductor pointwise", r"^triton_"),
    ("batch norm (cuDNN/ATen)", r"bn_fw|bn_bw|batch_norm|batchnorm"),
    ("convolution (cuDNN)", r"conv|cudnn|xmma|implicit_gemm|dgrad|wgrad|fprop|nhwc|nchw"),
    ("matrix product (cuBLAS)", r"gemm|nvjet|cutlass|cublas|splitk"),
    ("reduction (ATen)", r"reduce|welford"),
    ("elementwise (ATen)", r"elementwise|vectorized|unrolled|index|gather|scatter|cat|copy|fill|grid_sampler"),
)

def kernel_family(name: str) -> str:
    low = name.lower()
    for family, pattern in FAMILIES:
        if re.search(pattern, low):
            return family
    return "other"


def group_kernels(kernels: list[tuple[str, float]]) -> dict[str, Any]:
    """[(kernel name, device µs)] -> per-family totals, shares and the top kernels."""
    fam: dict[str, dict[str, float]] = {}
    per_name: dict[str, float] = {}
    for name, us in kernels:
        f = kernel_family(name)
        d = fam.setdefault(f, {"us": 0.0, "kernels": 0})
        d["us"] += us
        d["kernels"] += 1
        per_name[name] = per_name.get(name, 0.0) + us
    total = sum(d["us"] for d in fam.values())
    for d in fam.values():
        d["share"] = d["us"] / total if total else None
    top = sorted(per_name.items(), key=lambda kv: -kv[1])[:15]
    return {"total_us": total, "families": dict(sorted(fam.items(), key=lambda kv: -kv[1]["us"])),
            "top_kernels": [{"name": n[:160], "us": us, "family": kernel_family(n)} for n, us in top]}


def parse_variant(text: str) -> tuple[str, dict[str, Any]]:
    name, _, spec = text.partition(":")
    if not name or not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise UserError(f"--variant {text!r}: expected NAME:key=value,... with a NAME of letters, digits, _ . -")
    out: dict[str, Any] = {}
    for item in filter(None, spec.split(",")):
        key, eq, val = item.partition("=")
        if not eq:
            raise UserError(f"--variant {text!r}: {item!r} is not key=value")
        out[key.strip()] = val.strip()
    return name, out


def _value(v: str) -> Any:
    if v in ("0", "1"):
        return v == "1"
    for cast in (int, float):
        try:
            return cast(v)
        except ValueError:
            pass
    return v


def variant_levers(base, spec: dict[str, str]):
    changes: dict[str, Any] = {}
    options = dict(base.compile_options)
    for key, val in spec.items():
        if key == "batch":
            changes["batch_size"] = int(val)
        elif key in ("precision", "graph"):
            changes[key] = val
        elif key == "channels_last":
            changes["channels_last"] = _value(val) is True
        elif key == "fused":
            changes["fused_optimizer"] = _value(val) is True
        elif key == "concat_free":
            changes["concat_free"] = _value(val) is True
        elif key == "fused_blocks":
            changes["fused_blocks"] = _value(val) is True
        elif key.startswith("opt."):
            options[key[4:]] = _value(val)
        else:
            raise UserError(f"variant key {key!r} unknown: use batch, precision, channels_last, graph, fused, "
                            "concat_free, fused_blocks, opt.NAME")
    changes["compile_options"] = tuple(sorted(options.items()))
    try:
        return base.replace(**changes)
    except ValueError as exc:
        raise UserError(f"variant {spec}: {exc}") from None


def profile_steps(run, device, steps: int) -> dict[str, Any]:
    """Device time of every kernel over ``steps`` calls of ``run(1)``, grouped into families."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    run(1)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    with profile(activities=acts) as prof:
        run(steps)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
    kernels = []
    for ev in prof.events():
        dt = getattr(ev, "device_type", None)
        if dt is not None and str(dt).endswith("CUDA"):
            kernels.append((ev.name, float(ev.time_range.elapsed_us())))
    out = group_kernels(kernels)
    out["steps"] = steps
    out["us_per_step"] = out["total_us"] / steps if steps else None
    return out


def idle_power(seconds: float = 3.0) -> dict[str, Any]:
    """Board power with nothing of ours running: the floor every J/image carries."""
    from common.measure.energy import EnergyMeter, measure_idle

    d = measure_idle(EnergyMeter(gpu_index=0, device="cuda"), seconds)
    return {"seconds": seconds, "power_w": d["gpu_avg_power_w"], "reason": d["gpu_reason"]}


def measure_variant(name: str, levers, data, device, *, epochs: int, repeats: int, min_window_s: float,
                    profile_n: int, energy, log) -> dict[str, Any]:
    import torch

    from common.measure.stats import Summary
    from common.measure.timing import clock
    from common.workloads.ladder import calibrated_steps
    from common.workloads.levers import CAPTURED
    from common.workloads.throughput import peak_memory_mib, timed_windows, train_to_accuracy
    from common.workloads.training import Trainer

    out: dict[str, Any] = {"name": name, "levers": levers.to_dict(), "label": levers.label()}
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    t0 = clock()
    trainer = Trainer(data, levers, device, lr=config.LEARNING_RATE, base_batch=config.BATCH_SIZE, seed=config.SEED)
    if epochs:
        out["accuracy"] = train_to_accuracy(trainer, epochs, config.TARGET_VAL_ACCURACY)
    else:
        trainer.run_steps(3)
    out["setup_s"] = dict(trainer.setup_seconds)
    out["ready_s"] = clock() - t0
    n = calibrated_steps(trainer.run_steps, device, levers.batch_size, 5, min_window_s)
    w = timed_windows(trainer.run_steps, n, repeats, 2, device, energy=energy, name=name)
    out["images_per_s"] = Summary.from_values(w["images_per_s"], "img/s").to_dict()
    out["windows"] = w
    out["gpu_j_per_image"] = w["energy"].get("gpu_j_per_image")
    out["gpu_avg_power_w"] = w["energy"].get("gpu_avg_power_w")
    out["gpu_energy_reason"] = w["energy"].get("gpu_energy_reason") or ("no energy meter" if energy is None else None)
    out["profile"] = profile_steps(trainer.run_steps, device, profile_n)
    out["profile"]["what"] = "graph replays" if levers.graph in CAPTURED else "steps"
    if out["profile"]["total_us"] == 0 and device.type == "cuda" and levers.graph in CAPTURED:
        # the profiler may not see inside graph replays: the same step's kernels, launched one by one
        out["profile"] = profile_steps(trainer.run_eager_steps, device, profile_n)
        out["profile"]["what"] = "the captured step's kernels launched eagerly (graph replays were not traced)"
    if out["profile"]["total_us"] == 0:
        out["profile"]["reason"] = "no device kernels on a CPU run" if device.type == "cpu" else "no kernels traced"
    out["peak_memory_mib"] = peak_memory_mib(device)
    wall_step_us = 1e6 * levers.batch_size / out["images_per_s"]["median"]
    out["step_wall_us"] = wall_step_us
    out["kernel_busy_fraction"] = (out["profile"]["us_per_step"] / wall_step_us
                                   if out["profile"]["us_per_step"] else None)
    acc = out.get("accuracy", {}).get("test_accuracy")
    log(f"{name:<14} {out['images_per_s']['median']:>9.0f} img/s  "
        f"{fmt_or_na(out['gpu_j_per_image'], '{:.4f} J/img', out['gpu_energy_reason'])}  "
        f"{fmt_or_na(out['gpu_avg_power_w'], '{:.0f} W', out['gpu_energy_reason'])}  "
        f"ready {out['ready_s']:.0f} s" + (f"  test acc {100 * acc:.2f}%" if acc is not None else ""))
    del trainer
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return out


def table(res: dict[str, Any]) -> str:
    idle = res.get("idle_power") or {}
    lines = [f"idle board power: {fmt_or_na(idle.get('power_w'), '{:.0f} W', idle.get('reason') or 'not measured')}"]
    head = f"{'variant':<14} {'img/s':>9} {'J/img':>8} {'W':>5} {'test acc':>9}  kernel time by family (% of traced)"
    lines += [head, "-" * len(head)]
    for v in res["variants"]:
        fams = v["profile"]["families"]
        shares = ", ".join(f"{k} {100 * d['share']:.0f}%" for k, d in list(fams.items())[:5] if d["share"])
        acc = v.get("accuracy", {}).get("test_accuracy")
        acc_s = f"{100 * acc:.2f}%" if acc is not None else "-"
        lines.append(f"{v['name']:<14} {v['images_per_s']['median']:>9.0f} "
                     f"{fmt_or_na(v['gpu_j_per_image'], '{:.4f}', 'no counter'):>8} "
                     f"{fmt_or_na(v['gpu_avg_power_w'], '{:.0f}', 'no counter'):>5} "
                     f"{acc_s:>9}  {shares or v['profile'].get('reason', '')}")
    lines += [f"{f['name']:<14} failed: {f['error']}" for f in res.get("failed", [])]
    return "\n".join(lines)


@run_main
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--variant", action="append", default=[], metavar="NAME:SPEC", help="a variant (repeatable)")
    p.add_argument("--base", default="device_resident,bf16,channels_last,compile_cuda_graph",
                   help="the configuration every variant starts from: data path, precision, "
                        "channels_last, graph (comma-separated) [%(default)s]")
    p.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    p.add_argument("--data-dir", default=config.DATA_DIR)
    p.add_argument("--epochs", type=int, default=0, help="train each variant this many epochs first (0: no training)")
    p.add_argument("--repeats", type=int, default=config.REPEATS)
    p.add_argument("--min-window-s", type=float, default=2.0)
    p.add_argument("--profile-steps", type=int, default=5)
    p.add_argument("--out", default=None, help="write the full results here (JSON) and the figure beside it (.png)")
    args = p.parse_args(argv)
    if not args.variant:
        raise UserError("no --variant given: e.g. --variant base:batch=2048 (see --help)")
    import torch

    from common.measure.energy import EnergyMeter
    from common.measure.environment import collect
    from common.workloads.levers import DATA_PATHS, GRAPHS, PRECISIONS, Levers
    from common.workloads.mednist_data import load_mednist

    if args.device == "cuda" and not torch.cuda.is_available():
        print("no CUDA device: run with --device cpu", file=sys.stderr)
        return 2
    device = torch.device("cuda:0" if args.device == "cuda" else "cpu")
    base = Levers("device_resident")
    for part in filter(None, args.base.split(",")):
        if part in DATA_PATHS:
            base = base.replace(data_path=part)
        elif part in PRECISIONS:
            base = base.replace(precision=part)
        elif part in GRAPHS:
            base = base.replace(graph=part)
        elif part == "channels_last":
            base = base.replace(channels_last=True)
        else:
            raise UserError(f"--base part {part!r} unknown: use a data path {DATA_PATHS}, a precision {PRECISIONS}, "
                            f"a graph {GRAPHS} or channels_last")
    variants = [(name, variant_levers(base, spec)) for name, spec in map(parse_variant, args.variant)]
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.zeros(1, device=device)  # initialize CUDA before the first memory-statistics call
    data = load_mednist(args.data_dir, config.VAL_FRACTION, config.TEST_FRACTION, config.SEED)
    res: dict[str, Any] = {"device": str(device), "variants": [], "failed": [],
                           "idle_power": idle_power() if device.type == "cuda" else None,
                           # the environment (commit, time) as the run starts, not as it ends
                           "environment": collect(config={"epochs": args.epochs, "base": args.base},
                                                  dataset=data.source, seed=config.SEED)}
    energy = EnergyMeter(gpu_index=0 if device.type == "cuda" else None, device=str(device))
    for name, lv in variants:
        try:
            res["variants"].append(measure_variant(name, lv, data, device, epochs=args.epochs, repeats=args.repeats,
                                                   min_window_s=args.min_window_s, profile_n=args.profile_steps,
                                                   energy=energy, log=lambda s: print(s, flush=True)))
        except Exception as exc:  # one variant that fails (an option this torch lacks) spoils none of the others
            why = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"[:300]
            res["failed"].append({"name": name, "label": lv.label(), "error": why})
            print(f"{name:<14} failed: {why}", file=sys.stderr, flush=True)
            if device.type == "cuda":
                torch.cuda.empty_cache()
        if args.out:  # after every variant: a run cut short keeps what it measured
            write_json(args.out, res)
    if not res["variants"]:
        raise UserError(f"every variant failed: {'; '.join(f['name'] + ': ' + f['error'] for f in res['failed'])}")
    print()
    print(table(res))
    if args.out:
        from common.plots.breakdown import plot

        write_json(args.out, res)
        print(f"figure: {plot(res, Path(args.out).with_suffix('.png'))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
