#!/usr/bin/env python3
"""Winning-solution benchmark: the optimization ladder from the MONAI tutorial recipe, each
rung trained to the target validation accuracy (config.TARGET_VAL_ACCURACY) in fresh
processes, cold (empty caches) and warm (a second process reusing them), on every seed of
config.LADDER_SEEDS, every one-time cost on the clock. The winner is the rung with the
shortest median cold time to target among those that pass the accuracy gate on every seed;
the throughput leader is named apart. Prints one table and writes the full JSON. The
analysis's winning_solution section runs the same code (common/workloads/ladder_run.py).

    python benchmarks/winning_solution.py --data-dir data --out ladder.json
    python benchmarks/winning_solution.py --from-record docs/records/winning_solution_run_T.json
    python benchmarks/winning_solution.py --headline docs/records/winning_solution_run_T.json
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import config  # noqa: E402
from common.atomic import write_json  # noqa: E402
from common.errors import UserError, run_main  # noqa: E402


def _s(v, fmt="{:.1f}") -> str:
    return fmt.format(v) if v is not None else "n/a"


def _t(t: dict | None) -> str:
    """median [min-max] of a time-to-target spread, or n/a."""
    if not t:
        return "n/a"
    return f"{t['median']:.1f} [{t['min']:.1f}-{t['max']:.1f}]"


def table(res: dict, device: str) -> str:
    rows = res["rungs"]
    s = res["summary"]
    win = s["winner_index"] if s.get("crowned", True) else None
    lead = s.get("throughput_leader_index")
    head = (f"{'#':>2} {'rung':<40} {'img/s':>8} {'x':>5} {'J/img':>7} {'cold s [range]':>17} {'x':>5} "
            f"{'warm s [range]':>17} {'x':>5} {'test acc per seed':<24} gate")
    lines = [head, "-" * len(head)]
    for i, r in enumerate(rows):
        t = r["time_to_target"]
        rate = r["images_per_s"]["median"] if r.get("images_per_s") else None
        sp = (r.get("speedup_vs_recipe") or {}).get("value")
        j = r.get("gpu_j_per_image") if device == "cuda" else r.get("cpu_j_per_image")
        accs = " ".join(f"{100 * a:.2f}" if a is not None else "n/a" for a in t["test_accuracy_per_seed"].values())
        mark = "* " if i == win else ("^ " if i == lead else "")
        lines.append(
            f"{i:>2} {(mark + r['name']):<40.40} {_s(rate, '{:.0f}'):>8} {_s(sp):>5} {_s(j, '{:.4f}'):>7} "
            f"{_t(t.get('cold')):>17} {_s(r.get('time_to_target_ratio_cold')):>5} {_t(t.get('warm')):>17} "
            f"{_s(r.get('time_to_target_ratio_warm')):>5} {accs:<24} "
            f"{'pass' if r.get('passes_gate') else 'FAIL: ' + (r.get('gate_reason') or '')}")
    gate = (f"gate: reach {100 * res['spec']['target']:.1f}% validation accuracy and test accuracy >= "
            f"{100 * s['accuracy_gate']:.2f}% (the recipe's lowest seed - {100 * s['tolerance']:.1f} points) on every "
            "seed" if s.get("accuracy_gate") is not None
            else "gate: the recipe has no test accuracy")
    lines.append(f"winner (*): {rows[s['winner_index']]['name']} ({s['winner_rule']}); {gate}")
    if lead is not None:
        lines.append(f"throughput leader (^): {rows[lead]['name']} "
                     f"({_s((rows[lead].get('speedup_vs_recipe') or {}).get('value'))}x the recipe's images/s)")
    lines.append("time to target: seconds from the rung's start to the end of the epoch that reached the target, "
                 "every one-time cost included; median [range] over seeds; x = the recipe's median / the rung's")
    return "\n".join(lines)


def legacy_table(res: dict, device: str) -> str:
    """The throughput ladder's table (records before issue 15: runs P and S in docs/PERFORMANCE.md)."""
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



def headline(res: dict, device: str = "cuda") -> str:
    """The README's "Measured results" block, printed from a record (a test keeps them equal)."""
    rows, s = res["rungs"], res["summary"]
    env = res.get("environment", {})
    devices = (env.get("gpu") or {}).get("devices") or []
    card = devices[0]["name"] if devices and device == "cuda" else env.get("cpu_model")
    w, r0 = rows[s["winner_index"]], rows[0]
    train_images = res.get("train_images") or next((x.get("train_images") for x in r0["time_to_target"]["runs"]
                                                    if x.get("train_images")), None)
    lead = rows[s["throughput_leader_index"]] if s.get("throughput_leader_index") is not None else None
    tw, t0 = w["time_to_target"], r0["time_to_target"]
    seeds = ", ".join(str(x) for x in t0["seeds"])
    commit = str((env.get("git") or {}).get("commit") or "unknown")[:7]
    out = [f"On one {card or device} ({str(env.get('time_utc', ''))[:10]}, commit {commit}; "
           f"{train_images} training images, seeds {seeds}; target {100 * res['spec']['target']:.0f}% "
           "validation accuracy):"]
    out.append(f"- the recipe (MONAI tutorial: per-sample CPU transforms in DataLoader workers, fp32, batch "
               f"{r0['levers']['batch_size']}) reaches the target in {_t(t0.get('cold'))} s cold and "
               f"{_t(t0.get('warm'))} s warm (median [range] over seeds), at {_s(r0['images_per_s']['median'], '{:.0f}')}"
               f" images/s, test accuracy {_accs(t0)};")
    if s.get("crowned") and lead is w:
        out.append(f"- the winner, also the throughput leader among the rungs measured, {w['name']} ({w['label']}), "
                   f"reaches it in {_t(tw.get('cold'))} s cold "
                   f"({_s(w.get('time_to_target_ratio_cold'))}x sooner) and {_t(tw.get('warm'))} s warm "
                   f"({_s(w.get('time_to_target_ratio_warm'))}x sooner), at {_s(w['images_per_s']['median'], '{:.0f}')}"
                   f" images/s ({_s((w.get('speedup_vs_recipe') or {}).get('value'))}x the recipe's), "
                   f"{_s(w.get('gpu_j_per_image'), '{:.4f}')} J/image, test accuracy {_accs(tw)}.")
    elif s.get("crowned"):
        out.append(f"- the winner, {w['name']} ({w['label']}), reaches it in {_t(tw.get('cold'))} s cold "
                   f"({_s(w.get('time_to_target_ratio_cold'))}x sooner) and {_t(tw.get('warm'))} s warm "
                   f"({_s(w.get('time_to_target_ratio_warm'))}x sooner), at {_s(w['images_per_s']['median'], '{:.0f}')}"
                   f" images/s ({_s((w.get('speedup_vs_recipe') or {}).get('value'))}x the recipe's), "
                   f"{_s(w.get('gpu_j_per_image'), '{:.4f}')} J/image, test accuracy {_accs(tw)};")
    else:
        out.append(f"- {s['winner_rule']};")
    if lead is not None and lead is not w:
        tl = lead["time_to_target"]
        out.append(f"- the throughput leader, {lead['name']}, trains at {_s(lead['images_per_s']['median'], '{:.0f}')}"
                   f" images/s ({_s((lead.get('speedup_vs_recipe') or {}).get('value'))}x the recipe's) but reaches "
                   f"the target in {_t(tl.get('cold'))} s cold ({_s(lead.get('time_to_target_ratio_cold'))}x the "
                   f"recipe's speed) and {_t(tl.get('warm'))} s warm"
                   + (f"; {lead['gate_reason']}" if lead.get("gate_reason") else "") + ".")
    return "\n".join(out)


def _accs(t: dict) -> str:
    return ", ".join(f"{100 * a:.2f}%" if a is not None else "n/a" for a in t["test_accuracy_per_seed"].values())


def load_result(path: str) -> tuple[dict, str]:
    import json

    try:
        raw = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"{path}: cannot read a ladder record ({type(exc).__name__}: {exc}); give this script's "
                        "--out file or an analysis's metrics/*winning_solution_analysis.json") from None
    res = raw.get("data", raw)
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
    p.add_argument("--list-rungs", action="store_true", help="print the rung ids of this device's ladder and exit")
    p.add_argument("--no-warm", action="store_true", help="cold runs only")
    p.add_argument("--brief", default="", help="comma-separated rung ids run on the first seed only and without "
                                               "the sustained window (to save device time; they cannot win)")
    p.add_argument("--compiled", action=argparse.BooleanOptionalAction, default=config.LADDER_COMPILED_RUNGS,
                   help="the torch.compile throughput-leader rung (GPU) [config.LADDER_COMPILED_RUNGS=%(default)s]")
    p.add_argument("--inductor-tuning", action=argparse.BooleanOptionalAction, default=config.LADDER_INDUCTOR_TUNING,
                   help="inductor's tuning rungs after the compiled rung (GPU); minutes of compilation each "
                        "[config.LADDER_INDUCTOR_TUNING=%(default)s]")
    p.add_argument("--measure-s", type=float, default=None,
                   help=f"sustained throughput/energy window per rung [config.ENERGY_WINDOW_S={config.ENERGY_WINDOW_S}]")
    p.add_argument("--repeats", type=int, default=None, help=f"windows of that measurement [config.REPEATS="
                                                              f"{config.REPEATS}]")
    p.add_argument("--out", default=None, help="write the full results here (JSON), after every rung")
    p.add_argument("--from-record", default=None, metavar="JSON",
                   help="print the table of an earlier run (this script's --out, or an analysis's "
                        "metrics/*winning_solution_analysis.json) without measuring")
    p.add_argument("--headline", default=None, metavar="JSON",
                   help="print the README's 'Measured results' block from a record without measuring")
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
    if args.from_record or args.headline:
        res, device = load_result(args.from_record or args.headline)
        if "time_to_target" not in res["rungs"][0]:
            if args.headline:
                raise UserError(f"{args.headline}: a throughput-ladder record (before issue 15) has no time to target "
                                "to print a headline from")
            print(legacy_table(res, device))
        else:
            print(headline(res, device) if args.headline else table(res, device))
        return 0

    import dataclasses

    import torch

    from common.analysis.winning import ladder_spec
    from common.measure.environment import collect
    from common.measure.samplers import Monitor
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
        rungs = [r for i, r in enumerate(rungs) if i == 0 or r.id in want]
    spec = ladder_spec(s, args.device)
    spec = dataclasses.replace(spec, data_dir=args.data_dir, warm=not args.no_warm,
                               brief=tuple(x.strip() for x in args.brief.split(",") if x.strip()),
                               max_train=args.max_train if args.max_train is not None else spec.max_train)
    data = load_mednist(args.data_dir, s.val_fraction, s.test_fraction, s.seed, max_train=spec.max_train,
                        max_eval=s.max_eval_images)
    name = torch.cuda.get_device_name(0) if device.type == "cuda" else "CPU"
    print(f"{len(rungs)} rungs on {device} ({name}), {len(data.train_paths_labels()[0])} training images, seeds "
          f"{list(spec.seeds)}, target {spec.target}, budget {spec.epochs} epochs", flush=True)
    environment = collect(config=s.to_dict(), dataset=data.source, seed=s.seed, threads_used=s.cpu_threads)
    with Monitor(s.sample_hz, gpu_index=0 if device.type == "cuda" else None) as mon:
        res = run_ladder(rungs, spec, probe_data=lambda: data, monitor=mon, log=lambda line: print(line, flush=True),
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
