"""Comparison records from the records of a GPU run and a CPU run: pure (records in, dicts out),
nothing measured, nothing invented. Every speedup is ``common.measure.stats.ratio`` of the two
runs' raw ``values`` (median ratio with a 95% bootstrap interval) and names the kind of comparison
(like-for-like: the same configuration on both devices; best-vs-best: each device's best), the two
configurations, the settings in which they differ, and where in which file its values come from.

The parts: ``text`` (words and numbers), ``speedups`` (entries; each section's part in
``sections/``), ``amdahl`` (pipeline), ``utilization``, ``efficiency`` (energy, memory, cost,
radar), ``verdicts``; this module puts them together into the comparison's records."""

from __future__ import annotations

import datetime as _dt
import platform
from typing import Any

from common.comparison import BEST_VS_BEST, LIKE_FOR_LIKE
from common.comparison.amdahl import pipeline_analysis
from common.comparison.efficiency import efficiency
from common.comparison.load import Inputs
from common.comparison.speedups import all_speedups, section_reason
from common.comparison.text import machine
from common.comparison.utilization import utilization
from common.comparison.verdicts import verdicts
from common.measure.stats import ratio

NO_SCALING = "single-GPU run; no scaling data"


def scalability(inputs: Inputs) -> dict[str, Any]:
    """GPU scaling from the GPU tree's scaling record (or its performance record's older 'scaling' list), the
    CPU's gloo-process scaling from the CPU tree's scaling record, CPU thread scaling from its performance record."""
    gs, cs = inputs.gpu.ok("scaling"), inputs.cpu.ok("scaling")
    gp, cp = inputs.gpu.ok("performance_analysis"), inputs.cpu.ok("performance_analysis")
    out: dict[str, Any] = {"gpu_count": (inputs.gpu.environment.get("gpu") or {}).get("count")}
    rows = (gs.data.get("scaling") if gs else None) or (gp.data.get("scaling") if gp else None) or []
    extra = {r["workers"]: r for r in gs.data.get("rows", [])} if gs else {}
    if gs and not gs.data.get("available"):
        out.update(available=False, rows=[], reason=gs.data.get("reason") or NO_SCALING)
    elif len(rows) >= 1:
        base = next((r for r in rows if r.get("gpus") == 1), rows[0])
        table = []
        for r in sorted(rows, key=lambda r: r["gpus"]):
            sp = ratio(r["images_per_s"]["values"], base["images_per_s"]["values"])
            x = extra.get(r["gpus"], {})
            table.append({"gpus": r["gpus"], "images_per_s": {k: r["images_per_s"][k] for k in ("median", "ci95", "n")},
                          "speedup_vs_1": sp.value, "ci95": list(sp.ci95),
                          "efficiency": sp.value * base["gpus"] / r["gpus"],
                          "strong_efficiency": (x.get("strong_efficiency") or {}).get("value"),
                          "time_to_target_s": x.get("time_to_target_s"), "test_accuracy": x.get("test_accuracy")})
        out.update(available=True, rows=table, reason=None, baseline_gpus=base["gpus"])
    else:
        out.update(available=False, rows=[], reason=NO_SCALING)
    out["cpu_processes"] = None if not cs else {
        "available": cs.data.get("available"), "reason": cs.data.get("reason"),
        "rows": [{"processes": r["workers"], "images_per_s": r["images_per_s"]["median"],
                  "weak_efficiency": r["weak_efficiency"]["value"], "time_to_target_s": r["time_to_target_s"]}
                 for r in cs.data.get("rows", [])]}
    ts = cp.data.get("thread_scaling") if cp else None
    if ts:
        out["cpu_threads"] = {"physical_cores": ts.get("physical_cores"), "workload": ts.get("workload"),
                              "rows": [{"threads": r["threads"], "images_per_s": r["images_per_s"]["median"],
                                        "ci95": r["images_per_s"]["ci95"], "speedup_vs_1": r.get("speedup_vs_1"),
                                        "parallel_efficiency": r.get("parallel_efficiency")} for r in ts["rows"]]}
    else:
        out["cpu_threads"] = None
    return out


def comparison_environment(inputs: Inputs, settings: dict[str, Any] | None = None) -> dict[str, Any]:
    """Both runs' environments and the comparison's own (with the constants it ran with)."""
    from common.measure.environment import git_commit

    return {
        "gpu_run": inputs.gpu.environment, "cpu_run": inputs.cpu.environment,
        "comparison": {"time_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                       "hostname": platform.node(), "python": platform.python_version(), "git": git_commit(),
                       "config": dict(settings or {})},
    }


def compute_all(inputs: Inputs, prices: dict[str, float | None]) -> dict[str, dict[str, Any]]:
    """All comparison records' data, by record kind."""
    speedups, skipped = all_speedups(inputs)
    scal = scalability(inputs)
    pipe = pipeline_analysis(inputs, speedups)
    util = utilization(inputs)
    eff = efficiency(inputs, speedups, prices)
    machines = {"gpu": machine(inputs.gpu.environment, "cuda"), "cpu": machine(inputs.cpu.environment, "cpu")}
    groups = ("augmentation", "augmentation_host_cpu")
    aug = {"speedups": [e for e in speedups if e["group"] in groups],
           "quality": augmentation_quality(inputs),
           "available": any(e["group"] in groups for e in speedups),
           "reason": section_reason(inputs, "augmentation_analysis")}
    perf = {
        "speedups": speedups, "skipped": skipped, "scalability": scal, "machines": machines,
        "kinds": {LIKE_FOR_LIKE: "the same configuration on both devices (settings that differ are listed)",
                  BEST_VS_BEST: "each device's best configuration"},
        "method": "speedup = median(GPU)/median(CPU) for throughputs and median(CPU)/median(GPU) for times, "
                  "from the raw values of both records; interval: the window range, from the least to the most "
                  "favourable pairing of the two runs' timed windows (common.measure.stats.ratio): the windows of "
                  "one run are not independent repeats, so no confidence interval is claimed. > 1 means the GPU "
                  "is better.",
        "training_overview": training_overview(inputs),
        "latency": latency_overview(inputs),
    }
    pipe["speedups"] = [e for e in speedups if e["group"] in ("pipeline", "pipeline_stage")]
    summary = {
        "machines": machines, "notes": list(inputs.notes),
        "inputs": {d: {"root": str(run.root), "records": {k: {"file": str(run.paths[k]), "created": r.created,
                                                              "status": r.status, "schema_version": r.schema_version}
                                                          for k, r in run.records.items()}}
                   for d, run in (("gpu", inputs.gpu), ("cpu", inputs.cpu))},
        "verdicts": verdicts(speedups, pipe, eff, util, scal),
        "scalability": {"available": scal["available"], "reason": scal["reason"]},
        "headline_speedups": [e for e in speedups if e["headline"]],
        "counts": {LIKE_FOR_LIKE: sum(e["kind"] == LIKE_FOR_LIKE for e in speedups),
                   BEST_VS_BEST: sum(e["kind"] == BEST_VS_BEST for e in speedups)},
    }
    return {"comparison_performance": perf, "comparison_utilization": util, "comparison_augmentation": aug,
            "comparison_pipeline": pipe, "comparison_efficiency": eff, "comparison_summary": summary}


def training_overview(inputs: Inputs) -> dict[str, Any]:
    """Throughputs of the dashboard's groups for both devices (median and interval)."""
    out: dict[str, Any] = {}
    for label, run in (("gpu", inputs.gpu), ("cpu", inputs.cpu)):
        w, p = run.ok("winning_solution"), run.ok("pipeline_deep_dive")
        rows = []
        if w:
            r0 = w.data["rungs"][0]
            rw = w.data["rungs"][w.data["summary"]["winner_index"]]
            rows.append({"group": "training: tutorial recipe", "label": r0["label"], **_mc(r0["images_per_s"])})
            if p and "device_resident" in p.data["configs"]:
                c = p.data["configs"]["device_resident"]
                rows.append({"group": "training: device-resident", "label": c.get("label"),
                             **_mc(c["end_to_end_images_per_s"])})
            rows.append({"group": "training: winner", "label": f"{rw['name']}: {rw['label']}",
                         **_mc(rw["images_per_s"])})
        pa = run.ok("performance_analysis")
        if pa:
            best = pa.data.get("inference_best_batch")
            row = next((r for r in pa.data["inference_throughput"]
                        if r["batch_size"] == best and r.get("images_per_s")), None)
            if row:
                rows.append({"group": "inference: best batch", "label": f"batch {best}", **_mc(row["images_per_s"])})
        a = run.ok("augmentation_analysis")
        if a:
            per, bat = a.data["cpu_per_sample"]["chain_images_per_s"], a.data["device_batched"]["chain_images_per_s"]
            best = bat if bat["median"] >= per["median"] else per
            rows.append({"group": "augmentation chain: best way",
                         "label": "batched" if best is bat else "per sample (MONAI)", **_mc(best)})
        out[label] = rows
    return out


def latency_overview(inputs: Inputs) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for label, run in (("gpu", inputs.gpu), ("cpu", inputs.cpu)):
        pa = run.ok("performance_analysis")
        out[label] = {prec: {"median_ms": r["summary"]["median"], "p50_ms": r.get("p50_ms"),
                             "p95_ms": r.get("p95_ms"), "p99_ms": r.get("p99_ms"),
                             "median_ci95": r["summary"]["ci95"], "calls": r.get("calls")}
                      for prec, r in (pa.data["inference_latency"].items() if pa else [])}
    return out


def _mc(s: dict) -> dict[str, Any]:
    return {"median": s["median"], "ci95": list(s["ci95"]), "unit": s["unit"], "n": s["n"]}


def augmentation_quality(inputs: Inputs) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for label, run in (("gpu", inputs.gpu), ("cpu", inputs.cpu)):
        a = run.ok("augmentation_analysis")
        if not a:
            out[label] = None
            continue
        q = a.data.get("quality") or {}
        out[label] = {"per_transform": q.get("per_transform") or {}, "identity_checks": q.get("identity_checks") or {},
                      "n_images": q.get("n_images"), "tolerance_vs_monai": a.data.get("tolerance_vs_monai"),
                      "device": (a.data.get("device_batched") or {}).get("device"),
                      "per_sample_us": {t: s["median"] for t, s in
                                        a.data["cpu_per_sample"]["per_transform_us"].items()},
                      "batched_us": {t: s["median"] for t, s in a.data["device_batched"]["per_transform_us"].items()}}
    tol = [x["tolerance_vs_monai"] for x in out.values() if x and x.get("tolerance_vs_monai")]
    verdicts = []
    for label, x in out.items():
        if not x:
            continue
        chain = (x["per_transform"] or {}).get("chain") or {}
        if chain.get("vs_monai_max_abs") is not None and tol:
            ok = chain["vs_monai_max_abs"] <= tol[0]
            ssim = chain.get("ssim_vs_input")
            verdicts.append(f"{label.upper()}: the batched chain differs from MONAI's per-sample output by at most "
                            f"{chain['vs_monai_max_abs']:.1e} ({'within' if ok else 'OUTSIDE'} the tolerance "
                            f"{tol[0]:.0e})" + (f"; SSIM of the augmented image vs its input {ssim:.3f}"
                                                if ssim is not None else "") + ".")
    out["verdicts"] = verdicts
    return out
