#!/usr/bin/env python3
"""Winning-solution benchmark: in one process on one device, the MONAI tutorial recipe,
each rung of the optimization ladder, the winning configuration and every rung's
model-only ceiling, trained to the accuracy gate and timed. Prints one table and writes
the full JSON. The analysis's winning_solution section runs the same code
(common/workloads/ladder.py).

    python benchmarks/winning_solution.py --data-dir data --out ladder.json
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import config  # noqa: E402
from common.atomic import write_json  # noqa: E402
from common.errors import UserError, run_main  # noqa: E402


def table(res: dict, device: str) -> str:
    rows = res["rungs"]
    win = res["summary"]["winner_index"]
    head = (f"{'#':>2} {'configuration':<44} {'img/s':>9} {'x recipe':>15} {'eff':>5} {'util%':>6} {'J/img':>7} "
            f"{'MFU':>6} {'test acc':>8} {'TTA x':>6} {'warm':>5}")
    lines = [head, "-" * len(head)]
    for i, r in enumerate(rows):
        sp = r["speedup_vs_recipe"]
        util = r.get("gpu_util_pct") if device == "cuda" else r.get("cpu_util_pct")
        j = r.get("gpu_j_per_image") if device == "cuda" else r.get("cpu_j_per_image")
        tta = r.get("time_to_accuracy_ratio")
        warm = r.get("time_to_accuracy_ratio_warm")
        lines.append(
            f"{i:>2} {('* ' if i == win else '') + r['name']:<44.44} {r['images_per_s']['median']:>9.0f} "
            f"{sp['value']:>5.1f} [{sp['ci95'][0]:>4.1f}-{sp['ci95'][1]:>4.1f}] {r['pipeline_efficiency']:>5.2f} "
            f"{util if util is not None else float('nan'):>6.0f} {j if j is not None else float('nan'):>7.4f} "
            f"{100 * (r['mfu'] or float('nan')):>5.1f}% {100 * r['accuracy']['test_accuracy']:>7.2f}% "
            f"{tta if tta else float('nan'):>6.1f} {warm if warm else float('nan'):>5.1f}")
    s = res["summary"]
    gate = (f"accuracy gate {100 * s['accuracy_gate']:.2f}%" if s.get("gate_applied", True)
            else f"accuracy gate {s['gate_reason']}")
    lines.append(f"winner: {rows[win]['name']} ({rows[win]['label']}); {gate}; "
                 f"MFU against measured {res['matmul_peak']['dtype']} matmul "
                 f"{res['matmul_peak']['flops_per_s'] / 1e12:.1f} TFLOP/s; "
                 f"{res['train_flops_per_image'] / 1e9:.3f} GFLOP per image per training step")
    return "\n".join(lines)


def settings_for(args: argparse.Namespace, device: str):
    """The analysis's settings for this device and mode (CPU runs get the CPU-sized epochs,
    training images and windows); flags given here win."""
    from common.analysis.settings import Settings
    from common.cli import values_from_args

    given = {name: getattr(args, flag) for flag, name in (("epochs", "EPOCHS"), ("batch_size", "BATCH_SIZE"),
                                                          ("repeats", "REPEATS")) if getattr(args, flag) is not None}
    return Settings.resolve(values_from_args(argparse.Namespace(**given), set(given)), device, args.quick)


@run_main
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    p.add_argument("--data-dir", default=config.DATA_DIR)
    p.add_argument("--epochs", type=int, default=None,
                   help=f"epochs per rung [config.EPOCHS={config.EPOCHS}; on the CPU config.CPU_EPOCHS="
                        f"{config.CPU_EPOCHS}; with --quick the QUICK_ constants]")
    p.add_argument("--batch-size", type=int, default=None, help=f"the recipe's batch [config.BATCH_SIZE="
                                                                 f"{config.BATCH_SIZE}]")
    p.add_argument("--max-train", type=int, default=None,
                   help="cap on training images (default: all on the GPU, config.CPU_MAX_TRAIN_IMAGES="
                        f"{config.CPU_MAX_TRAIN_IMAGES} on the CPU)")
    p.add_argument("--quick", action="store_true", help="the short ladder and sizes of --quick analyses")
    p.add_argument("--rungs", default=None, help="comma-separated rung indices to run (0 = recipe, always run)")
    p.add_argument("--inductor-tuning", action=argparse.BooleanOptionalAction, default=config.LADDER_INDUCTOR_TUNING,
                   help="add inductor's tuning rungs after the fused-blocks rung (GPU): programmatic dependent "
                        "launch, coordinate-descent tuning; minutes of compilation each "
                        "[config.LADDER_INDUCTOR_TUNING=%(default)s]")
    p.add_argument("--repeats", type=int, default=None,
                   help=f"timed windows per rung [config.REPEATS={config.REPEATS}]")
    p.add_argument("--min-window-s", type=float, default=1.0, help="shortest timed window (energy counters)")
    p.add_argument("--out", default=None, help="write the full results here (JSON)")
    p.add_argument("--from-record", default=None, metavar="JSON",
                   help="print the table of an earlier run (this script's --out, or an analysis's "
                        "metrics/*winning_solution_analysis.json) without measuring")
    args = p.parse_args(argv)
    if args.from_record:
        import json

        raw = json.loads(Path(args.from_record).read_text())
        res = raw.get("data", raw)
        if "summary" not in res:  # a run cut short: its record holds the rungs measured so far
            from common.workloads.ladder import pick_winner

            if not res.get("rungs"):
                raise UserError(f"{args.from_record}: no rung was measured in this record; nothing to print")
            res["summary"] = pick_winner(res["rungs"], config.ACCURACY_TOLERANCE, config.WINNER_MAX_J_PER_IMAGE)
            print(f"partial record: the run stopped after {len(res['rungs'])} rung(s); "
                  "the winner is the best of those")
        print(table(res, raw.get("device", "cuda" if res["matmul_peak"]["n"] >= 4096 else "cpu")))
        return 0

    import torch

    from common.measure.energy import EnergyMeter
    from common.measure.environment import collect
    from common.measure.samplers import Monitor
    from common.workloads.ladder import default_rungs, run_ladder
    from common.workloads.mednist_data import load_mednist

    if args.device == "cuda" and not torch.cuda.is_available():
        print("no CUDA device: run with --device cpu for the CPU ladder", file=sys.stderr)
        return 2
    s = settings_for(args, args.device)
    device = torch.device("cuda:0" if args.device == "cuda" else "cpu")
    torch.set_num_threads(s.cpu_threads)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    max_train = args.max_train if args.max_train is not None else s.max_train_images
    data = load_mednist(args.data_dir, s.val_fraction, s.test_fraction, s.seed, max_train=max_train,
                        max_eval=s.max_eval_images)
    rungs, notes = default_rungs(device, s.batch_size, s.num_workers, args.quick, tuning=args.inductor_tuning)
    if args.rungs:
        keep = {0} | {int(x) for x in args.rungs.split(",")}
        rungs = [r for i, r in enumerate(rungs) if i in keep]
    print(f"{len(rungs)} rungs on {device} ({torch.cuda.get_device_name(0) if device.type == 'cuda' else 'CPU'}), "
          f"{len(data.train_paths_labels()[0])} training images, {s.epochs} epochs each, "
          f"{s.cpu_threads} threads", flush=True)
    # the environment (commit, time) as the run starts, not as it ends
    environment = collect(config={"epochs": s.epochs, "batch_size": s.batch_size, "max_train": max_train,
                                  "quick": args.quick, "measure_steps": s.measure_steps, "repeats": s.repeats,
                                  "inductor_tuning": args.inductor_tuning},
                          dataset=data.source, seed=s.seed)
    with Monitor(s.sample_hz, gpu_index=0 if device.type == "cuda" else None) as mon:
        res = run_ladder(rungs, data, device, lr=s.lr, base_batch=s.base_batch, seed=s.seed, epochs=s.epochs,
                         target=s.accuracy_target, tolerance=s.accuracy_tolerance, steps=s.measure_steps,
                         repeats=s.repeats, warmup=s.warmup_steps, min_window_s=args.min_window_s,
                         energy=EnergyMeter(gpu_index=0 if device.type == "cuda" else None, device=str(device)),
                         monitor=mon, log=lambda line: print(line, flush=True),
                         on_rung=(lambda partial: write_json(args.out, {**partial, "environment": environment}))
                         if args.out else None)
    res["notes"] = notes + list(s.notes)
    res["train_images"] = len(data.train_paths_labels()[0])
    res["epochs"] = s.epochs
    res["environment"] = environment
    print()
    print(table(res, device.type))
    if args.out:
        write_json(args.out, res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
