#!/usr/bin/env python3
"""Inference-ladder benchmark: MedNIST's DenseNet121 served on one device, one lever per rung
from eager fp32 (inference_mode, channels_last, bf16, CUDA graphs, torch.compile; on CPUs thread
count, oneDNN bf16 and ONNX Runtime). Per rung: top-1 agreement with eager fp32 on the test split,
batch-1 latency p50/p95/p99, end-to-end latency from a JPEG, one-time cost (compile, export,
capture), the throughput-latency curve; then the latency winner and the throughput winner within
the latency budget. The analysis's performance_analysis section runs the same code
(common/workloads/inference_ladder.py).

    python benchmarks/inference_ladder.py --device cpu --out cpu_inference.json
    python benchmarks/inference_ladder.py --from-record cpu_inference.json
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import config  # noqa: E402
from common.atomic import write_json  # noqa: E402
from common.errors import UserError, run_main  # noqa: E402


def _f(v, fmt: str) -> str:
    return "-" if v is None else fmt.format(v)


def table(res: dict) -> str:
    from common.workloads.inference_ladder import best_under_budget

    budget = res["config"]["budget_ms"]
    head = (f"{'#':>2} {'rung':<40} {'p50 ms':>8} {'p95':>8} {'p99':>8} {'x eager':>7} {'agree%':>7} "
            f"{'max|dlog|':>9} {'e2e p50':>8} {'1-time s':>8}  {'best in ' + format(budget, 'g') + ' ms':<20} kept")
    lines = [head, "-" * len(head)]
    win = (res.get("latency_winner") or {}).get("name")
    for i, r in enumerate(res["rungs"]):
        name = ("* " if r["name"] == win else "") + r["name"]
        if r["status"] != "ok":
            lines.append(f"{i:>2} {name:<40.40} {r['status']}: {r.get('reason')}")
            continue
        lat, a = r["latency"], r["agreement"]
        b = best_under_budget(r.get("curve") or [], budget)
        best = f"b{b['batch_size']}: {b['images_per_s_median']:.0f} img/s" if b else "none"
        lines.append(f"{i:>2} {name:<40.40} {lat['p50_ms']:>8.3f} {lat['p95_ms']:>8.3f} {lat['p99_ms']:>8.3f} "
                     f"{_f(r.get('speedup_p50_vs_eager'), '{:.2f}'):>7} {100 * a['top1_agreement']:>7.2f} "
                     f"{a['max_abs_logit_diff']:>9.2g} {_f((r.get('end_to_end') or {}).get('p50_ms'), '{:.3f}'):>8} "
                     f"{r['one_time_s']:>8.1f}  "
                     f"{best:<20} "
                     f"{'base' if i == 0 else 'yes' if r.get('kept') else 'no'}{'' if a['passed'] else ' REFUSED'}")
    w, t = res.get("latency_winner"), res.get("throughput_winner")
    lines.append(f"latency winner: {w['name']} ({w['label']}, engine {w['engine']}): p50 {w['p50_ms']:.3f} ms, "
                 f"{w['speedup_p50_vs_eager']:.2f}x eager fp32" if w else
                 f"latency winner: none ({res.get('latency_winner_reason')})")
    lines.append(f"throughput winner within {budget:g} ms (p99): {t['name']}, batch {t['batch_size']}: "
                 f"{t['images_per_s']:.0f} img/s" if t
                 else f"throughput winner: none ({res.get('throughput_winner_reason')})")
    for n in res.get("notes", []):
        lines.append(f"note: {n}")
    return "\n".join(lines)


def _ints(text: str) -> tuple[int, ...]:
    try:
        vals = tuple(int(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected comma-separated integers, e.g. 1,8,64") from None
    if not vals or min(vals) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: batch sizes must be positive integers")
    return vals


def settings_for(args: argparse.Namespace):
    from common.analysis.settings import Settings
    from common.cli import values_from_args

    given = {"CPU_THREADS": args.threads} if args.threads else {}
    s = Settings.resolve(values_from_args(argparse.Namespace(**given), set(given)), args.device, args.quick)
    changes = {k: v for k, v in (("inference_batch_sizes", args.batch_sizes), ("inference_latency_calls", args.calls),
                                 ("latency_budget_ms", args.budget_ms), ("inference_train_steps", args.train_steps),
                                 ("inference_max_autotune", args.max_autotune), ("inference_compile", args.compile))
               if v is not None}
    return dataclasses.replace(s, **changes)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    p.add_argument("--data-dir", default=config.DATA_DIR)
    p.add_argument("--quick", action="store_true", help="the sizes of --quick analyses (fewer calls, batch sizes)")
    p.add_argument("--rungs", default=None, help="comma-separated rung indices to run (0 = eager fp32, always run)")
    p.add_argument("--batch-sizes", type=_ints, default=None,
                   help=f"throughput-latency curve [config.INFERENCE_BATCH_SIZES={config.INFERENCE_BATCH_SIZES}; "
                        f"CPU: config.CPU_INFERENCE_BATCH_SIZES={config.CPU_INFERENCE_BATCH_SIZES}]")
    p.add_argument("--calls", type=int, default=None,
                   help="timed batch-1 calls per rung "
                        f"[config.INFERENCE_LATENCY_CALLS={config.INFERENCE_LATENCY_CALLS}]")
    p.add_argument("--budget-ms", type=float, default=None,
                   help=f"latency budget, p99 of one call [config.LATENCY_BUDGET_MS={config.LATENCY_BUDGET_MS}]")
    p.add_argument("--train-steps", type=int, default=None,
                   help="training steps of the served model "
                        f"[config.INFERENCE_TRAIN_STEPS={config.INFERENCE_TRAIN_STEPS}]")
    p.add_argument("--max-autotune", action=argparse.BooleanOptionalAction, default=None,
                   help="GPU: add the torch.compile max-autotune-no-cudagraphs rung (minutes of autotuning) "
                        f"[config.INFERENCE_MAX_AUTOTUNE={config.INFERENCE_MAX_AUTOTUNE}]")
    p.add_argument("--threads", type=int, default=None,
                   help="torch intra-op threads of the process (the eager baseline) [config.CPU_THREADS or all "
                        "physical cores]")
    p.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                   help=f"the torch.compile rungs [config.INFERENCE_COMPILE={config.INFERENCE_COMPILE}]")
    p.add_argument("--out", default=None, help="write the full results here (JSON; also after every rung)")
    p.add_argument("--from-record", default=None, metavar="JSON",
                   help="print the table of an earlier run (this script's --out, or an analysis's "
                        "metrics/*performance_analysis.json) without measuring")
    return p


@run_main
def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.from_record:
        import json

        try:
            raw = json.loads(Path(args.from_record).read_text())
        except (OSError, ValueError) as exc:
            raise UserError(f"{args.from_record}: cannot read a JSON record ({exc}); "
                            "give this script's --out") from None
        res = raw.get("data", raw)
        res = res.get("inference_ladder", res)
        if not isinstance(res, dict) or not res.get("rungs"):
            raise UserError(f"{args.from_record}: no inference-ladder rungs in this record")
        if "latency_winner" not in res:  # a run cut short: the winners of the rungs measured so far
            from common.workloads.inference_ladder import LadderConfig, summarize

            res = summarize(res["rungs"], LadderConfig(**res["config"]), res.get("notes", []))
            print(f"partial record: {len(res['rungs'])} rung(s) measured")
        print(table(res))
        return 0
    return measure(args)


def measure(args: argparse.Namespace) -> int:
    import torch

    from common.measure.environment import collect
    from common.workloads.inference_ladder import LadderConfig, LadderInputs, run_ladder, rungs_for, summarize
    from common.workloads.mednist_data import load_mednist
    from common.workloads.serving import served_model, split_images

    if args.device == "cuda" and not torch.cuda.is_available():
        print("no CUDA device: run with --device cpu for the CPU ladder", file=sys.stderr)
        return 2
    s = settings_for(args)
    device = torch.device("cuda:0" if args.device == "cuda" else "cpu")
    torch.set_num_threads(s.cpu_threads)
    if device.type == "cuda":  # serving runs fixed shapes: let cuDNN pick its fastest algorithms
        torch.backends.cudnn.benchmark = True
    data = load_mednist(args.data_dir, s.val_fraction, s.test_fraction, s.seed, max_eval=s.max_eval_images)
    cfg = LadderConfig.from_settings(s)
    rungs, notes = rungs_for(device, cfg)
    if args.rungs:
        keep = {int(x) for x in args.rungs.split(",")}
        rungs = [r for i, r in enumerate(rungs, start=1) if i in keep]
    environment = collect(config={"inference_ladder": cfg.__dict__, "quick": args.quick,
                                  "train_steps": s.inference_train_steps}, dataset=data.source, seed=s.seed)
    print(f"{len(rungs) + 1} rungs on {device} ({torch.cuda.get_device_name(0) if device.type == 'cuda' else 'CPU'}, "
          f"{s.cpu_threads} threads); training the served model ({s.inference_train_steps} steps)", flush=True)
    model, info = served_model(data, device, s.inference_train_steps, s.seed, s.lr, s.base_batch)
    images, paths = split_images(data)
    print(f"served model: test accuracy {100 * info['test_accuracy']:.2f}% ({info['seconds']:.0f} s); "
          f"{len(images)} test images", flush=True)

    def save(partial: list[dict]) -> None:
        if args.out:
            write_json(args.out, {"data": {**summarize(partial, cfg, notes), "served_model": info},
                                  "device": args.device, "environment": environment})

    inp = LadderInputs(model, images, device, cfg, lambda m: print(f"rung: {m}", flush=True), jpeg_paths=paths)
    res = run_ladder(inp, rungs, notes, on_rung=save)
    res["served_model"] = info
    if args.out:
        write_json(args.out, {"data": res, "device": args.device, "environment": environment})
    print()
    print(table(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
