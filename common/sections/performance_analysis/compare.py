"""performance_analysis: batch and precision sweeps, batch-1 latency, inference throughput."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from common.comparison import BEST_VS_BEST, LIKE_FOR_LIKE
from common.comparison.load import Run
from common.comparison.speedups import Side, key_id, speedup_entry
from common.sections.performance_analysis.compare_serving import ladder_speedups


def _rows_by(rows: list[dict], key: Callable[[dict], Any]) -> dict[Any, int]:
    """Rows that measured a throughput, by their key."""
    return {key(r): i for i, r in enumerate(rows) if not r.get("error") and r.get("images_per_s")}


def _batch_key(row: dict) -> str:
    return key_id(row["batch_size"])


def _precision_key(row: dict) -> str:
    """A precision row's key from its levers (not its label): 'bf16', 'fp32_channels_last', ..."""
    lev = row.get("levers") or {}
    return key_id(f"{lev['precision']}{'_channels_last' if lev.get('channels_last') else ''}")


def speedups(g: Run, c: Run, out: list, skipped: list) -> None:
    gp, cp = g.ok("performance_analysis"), c.ok("performance_analysis")
    if not (gp and cp):
        return
    ladder_speedups(g, c, out, skipped)  # the inference ladder: like-for-like and each device's winners
    for section, key, label, field in (("batch_sweep", _batch_key, "batch", "batch_size"),
                                       ("precision", _precision_key, "precision", "label")):
        gi, ci = _rows_by(gp.data[section], key), _rows_by(cp.data[section], key)
        for k, i in ci.items():
            if k not in gi:
                continue
            grow, crow = gp.data[section][gi[k]], cp.data[section][i]
            e = speedup_entry(f"performance.{section}.{k}", "training",
                              f"training throughput, end to end ({label} sweep: {crow[field]})", LIKE_FOR_LIKE,
                              Side(g, "performance_analysis", [["data", section, gi[k], "images_per_s", "values"]],
                                   grow["label"], grow.get("levers"), unit="img/s"),
                              Side(c, "performance_analysis", [["data", section, i, "images_per_s", "values"]],
                                   crow["label"], crow.get("levers"), unit="img/s"), True, skipped=skipped)
            if e:
                out.append(e)
    glat, clat = gp.data["inference_latency"], cp.data["inference_latency"]
    for prec in clat:
        if prec not in glat:
            continue
        e = speedup_entry(f"inference.latency_batch1.{prec}", "inference", f"inference latency, batch 1 ({prec})",
                          LIKE_FOR_LIKE,
                          Side(g, "performance_analysis", [["data", "inference_latency", prec, "summary", "values"]],
                               f"batch 1, {prec}", unit="ms"),
                          Side(c, "performance_analysis", [["data", "inference_latency", prec, "summary", "values"]],
                               f"batch 1, {prec}", unit="ms"), False, headline=prec == "fp32", skipped=skipped)
        if e:
            out.append(e)
    gbest = min(glat, key=lambda p: glat[p]["summary"]["median"]) if glat else None
    cbest = min(clat, key=lambda p: clat[p]["summary"]["median"]) if clat else None
    if gbest and cbest:
        e = speedup_entry("inference.latency_batch1.best", "inference", "inference latency, batch 1: each device's "
                          "fastest precision", BEST_VS_BEST,
                          Side(g, "performance_analysis", [["data", "inference_latency", gbest, "summary", "values"]],
                               f"batch 1, {gbest}", {"precision": gbest}, unit="ms"),
                          Side(c, "performance_analysis", [["data", "inference_latency", cbest, "summary", "values"]],
                               f"batch 1, {cbest}", {"precision": cbest}, unit="ms"), False, skipped=skipped)
        if e:
            out.append(e)
    gt, ct = gp.data["inference_throughput"], cp.data["inference_throughput"]
    gi, ci = _rows_by(gt, lambda r: r["batch_size"]), _rows_by(ct, lambda r: r["batch_size"])
    for b, i in ci.items():
        if b in gi:
            e = speedup_entry(f"inference.throughput.batch_{b}", "inference", f"inference throughput, batch {b}",
                              LIKE_FOR_LIKE,
                              Side(g, "performance_analysis", [["data", "inference_throughput", gi[b], "images_per_s",
                                                                "values"]], f"batch {b}", unit="img/s"),
                              Side(c, "performance_analysis", [["data", "inference_throughput", i, "images_per_s",
                                                                "values"]], f"batch {b}", unit="img/s"), True,
                              skipped=skipped)
            if e:
                out.append(e)
    gb, cb = gp.data.get("inference_best_batch"), cp.data.get("inference_best_batch")
    if gb in gi and cb in ci:
        e = speedup_entry("inference.throughput.best_batch", "inference", "inference throughput: each device's best "
                          "batch size", BEST_VS_BEST,
                          Side(g, "performance_analysis",
                               [["data", "inference_throughput", gi[gb], "images_per_s", "values"]],
                               f"batch {gb}", {"batch_size": gb}, 1.0, "img/s"),
                          Side(c, "performance_analysis",
                               [["data", "inference_throughput", ci[cb], "images_per_s", "values"]],
                               f"batch {cb}", {"batch_size": cb}, 1.0, "img/s"),
                          True, headline=True, skipped=skipped)
        if e:
            out.append(e)
