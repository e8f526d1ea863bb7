#!/usr/bin/env python3
"""Choose a rung's training schedule on the validation split (issue 15, item 4).

For every candidate (batch size, epochs the learning-rate schedule spans, learning-rate
multiplier) and every seed of ``--seeds``, one process trains the rung's step (its levers,
``--levers``) for the schedule's length plus what is left of its last epoch, with validation
at every epoch's end and where the schedule ends; test accuracy is recorded beside it and
never used. The rule, fixed before any run:

* a candidate is eligible when its validation accuracy at the schedule's end is at least
  ``--target`` + ``--margin`` on every seed (the margin stands for images the sample does
  not have: validation accuracy moves by ~0.2 points per seed on 1,200 images);
* the chosen one is the eligible candidate with the fewest expected training seconds
  (schedule steps x its measured median step time), ties to the higher lowest-seed accuracy.

The seeds are not the ladder's (0, 1, 2 by default), so the ladder's runs check the choice on
seeds it was not made on.

    python benchmarks/schedule_probe.py --data-dir data --out schedule_probe.json
    python benchmarks/schedule_probe.py --from-records docs/records/schedule_probe_run_AC.json
"""

from __future__ import annotations

import argparse
import itertools
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import config  # noqa: E402
from common.errors import UserError, run_main  # noqa: E402


def parse_floats(text: str, name: str) -> list[float]:
    try:
        vals = [float(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise UserError(f"{name} {text!r}: give comma-separated numbers, e.g. 1,1.5,2") from None
    if not vals or any(v <= 0 for v in vals):
        raise UserError(f"{name} {text!r}: give positive numbers")
    return vals


def batch_step_times(rows: list[dict]) -> None:
    """Set every row's ``step_s`` to the median steady step time over every candidate of its
    batch size (steps after the first evaluation point: the first holds the capture): a
    one-epoch schedule has no later steps of its own, and its steps cost what the batch's do."""
    by_batch: dict[int, list[float]] = {}
    for r in rows:
        by_batch.setdefault(r["batch"], []).extend(r.get("step_times", []))
    for r in rows:
        times = sorted(by_batch[r["batch"]])
        r["step_s"] = times[len(times) // 2] if times else None


def report(rows: list[dict], pick: dict) -> str:
    lines = []
    for i, r in enumerate(rows):
        mark = "*" if i == pick["chosen"] else ("+" if r["eligible"] else " ")
        exp = f"{r['expected_train_s']:.2f} s" if r.get("expected_train_s") is not None else "n/a"
        lines.append(f"{mark} b{r['batch']:<5} sched {r['schedule_epochs']:<4g} lr x{r['lr_mult']:<3g} min val "
                     f"{r['min_val']:.4f}  vals {' '.join(f'{v:.4f}' for v in r['val_at_schedule_end'])}  "
                     f"tests {' '.join(f'{v:.4f}' for v in r['test_accuracy'])}  expected {exp}")
    lines.append(pick["reason"])
    return "\n".join(lines)


def from_records(paths: list[str], target: float | None, margin: float | None) -> dict:
    """The rule applied again to the candidates of earlier runs' records (one per batch size),
    per batch size, as the run applies it."""
    import json

    out = {"batches": {}, "sources": paths}
    for path in paths:
        try:
            d = json.loads(Path(path).read_text())
        except (OSError, ValueError) as exc:
            raise UserError(f"{path}: cannot read a schedule_probe record ({type(exc).__name__})") from None
        for sub in (d["batches"].values() if "batches" in d else [d]):  # a merged record, or one run's
            _apply(sub, path, out, target, margin)
    return out


def _apply(d: dict, path: str, out: dict, target: float | None, margin: float | None) -> None:
    """The rule over ``d``'s candidates, batch size by batch size, into ``out["batches"]``."""
    batch_step_times(d["candidates"])
    t = target if target is not None else d["target"]
    m = margin if margin is not None else d["margin"]
    for b in sorted({r["batch"] for r in d["candidates"]}):
        rows = [r for r in d["candidates"] if r["batch"] == b]
        pick = choose(rows, t, m)
        won = rows[pick["chosen"]] if pick["chosen"] is not None else None
        out["batches"][str(b)] = {"device": d.get("device"), "levers": d.get("levers"), "target": t, "margin": m,
                                  "candidates": rows, **pick,
                                  "chosen_schedule": won["schedule_epochs"] if won else None,
                                  "chosen_lr_mult": won["lr_mult"] if won else None}
        print(f"batch {b} ({path}):")
        print(report(rows, pick))


def choose(rows: list[dict], target: float, margin: float) -> dict:
    """The rule of the module's docstring over ``rows`` (one per candidate, with per-seed
    ``val_at_schedule_end`` and ``step_s``); returns {chosen index or None, reason}."""
    eligible = []
    for i, r in enumerate(rows):
        accs = r["val_at_schedule_end"]
        r["min_val"] = min(accs) if accs else None
        r["expected_train_s"] = r["schedule_steps"] * r["step_s"] if r.get("step_s") else None
        r["eligible"] = bool(accs) and min(accs) >= target + margin and r["expected_train_s"] is not None
        if r["eligible"]:
            eligible.append(i)
    if not eligible:
        return {"chosen": None, "reason": f"no candidate reached {target + margin:.4f} validation accuracy on every "
                                          "seed at its schedule's end"}
    best = min(eligible, key=lambda i: (rows[i]["expected_train_s"], -rows[i]["min_val"]))
    return {"chosen": best, "reason": f"fewest expected training seconds among the {len(eligible)} candidate(s) "
                                      f"with validation accuracy >= {target + margin:.4f} on every seed"}


@run_main
def main(argv=None) -> int:
    from benchmarks.warmup_probe import parse_levers

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default="data")
    p.add_argument("--levers", default="device_resident,bf16,channels_last,cuda_graph,no_autotune,gemm_1x1",
                   help="the rung's levers (benchmarks/warmup_probe.py tokens); the batch comes from --batches")
    p.add_argument("--batches", default="300", help="batch sizes (comma-separated)")
    p.add_argument("--schedules", default="1,1.5,2", help="epochs the schedule spans (comma-separated)")
    p.add_argument("--lr-mults", default="1,2", help="multipliers of the square-root-scaled learning rate")
    p.add_argument("--seeds", default="100,101,102,103,104")
    p.add_argument("--target", type=float, default=config.TARGET_VAL_ACCURACY)
    p.add_argument("--margin", type=float, default=0.005)
    p.add_argument("--out", default=None)
    p.add_argument("--from-records", nargs="+", default=None, metavar="JSON",
                   help="apply the rule again to earlier runs' records (one per batch size) without training")
    args = p.parse_args(argv)
    if args.from_records:
        from common.atomic import write_json

        merged = from_records(args.from_records, None, None)
        if args.out:
            write_json(args.out, merged)
        return 0
    batches = [int(b) for b in parse_floats(args.batches, "--batches")]  # bad input fails before any work
    cands = list(itertools.product(batches, parse_floats(args.schedules, "--schedules"),
                                   parse_floats(args.lr_mults, "--lr-mults")))
    try:
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    except ValueError:
        raise UserError(f"--seeds {args.seeds!r}: give comma-separated integers, e.g. 100,101,102") from None
    import torch

    from common.atomic import write_json
    from common.workloads.decoded_cache import load_decoded
    from common.workloads.mednist_data import load_mednist
    from common.workloads.time_to_target import eval_points, train_to_target
    from common.workloads.training import Trainer, scaled_lr

    dev = torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    base = parse_levers(args.levers)
    torch.backends.cudnn.benchmark = base.cudnn_benchmark
    data = load_mednist(args.data_dir, config.VAL_FRACTION, config.TEST_FRACTION, config.SEED, check=False)
    load_decoded(data, None, 16)
    rows: list[dict] = []
    for batch, sched, mult in cands:
        lv = base.replace(batch_size=batch, schedule_epochs=sched)
        lr = scaled_lr(config.LEARNING_RATE, config.BATCH_SIZE, batch) * mult
        row = {"batch": batch, "schedule_epochs": sched, "lr_mult": mult, "lr": lr, "label": lv.label(),
               "seeds": seeds, "val_at_schedule_end": [], "test_accuracy": [], "histories": [], "step_times": []}
        for seed in seeds:
            tr = Trainer(data, lv, dev, lr=config.LEARNING_RATE * mult, base_batch=config.BATCH_SIZE, seed=seed)
            if lv.data_path == "device_resident":
                tr.resident()
            steps = tr.steps_per_epoch()
            total, _ = eval_points(steps, math.ceil(sched), sched)
            t = time.perf_counter()
            res = train_to_target(tr, math.ceil(sched), 2.0, time.perf_counter(), {})  # 2.0: never reached
            wall = time.perf_counter() - t
            end = next(h for h in res["history"] if h["step"] == total)
            row["val_at_schedule_end"].append(end["val_accuracy"])
            row["test_accuracy"].append(tr.evaluate("test")["accuracy"])
            row["histories"].append([{k: h[k] for k in ("epoch", "step", "val_accuracy", "train_s", "images")}
                                     for h in res["history"]])
            later = [h for h in res["history"][1:] if h["images"]]
            if later:
                row["step_times"].append(sum(h["train_s"] for h in later) / sum(h["images"] / batch for h in later))
            row["schedule_steps"] = total
            print(f"b{batch} sched {sched:g} lr x{mult:g} seed {seed}: val@end {end['val_accuracy']:.4f} "
                  f"test {row['test_accuracy'][-1]:.4f} ({wall:.1f} s)", flush=True)
            del tr
            if dev.type == "cuda":
                torch.cuda.empty_cache()
        rows.append(row)
    batch_step_times(rows)
    pick = choose(rows, args.target, args.margin)
    out = {"device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu", "levers": args.levers,
           "target": args.target, "margin": args.margin, "rule": __doc__.split("The rule")[1].split("The seeds")[0],
           "candidates": rows, **pick}
    print(report(rows, pick))
    if args.out:
        write_json(args.out, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
