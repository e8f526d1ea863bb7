#!/usr/bin/env python3
"""Winning-solution benchmark: the optimization ladder from the MONAI tutorial recipe, each
rung trained to the target validation accuracy (config.TARGET_VAL_ACCURACY) in fresh
processes, cold (empty caches) and warm (a second process reusing them), on every seed of
config.LADDER_SEEDS, every one-time cost on the clock. The winner is the rung with the
shortest median cold time to target among those that pass the accuracy gate on every seed;
the throughput leader is named apart. Prints one table and writes the full JSON. The
analysis's winning_solution section runs the same code (common/workloads/ladder_run.py).

    python benchmarks/winning_solution.py --data-dir data --out ladder.json
    python benchmarks/winning_solution.py --from-record docs/records/winning_solution_run_AF.json
    python benchmarks/winning_solution.py --headline docs/records/winning_solution_run_AF.json

A ladder split over two GPUs of one machine (each half pinned to its own GPU and cores, run at
the same time), then ranked as one:

    CUDA_VISIBLE_DEVICES=0 python benchmarks/winning_solution.py --rungs recipe --out a.json
    CUDA_VISIBLE_DEVICES=1 python benchmarks/winning_solution.py --no-recipe --rungs schedule_b150 --out b.json
    python benchmarks/winning_solution.py --merge a.json b.json --out ladder.json
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import config  # noqa: E402
from common.atomic import write_json  # noqa: E402
from common.errors import UserError, run_main  # noqa: E402
from common.ladder_text import headline, legacy_table, table  # noqa: E402


def load_result(path: str) -> tuple[dict, str]:
    import json

    try:
        raw = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"{path}: cannot read a ladder record ({type(exc).__name__}: {exc}); give this script's "
                        "--out file or an analysis's metrics/*winning_solution_analysis.json") from None
    res = raw.get("data", raw)
    if res.get("no_recipe"):
        raise UserError(f"{path}: half of a ladder run without the recipe (--no-recipe); rank it with the half that "
                        f"holds the recipe first: --merge RECIPE_HALF.json {path} --out LADDER.json")
    if not res.get("rungs"):
        raise UserError(f"{path}: no rung was measured in this record; nothing to print")
    device = raw.get("device") or res.get("spec", {}).get("device") or (
        "cuda" if res.get("matmul_peak", {}).get("n", 0) >= 4096 else "cpu")
    if "time_to_target" not in res["rungs"][0]:  # the throughput ladder's record (before issue 15)
        if "summary" not in res:
            raise UserError(f"{path}: a throughput-ladder record cut short; this version prints only finished ones")
        return res, device
    if "summary" not in res:  # a run cut short: its record holds the rungs measured so far
        from common.workloads.ladder_run import add_speedups, pick_winner

        add_speedups(res["rungs"])
        spec = res["spec"]
        res["summary"] = pick_winner(res["rungs"], spec["tolerance"], tuple(spec["seeds"]),
                                     spec.get("winner_max_j_per_image"))
        print(f"partial record: the run stopped after {len(res['rungs'])} rung(s); the winner is the best of those",
              file=sys.stderr)
    return res, device


def _shown(path: str) -> str:
    """A record's path as the README names it: relative to the repository where it lies inside it."""
    try:
        return str(Path(path).resolve().relative_to(Path(__file__).resolve().parents[1]))
    except ValueError:
        return path


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    p.add_argument("--data-dir", default=config.DATA_DIR)
    p.add_argument("--epochs", type=int, default=None,
                   help=f"epoch budget per run [config.EPOCHS={config.EPOCHS}; on the CPU config.CPU_EPOCHS="
                        f"{config.CPU_EPOCHS}; with --quick the QUICK_ constants]")
    p.add_argument("--batch-size", type=int, default=None, help=f"the recipe's batch [config.BATCH_SIZE="
                                                                 f"{config.BATCH_SIZE}]")
    p.add_argument("--seeds", default=None, help=f"comma-separated seeds [config.LADDER_SEEDS={config.LADDER_SEEDS}]")
    p.add_argument("--target", type=float, default=None,
                   help=f"target validation accuracy [config.TARGET_VAL_ACCURACY={config.TARGET_VAL_ACCURACY}]")
    p.add_argument("--max-train", type=int, default=None,
                   help="cap on training images (default: all on the GPU, config.CPU_MAX_TRAIN_IMAGES="
                        f"{config.CPU_MAX_TRAIN_IMAGES} on the CPU)")
    p.add_argument("--quick", action="store_true", help="the short ladder and sizes of --quick analyses")
    p.add_argument("--rungs", default=None, help="comma-separated rung ids to run (the recipe always runs)")
    p.add_argument("--no-recipe", action="store_true",
                   help="run only the --rungs given, without the recipe: one half of a ladder split over GPUs, "
                        "ranked afterwards by --merge (its record alone has no gate)")
    p.add_argument("--merge", nargs="+", default=None, metavar="JSON",
                   help="rank records run side by side as one ladder (the first holds the recipe; the others were "
                        "run with --no-recipe and the same settings); prints the table, writes --out")
    p.add_argument("--list-rungs", action="store_true", help="print the rung ids of this device's ladder and exit")
    p.add_argument("--no-warm", action="store_true", help="cold runs only")
    p.add_argument("--runs-dir", default=None, help="also write every run's whole result here as it ends "
                                                    "(kept when a long ladder is stopped mid-rung)")
    p.add_argument("--brief", default="", help="comma-separated rung ids run on the first seed only and without "
                                               "the sustained window (to save device time; they cannot win)")
    p.add_argument("--compiled", action=argparse.BooleanOptionalAction, default=config.LADDER_COMPILED_RUNGS,
                   help="the torch.compile throughput-leader rung (GPU) [config.LADDER_COMPILED_RUNGS=%(default)s]")
    p.add_argument("--inductor-tuning", action=argparse.BooleanOptionalAction, default=config.LADDER_INDUCTOR_TUNING,
                   help="inductor's tuning rungs after the compiled rung (GPU); minutes of compilation each "
                        "[config.LADDER_INDUCTOR_TUNING=%(default)s]")
    p.add_argument("--measure-s", type=float, default=None,
                   help="sustained throughput/energy window per rung "
                        f"[config.ENERGY_WINDOW_S={config.ENERGY_WINDOW_S}]")
    p.add_argument("--repeats", type=int, default=None, help=f"windows of that measurement [config.REPEATS="
                                                              f"{config.REPEATS}]")
    p.add_argument("--out", default=None, help="write the full results here (JSON), after every rung")
    p.add_argument("--from-record", default=None, metavar="JSON",
                   help="print the table of an earlier run (this script's --out, or an analysis's "
                        "metrics/*winning_solution_analysis.json) without measuring")
    p.add_argument("--headline", nargs="+", default=None, metavar="JSON",
                   help="print the README's 'Measured results' block from a record without measuring; further "
                        "records (runs with the recipe beside their rungs) add their throughput leader")
    return p


def settings_for(args: argparse.Namespace, device: str):
    """The analysis's settings for this device and mode; flags given here win."""
    from common.analysis.settings import Settings
    from common.cli import values_from_args

    given = {name: getattr(args, flag) for flag, name in (("epochs", "EPOCHS"), ("batch_size", "BATCH_SIZE"),
                                                          ("repeats", "REPEATS"), ("target", "TARGET_VAL_ACCURACY"))
             if getattr(args, flag, None) is not None}
    if getattr(args, "seeds", None):
        given["QUICK_LADDER_SEEDS" if args.quick else "LADDER_SEEDS"] = tuple(int(x) for x in args.seeds.split(","))
    if getattr(args, "measure_s", None) is not None:
        given["QUICK_ENERGY_WINDOW_S" if args.quick else "ENERGY_WINDOW_S"] = args.measure_s
    values = values_from_args(argparse.Namespace(**given), set(given))
    values.update(given)  # constants without a flag of their own (LADDER_SEEDS, ENERGY_WINDOW_S)
    return Settings.resolve(values, device, args.quick)


@run_main
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.merge:
        return merge(args.merge, args.out)
    if args.from_record or args.headline:
        paths = args.headline or [args.from_record]
        loaded = [load_result(path) for path in paths]
        for path, (res, _) in zip(paths, loaded):
            if args.headline and "time_to_target" not in res["rungs"][0]:
                raise UserError(f"{path}: a throughput-ladder record (before issue 15) has no time to target "
                                "to print a headline from")
        res, device = loaded[0]
        if "time_to_target" not in res["rungs"][0]:
            print(legacy_table(res, device))
        elif args.headline:
            print(headline(res, device, [(_shown(p), r) for p, (r, _) in zip(paths[1:], loaded[1:])]))
        else:
            print(table(res, device))
        return 0

    import dataclasses

    import torch

    from common.measure.environment import collect
    from common.measure.samplers import Monitor
    from common.sections.winning_solution.measure import ladder_spec
    from common.workloads.ladder import default_rungs
    from common.workloads.ladder_run import run_ladder
    from common.workloads.mednist_data import load_mednist

    device = torch.device("cuda:0" if args.device == "cuda" else "cpu")
    s = settings_for(args, args.device)
    rungs, notes = default_rungs(device, s.batch_size, s.num_workers, args.quick, tuning=args.inductor_tuning,
                                 compiled=args.compiled)
    if args.list_rungs:
        print("\n".join(f"{r.id:<28} {r.name}" for r in rungs))
        return 0
    if args.device == "cuda" and not torch.cuda.is_available():
        print("no CUDA device: run with --device cpu for the CPU ladder", file=sys.stderr)
        return 2
    if args.rungs:
        want = {x.strip() for x in args.rungs.split(",") if x.strip()}
        unknown = want - {r.id for r in rungs}
        if unknown:
            raise UserError(f"--rungs: unknown rung id(s) {', '.join(sorted(unknown))}; --list-rungs names them")
        if args.no_recipe and "recipe" in want:
            raise UserError("--no-recipe --rungs names the recipe; run it in the other half (--rungs recipe)")
        rungs = [r for i, r in enumerate(rungs) if (i == 0 and not args.no_recipe) or r.id in want]
    elif args.no_recipe:
        raise UserError("--no-recipe needs --rungs: the rung ids this half of the ladder runs (--list-rungs)")
    spec = ladder_spec(s, args.device)
    spec = dataclasses.replace(spec, data_dir=args.data_dir, warm=not args.no_warm,
                               brief=tuple(x.strip() for x in args.brief.split(",") if x.strip()),
                               runs_dir=args.runs_dir,
                               max_train=args.max_train if args.max_train is not None else spec.max_train)
    data = load_mednist(args.data_dir, s.val_fraction, s.test_fraction, s.seed, max_train=spec.max_train,
                        max_eval=s.max_eval_images)
    spec = dataclasses.replace(spec, skipped=tuple(tuple(x) for x in data.skipped))  # checked once, here
    name = torch.cuda.get_device_name(0) if device.type == "cuda" else "CPU"
    print(f"{len(rungs)} rungs on {device} ({name}), {len(data.train_paths_labels()[0])} training images, seeds "
          f"{list(spec.seeds)}, target {spec.target}, budget {spec.epochs} epochs", flush=True)
    environment = collect(config=s.to_dict(), dataset=data.source, seed=s.seed, threads_used=s.cpu_threads)
    from common.measure.samplers import nvml_index

    with Monitor(s.sample_hz, gpu_index=nvml_index(0) if device.type == "cuda" else None) as mon:
        res = run_ladder(rungs, spec, probe_data=lambda: data, monitor=mon, log=lambda line: print(line, flush=True),
                         on_rung=(lambda partial: write_json(args.out, {**partial, "environment": environment}))
                         if args.out else None, rank=not args.no_recipe)
    res["notes"] = notes + list(s.notes)
    res["train_images"] = len(data.train_paths_labels()[0])
    res["epochs"] = s.epochs
    res["environment"] = environment
    print()
    if args.no_recipe:
        print("half of a ladder without the recipe: rank it with --merge RECIPE_HALF.json " + (args.out or "OUT.json"))
    else:
        print(table(res, device.type))
    if args.out:
        write_json(args.out, res)
    return 0


def merge(paths: list[str], out: str | None) -> int:
    import json

    from common.workloads.ladder_run import merge_records

    parts = []
    for path in paths:
        try:
            parts.append(json.loads(Path(path).read_text()))
        except (OSError, ValueError) as exc:
            raise UserError(f"{path}: cannot read a ladder record ({type(exc).__name__}: {exc}); give this script's "
                            "--out files") from None
    try:
        res = merge_records(parts, paths)
    except (ValueError, KeyError) as exc:
        raise UserError(f"--merge: {exc}") from None
    device = res.get("spec", {}).get("device", "cuda")
    print(table(res, device))
    if out:
        write_json(out, res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
