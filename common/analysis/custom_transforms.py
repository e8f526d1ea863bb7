"""augmentation_analysis/ of a custom pipeline: its transforms timed one by one, per sample, in
the order given (each on the previous one's output), and the whole chain."""

from __future__ import annotations

from typing import Any

from common.analysis.context import Context
from common.measure.stats import Summary
from common.measure.timing import clock

NAME = "augmentation_analysis"
MAX_SAMPLES = 16


def transform_inputs(p) -> list:
    if p.transform_inputs is not None:
        return list(p.transform_inputs)[:MAX_SAMPLES]
    if p.dataset is None:
        raise ValueError("no transform_inputs and no dataset to take samples from")
    n = min(MAX_SAMPLES, len(p.dataset))
    return [p.dataset[i][0] if isinstance(p.dataset[i], (tuple, list)) else p.dataset[i] for i in range(n)]


def measure(ctx: Context) -> dict[str, Any]:
    p = ctx.cache.pipeline
    samples = transform_inputs(p)
    repeats = max(1, ctx.settings.repeats)
    per: dict[str, list[float]] = {name: [] for name, _ in p.transforms}
    chain: list[float] = []
    timer = ctx.timer(f"{NAME}:{p.name}", sync=False)
    for _ in range(repeats):
        for sample in samples:
            x = sample
            t_chain = clock()
            for name, fn in p.transforms:
                with timer.window(name):
                    a = clock()
                    x = fn(x)
                    per[name].append((clock() - a) * 1e3)
            chain.append((clock() - t_chain) * 1e3)
    out = {name: Summary.from_values(v, "ms").to_dict() for name, v in per.items()}
    chain_s = Summary.from_values(chain, "ms").to_dict()
    return {"pipeline": p.name, "samples": len(samples), "repeats": repeats, "per_transform_ms": out,
            "chain_ms": chain_s, "chain_samples_per_s": 1e3 / chain_s["median"] if chain_s["median"] else None,
            "order": [name for name, _ in p.transforms],
            "note": "each transform timed per sample on one thread, applied to the previous transform's output"}
