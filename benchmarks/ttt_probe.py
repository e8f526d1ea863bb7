#!/usr/bin/env python3
"""A few rungs' time to target without the recipe (a probe, not a ranking: there is no gate
without the recipe's seeds): each rung cold then warm in fresh processes, as the ladder runs
them, with every run's one-time costs printed and written.

    python benchmarks/ttt_probe.py --rungs cuda_graph_prewarm,gemm_1x1 --seeds 0 --out ttt_probe.json
    python benchmarks/ttt_probe.py --rungs gemm_1x1 --set schedule_epochs=1.5
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common.errors import UserError, run_main  # noqa: E402


def parse_sets(items: list[str]) -> dict:
    out = {}
    for item in items:
        key, sep, val = item.partition("=")
        if not sep:
            raise UserError(f"--set {item!r}: give NAME=VALUE, e.g. schedule_epochs=1.5")
        try:
            out[key] = json.loads(val)
        except ValueError:
            out[key] = val
    return out


@run_main
def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default="data")
    p.add_argument("--rungs", required=True, help="comma-separated rung ids (benchmarks/winning_solution.py "
                                                  "--list-rungs)")
    p.add_argument("--seeds", default="0")
    p.add_argument("--set", action="append", default=[], metavar="LEVER=VALUE", help="override a lever of every rung")
    p.add_argument("--no-warm", action="store_true")
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    import torch

    from benchmarks.winning_solution import settings_for
    from common.atomic import write_json
    from common.sections.winning_solution.measure import ladder_spec
    from common.workloads.ladder import default_rungs
    from common.workloads.ladder_run import run_rung_to_target

    ns = argparse.Namespace(epochs=None, batch_size=None, repeats=None, target=None, seeds=args.seeds,
                            measure_s=None, quick=False)
    s = settings_for(ns, "cuda")
    rungs, _ = default_rungs(torch.device("cuda"), s.batch_size, s.num_workers, False, compiled=False)
    byid = {r.id: r for r in rungs}
    want = [x.strip() for x in args.rungs.split(",") if x.strip()]
    unknown = [w for w in want if w not in byid]
    if unknown:
        raise UserError(f"--rungs: unknown rung id(s) {', '.join(unknown)}; known: {', '.join(byid)}")
    sets = parse_sets(args.set)
    spec = dataclasses.replace(ladder_spec(s, "cuda"), data_dir=args.data_dir, warm=not args.no_warm, measure_s=0.0)
    import os

    os.makedirs(spec.cache_root, exist_ok=True)
    out = []
    for rid in want:
        rung = byid[rid]
        if sets:
            rung = dataclasses.replace(rung, levers=rung.levers.replace(**sets))
        runs = run_rung_to_target(rung, spec, log=print)
        for r in runs:
            print(f"  {rid} seed {r.get('seed')} {r.get('kind')}: " + (r.get("error") or json.dumps(
                {k: v for k, v in r.get("one_time_s", {}).items()}, default=str)[:1500]), flush=True)
        out.append({"rung": rid, "levers": rung.levers.to_dict(), "runs": runs})
        if args.out:
            write_json(args.out, {"rungs": out})
    return 0


if __name__ == "__main__":
    sys.exit(main())
