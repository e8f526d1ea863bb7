#!/usr/bin/env python3
"""Data-parallel scaling benchmark: DenseNet121 on MedNIST trained through torchrun and
DistributedDataParallel on 1, 2, 4, ... GPUs (NCCL), or in gloo processes sharing the CPU's
cores; per count the global throughput, weak- and strong-scaling efficiency, time to the target
validation accuracy with the test accuracy, the communication share of the step and each device's
utilization, power and J/image. Prints one table and writes the record (JSON). The analysis's
``scaling`` section runs the same code (common/sections/scaling/measure.py).

    python benchmarks/scaling.py --data-dir data --out scaling.json            # every visible GPU
    python benchmarks/scaling.py --device cpu --procs 1,2 --out cpu_scaling.json
    python benchmarks/scaling.py --from-record scaling.json                    # the table again

Several machines: run the same command on each with --nnodes N --node-rank R --master-addr HOST
(--master-port P); node 0 measures its local counts first, then all N machines together, and writes
the record (docs/SCALING.md).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import config  # noqa: E402
from common.errors import UserError, run_main  # noqa: E402


def parser() -> argparse.ArgumentParser:
    from common.cli import SCALING_FLAGS, add_config_flags, add_set_flag

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    p.add_argument("--out", type=Path, default=None, help="write the record (JSON) here")
    p.add_argument("--from-record", type=Path, default=None, help="print the table of a record written by --out")
    p.add_argument("--quick", action="store_true", help="the analysis's --quick sizes (fewer images, epochs, steps)")
    p.add_argument("--procs", default=None, help="CPU: gloo process counts, e.g. 1,2 "
                                                 f"[config.SCALING_CPU_PROCS = {config.SCALING_CPU_PROCS}]")
    p.add_argument("--batch-per-gpu", dest="SCALING_BATCH_PER_GPU", type=int, default=config.SCALING_BATCH_PER_GPU,
                   help=f"per-GPU batch [config.SCALING_BATCH_PER_GPU = {config.SCALING_BATCH_PER_GPU}]")
    p.add_argument("--max-train", type=int, default=None, help="cap on training images (default: the analysis's)")
    add_config_flags(p, ["DATA_DIR", "EPOCHS", "TARGET_VAL_ACCURACY", "MEASURE_STEPS", "REPEATS", "SEED",
                         *SCALING_FLAGS])
    add_set_flag(p)
    return p


def settings_for(args: argparse.Namespace, argv: list[str] | None):
    from common.analysis.settings import Settings
    from common.cli import explicit_flags, validate_config, values_from_args

    values = values_from_args(args, explicit_flags(parser(), argv))
    values["SCALING_BATCH_PER_GPU"] = args.SCALING_BATCH_PER_GPU
    if args.procs:
        try:
            values["SCALING_CPU_PROCS"] = tuple(int(x) for x in args.procs.split(","))
        except ValueError:
            raise UserError(f"--procs {args.procs!r}: expected comma-separated integers, e.g. 1,2") from None
    validate_config(values)
    s = Settings.resolve(values, args.device, args.quick)
    if args.max_train is not None:
        if args.max_train < 1:
            raise UserError(f"--max-train {args.max_train}: must be a positive number of images")
        s = dataclasses.replace(s, max_train_images=args.max_train)
    return s


@run_main
def main(argv: list[str] | None = None) -> int:
    from common.records import Record, load_record, save_record
    from common.sections.scaling.measure import run_scaling, table

    args = parser().parse_args(argv)
    if args.from_record:
        rec = load_record(args.from_record, kind="scaling")
        print(table(rec.data))
        return 0
    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda: torch.cuda.is_available() is False on this machine; use --device cpu")
    s = settings_for(args, argv)
    from common.measure.environment import collect
    from common.workloads.distributed_launch import RankFailure
    from common.workloads.mednist_data import load_mednist

    data = load_mednist(s.data_dir, s.val_fraction, s.test_fraction, s.seed, max_train=s.max_train_images,
                        max_eval=s.max_eval_images)
    env = collect(config=s.to_dict(), dataset=data.source, seed=s.seed, threads_used=s.cpu_threads)
    logs = (args.out.parent if args.out else Path(".")) / "scaling_logs"
    try:
        result = run_scaling(s, args.device, len(data.split.train_paths), logs)
    except RankFailure as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    rec = Record(kind="scaling", device=args.device, data=result, environment=env, notes=list(s.notes))
    print(table(result))
    if args.out:
        save_record(args.out, rec)
        print(f"record: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
