"""winning_solution: the optimization ladder from the MONAI tutorial recipe, one lever at a
time, each rung trained to the target validation accuracy in fresh processes, cold and warm,
on every seed; the winner is the rung that reaches a trained model soonest, cold, while
keeping the recipe's test accuracy on every seed (common/workloads/ladder_run.py)."""

from __future__ import annotations

import os
from typing import Any

from common.analysis.context import Context
from common.workloads.ladder import default_rungs
from common.workloads.ladder_run import LadderSpec, run_ladder

NAME = "winning_solution"


def ladder_spec(s, device: str) -> LadderSpec:
    """The ladder's run specification from the run's Settings."""
    return LadderSpec(device=device, data_dir=s.data_dir, split_seed=s.seed, val_fraction=s.val_fraction,
                      test_fraction=s.test_fraction, max_train=s.max_train_images, max_eval=s.max_eval_images,
                      lr=s.lr, base_batch=s.base_batch, epochs=s.epochs, target=s.accuracy_target,
                      tolerance=s.accuracy_tolerance, seeds=tuple(s.ladder_seeds), measure_s=s.energy_window_s,
                      repeats=s.repeats, cache_root=os.path.join(s.cache_dir, "ladder"), cpu_threads=s.cpu_threads,
                      decode_workers=max(1, min(16, s.num_workers)), winner_max_j_per_image=s.winner_max_j_per_image)


def measure(ctx: Context) -> dict[str, Any]:
    s = ctx.settings
    rungs, notes = default_rungs(ctx.device, s.batch_size, s.num_workers, s.quick, tuning=s.ladder_inductor_tuning,
                                 compiled=s.ladder_compiled_rungs)
    lines: list[str] = []
    import dataclasses

    spec = dataclasses.replace(ladder_spec(s, ctx.kind), skipped=tuple(tuple(x) for x in ctx.data.skipped))
    res = run_ladder(rungs, spec, probe_data=lambda: ctx.data, monitor=ctx.monitor,
                     log=lines.append, progress_factory=ctx.tqdm)
    res["notes"] = notes
    res["train_images"] = len(ctx.data.train_paths_labels()[0])
    res["epochs"] = s.epochs
    res["log"] = lines
    return res
