"""winning_solution: the optimization ladder from the MONAI tutorial recipe, one lever at a
time, each rung trained to the accuracy gate and timed; the fastest rung that keeps the
recipe's accuracy is the winning configuration."""

from __future__ import annotations

from typing import Any

import config
from common.analysis.context import Context
from common.workloads.ladder import default_rungs, run_ladder

NAME = "winning_solution"


def measure(ctx: Context) -> dict[str, Any]:
    s = ctx.settings
    rungs, notes = default_rungs(ctx.device, s.batch_size, s.num_workers, s.quick, tuning=config.LADDER_INDUCTOR_TUNING)
    lines: list[str] = []
    res = run_ladder(rungs, ctx.data, ctx.device, lr=s.lr, base_batch=s.base_batch, seed=s.seed, epochs=s.epochs,
                     target=s.accuracy_target, tolerance=s.accuracy_tolerance, steps=s.measure_steps,
                     repeats=s.repeats, warmup=s.warmup_steps, min_window_s=0.3 if s.quick else 1.0,
                     energy=ctx.energy, monitor=ctx.monitor, log=lines.append, progress_factory=ctx.tqdm)
    res["notes"] = notes
    res["train_images"] = len(ctx.data.train_paths_labels()[0])
    res["epochs"] = s.epochs
    res["log"] = lines
    ctx.cache["ladder"] = res
    return res
