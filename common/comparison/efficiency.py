"""Efficiency: energy per image and performance per watt of each device's rungs, peak memory,
gains (GPU over CPU), cost per million images from given prices, and the radar's axes."""

from __future__ import annotations

import math
from typing import Any

from common.comparison import BEST_VS_BEST, LIKE_FOR_LIKE
from common.comparison.load import Inputs, Run
from common.comparison.speedups import RECIPE_ID, WINNER_ID, rung_id
from common.measure.stats import Summary

RADAR_DECADES = 3  # the radar's radius spans this many decades below the better device


def _rung_efficiency(run: Run, rung: dict, index: int) -> dict[str, Any]:
    e2e = (rung.get("end_to_end") or {}).get("energy") or {}
    ips = rung["images_per_s"]
    if run.device == "cuda":
        jpi = rung.get("gpu_j_per_image")
        counter = "NVML total-energy counter (GPU board only)"
        power = rung.get("gpu_power_w")
        power_src = "NVML power samples, mean over the timed windows (GPU board)"
        if power is None and e2e.get("gpu_avg_power_w"):
            power, power_src = e2e["gpu_avg_power_w"], "NVML energy counter / window time"
        reason = rung.get("energy_reason") or e2e.get("gpu_energy_reason")
        host_jpi = rung.get("cpu_j_per_image")
    else:
        jpi = rung.get("cpu_j_per_image")
        counter = "RAPL package + DRAM counters"
        power = (e2e["cpu_energy_j"] / e2e["duration_s"]) if e2e.get("cpu_energy_j") and e2e.get("duration_s") \
            else None
        power_src = "RAPL energy / window time"
        reason = rung.get("energy_reason") or e2e.get("cpu_energy_reason")
        host_jpi = None
    out = {
        "id": rung_id(rung, index), "name": rung["name"], "label": rung.get("label"), "images_per_s": ips["median"],
        "images_per_s_ci95": ips["ci95"], "j_per_image": jpi, "images_per_j": 1.0 / jpi if jpi else None,
        "energy_counter": counter, "energy_reason": None if jpi else (reason or "no energy counter reading"),
        "power_w": power, "power_source": power_src if power else None,
        "power_reason": None if power else (reason or "no power reading"),
        "perf_per_watt": ips["median"] / power if power else None,
        "peak_memory_mib": rung.get("peak_memory_mib"), "host_cpu_j_per_image": host_jpi,
    }
    return out


def _cost(price: float | None, ips: dict | None, device: str) -> dict[str, Any]:
    flag = "--gpu-price-per-hour" if device == "cuda" else "--cpu-price-per-hour"
    const = "GPU_PRICE_PER_HOUR" if device == "cuda" else "CPU_PRICE_PER_HOUR"
    if price is None:
        return {"price_per_hour": None, "cost_per_million_images": None, "ci95": None,
                "reason": f"no price per hour given (config.{const} or {flag})"}
    if not ips:
        return {"price_per_hour": price, "cost_per_million_images": None, "ci95": None,
                "reason": "no throughput measured"}
    vals = [price / (v * 3600.0) * 1e6 for v in ips["values"] if v > 0]
    s = Summary.from_values(vals, "per million images")
    return {"price_per_hour": price, "cost_per_million_images": s.median, "ci95": list(s.ci95), "reason": None,
            "formula": "price_per_hour / (images_per_s * 3600) * 1e6, per timed window"}


def efficiency(inputs: Inputs, speedups: list[dict], prices: dict[str, float | None]) -> dict[str, Any]:
    g, c = inputs.gpu, inputs.cpu
    out: dict[str, Any] = {}
    per_dev: dict[str, Any] = {}
    for label, run in (("gpu", g), ("cpu", c)):
        w = run.ok("winning_solution")
        if not w:
            per_dev[label] = {"available": False, "rungs": [], "winner": None, "recipe": None}
            continue
        rungs = [_rung_efficiency(run, r, i) for i, r in enumerate(w.data["rungs"])]
        wi = w.data["summary"]["winner_index"]
        per_dev[label] = {"available": True, "rungs": rungs, "winner": rungs[wi], "recipe": rungs[0],
                          "winner_index": wi}
    out["energy"] = per_dev
    # memory
    mem: dict[str, Any] = {}
    for label, run in (("gpu", g), ("cpu", c)):
        p = run.ok("performance_analysis")
        env = run.environment
        pts = []
        for row in (p.data["batch_sweep"] if p else []):
            if row.get("peak_memory_mib") is not None and not row.get("error"):
                pts.append({"batch_size": row["batch_size"], "peak_memory_mib": row["peak_memory_mib"],
                            "images_per_gib": row.get("images_per_gib"), "memory_kind": row.get("memory_kind")})
        devs = (env.get("gpu") or {}).get("devices") or []
        mem[label] = {
            "batch_sweep": pts, "memory_kind": pts[0]["memory_kind"] if pts else None,
            "device_memory_mib": devs[0].get("memory_mib") if label == "gpu" and devs else None,
            "ram_gib": env.get("ram_gib"),
            "reason": None if pts else "no peak memory recorded in the batch sweep",
        }
    out["memory"] = mem
    # gains (GPU / CPU; > 1 favours the GPU)
    gains = []
    for cfg in ("winner", "recipe"):
        ge, ce = (per_dev["gpu"].get(cfg) or {}), (per_dev["cpu"].get(cfg) or {})
        for metric, key, unit in (("images per joule", "images_per_j", "img/J"),
                                  ("performance per watt", "perf_per_watt", "img/s per W")):
            gv, cv = ge.get(key), ce.get(key)
            reasons = [f"{d}: {r}" for d, r in (("GPU", ge.get("energy_reason" if key == "images_per_j" else
                                                                   "power_reason")),
                                                ("CPU", ce.get("energy_reason" if key == "images_per_j" else
                                                               "power_reason"))) if r]
            gains.append({"metric": f"{metric}, {'winning configuration' if cfg == 'winner' else 'tutorial recipe'}",
                          "kind": BEST_VS_BEST if cfg == "winner" else LIKE_FOR_LIKE, "unit": unit,
                          "gpu": gv, "cpu": cv, "gain": gv / cv if gv and cv else None,
                          "gpu_config": ge.get("label"), "cpu_config": ce.get("label"),
                          "reason": None if gv and cv else "; ".join(reasons) or "not measured",
                          "interval": None, "interval_reason": "energy is one counter delta over all timed windows"})
    # cost
    gw, cw = g.ok("winning_solution"), c.ok("winning_solution")
    cost: dict[str, Any] = {"gpu_price_per_hour": prices.get("gpu"), "cpu_price_per_hour": prices.get("cpu"),
                            "configs": {}}
    for cfg in ("winner", "recipe"):
        row = {}
        for label, w, run in (("gpu", gw, g), ("cpu", cw, c)):
            rung = (w.data["rungs"][w.data["summary"]["winner_index"] if cfg == "winner" else 0]) if w else None
            row[label] = dict(_cost(prices.get(label), rung["images_per_s"] if rung else None, run.device),
                              config=rung.get("label") if rung else None,
                              images_per_s=rung["images_per_s"]["median"] if rung else None)
        gcost, ccost = row["gpu"]["cost_per_million_images"], row["cpu"]["cost_per_million_images"]
        row["cpu_over_gpu"] = ccost / gcost if gcost and ccost else None
        row["kind"] = BEST_VS_BEST if cfg == "winner" else LIKE_FOR_LIKE
        cost["configs"][cfg] = row
        if cfg == "winner":
            gains.append({"metric": "cost per million images (CPU cost / GPU cost), winning configuration",
                          "kind": BEST_VS_BEST, "unit": "x", "gpu": gcost, "cpu": ccost, "gain": row["cpu_over_gpu"],
                          "gpu_config": row["gpu"]["config"], "cpu_config": row["cpu"]["config"],
                          "reason": None if row["cpu_over_gpu"] else "; ".join(
                              r for r in (row["gpu"]["reason"], row["cpu"]["reason"]) if r),
                          "interval": None, "interval_reason": "prices carry no interval"})
    out["gains"] = gains
    out["cost"] = cost
    out["speedups_brief"] = [{k: e[k] for k in ("id", "group", "metric", "short", "kind", "speedup", "ci95",
                                                    "headline")}
                             for e in speedups]
    out["radar"] = radar(inputs, speedups, per_dev)
    return out


def radar(inputs: Inputs, speedups: list[dict], per_dev: dict) -> dict[str, Any]:
    by = {e["id"]: e for e in speedups}
    axes, missing = [], []

    def add(name: str, unit: str, gv: float | None, cv: float | None, higher: bool, reason: str | None = None):
        if gv is None or cv is None or gv <= 0 or cv <= 0:
            missing.append({"name": name, "reason": reason or "not measured in both runs"})
            return
        best = max(gv, cv) if higher else min(gv, cv)
        gn, cn = (gv / best, cv / best) if higher else (best / gv, best / cv)
        axes.append({"name": name, "unit": unit, "gpu": gv, "cpu": cv, "higher_is_better": higher,
                     "gpu_norm": gn, "cpu_norm": cn,
                     "gpu_radius": max(0.0, 1 + math.log10(gn) / RADAR_DECADES),
                     "cpu_radius": max(0.0, 1 + math.log10(cn) / RADAR_DECADES)})

    for eid, name, unit, higher in (
            (WINNER_ID, "training, winner", "img/s", True),
            (RECIPE_ID, "training, tutorial recipe", "img/s", True),
            ("inference.throughput.best_batch", "inference, best batch", "img/s", True),
            ("inference.latency_batch1.best", "batch-1 latency", "ms", False),
            ("augmentation.chain.best", "augmentation chain", "img/s", True),
            ("volume3d.unet_train_step", "3D UNet step", "ms", False)):
        e = by.get(eid)
        add(name, unit, e["gpu"]["median"] if e else None, e["cpu"]["median"] if e else None, higher)
    gw, cw = per_dev["gpu"].get("winner") or {}, per_dev["cpu"].get("winner") or {}
    add("images per joule, winner", "img/J", gw.get("images_per_j"), cw.get("images_per_j"), True,
        "; ".join(f"{d}: {x.get('energy_reason')}" for d, x in (("GPU", gw), ("CPU", cw)) if x.get("energy_reason")))
    gpe = (inputs.gpu.ok("winning_solution").data["rungs"][per_dev["gpu"]["winner_index"]].get("pipeline_efficiency")
           if per_dev["gpu"].get("available") else None)
    cpe = (inputs.cpu.ok("winning_solution").data["rungs"][per_dev["cpu"]["winner_index"]].get("pipeline_efficiency")
           if per_dev["cpu"].get("available") else None)
    add("pipeline efficiency, winner", "end-to-end / model-only", gpe, cpe, True)
    return {"axes": axes, "missing": missing, "decades": RADAR_DECADES,
            "normalization": f"each axis: the value divided by the better device's (1 = better device; for times and "
                             f"latencies, best / value). Radius = 1 + log10(normalized) / {RADAR_DECADES}: the rim is "
                             f"the better device, the centre 1/{10 ** RADAR_DECADES:,} of it."}
