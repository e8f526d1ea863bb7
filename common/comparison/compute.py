"""Comparison records from the records of a GPU run and a CPU run: pure (records in, dicts out),
nothing measured, nothing invented. Every speedup is ``common.measure.stats.ratio`` of the two
runs' raw ``values`` (median ratio with a 95% bootstrap interval) and names the kind of comparison
(like-for-like: the same configuration on both devices; best-vs-best: each device's best), the two
configurations, the settings in which they differ, and where in which file its values come from."""

from __future__ import annotations

import datetime as _dt
import math
import platform
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from common.comparison import BEST_VS_BEST, LIKE_FOR_LIKE
from common.comparison.load import Inputs, Run
from common.measure.stats import Summary, ratio

MODEL_STAGES = ("forward", "backward", "optimizer")
DATA_STAGES = ("io_decode", "preprocess", "augment", "collate", "data_wait", "h2d", "sample")
STAGE_MEANING = {
    "data_wait": "waiting for the DataLoader workers that decode, preprocess and augment the images",
    "io_decode": "image decoding", "preprocess": "preprocessing", "augment": "augmentation",
    "h2d": "the host-to-device copy", "forward": "the forward pass", "backward": "the backward pass",
    "optimizer": "the optimizer step", "collate": "batch collation", "sample": "patch sampling",
}
CONFIG_TITLES = {"tutorial_recipe": "MONAI tutorial recipe", "device_resident": "device-resident pipeline"}
NO_SCALING = "single-GPU run; no scaling data"
RADAR_DECADES = 3  # the radar's radius spans this many decades below the better device


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", str(text).lower()).strip("_")


def fmt_x(v: float | None) -> str:
    if v is None or not math.isfinite(v):
        return "n/a"
    if v >= 100:
        return f"{v:.0f}"
    if v >= 10:
        return f"{v:.1f}" if v < 20 else f"{v:.0f}"
    if v >= 1:
        return f"{v:.2f}" if v < 2 else f"{v:.1f}"
    return f"{v:.2f}"


def fmt_num(v: float | None, unit: str = "") -> str:
    if v is None or not math.isfinite(v):
        return "n/a"
    a = abs(v)
    s = (f"{v / 1e6:.2f}M" if a >= 1e6 else f"{v / 1e3:.1f}k" if a >= 1e4 else f"{v:.0f}" if a >= 100
         else f"{v:.3g}")
    return f"{s} {unit}".strip()


def speedup_phrase(e: dict[str, Any], what: str = "faster") -> str:
    """'37x faster on the GPU (35-39x)' / '2.1x slower on the GPU (...)' / 'no clear difference (...)'."""
    s, (lo, hi) = e["speedup"], e["ci95"]
    if lo <= 1.0 <= hi:
        return f"no clear difference between the devices ({fmt_x(s)}x, 95% interval {fmt_x(lo)}-{fmt_x(hi)}x)"
    if s >= 1:
        return f"{fmt_x(s)}x {what} on the GPU ({fmt_x(lo)}-{fmt_x(hi)}x)"
    slower = {"faster": "slower", "higher": "lower", "lower": "higher"}.get(what, "worse")
    return f"{fmt_x(1 / s)}x {slower} on the GPU ({fmt_x(1 / hi)}-{fmt_x(1 / lo)}x)"


def levers_diff(a: dict | None, b: dict | None) -> dict[str, dict[str, Any]]:
    if not a or not b:
        return {}
    return {k: {"gpu": a.get(k), "cpu": b.get(k)} for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)}


def diff_text(diff: dict[str, dict[str, Any]]) -> str:
    return ", ".join(f"{k} {v['gpu']} vs {v['cpu']}" for k, v in diff.items())


def machine(env: dict[str, Any], device: str) -> dict[str, Any]:
    gpu = env.get("gpu") or {}
    devs = gpu.get("devices") or []
    git = env.get("git") or {}
    ds = env.get("dataset") or {}
    cfg = env.get("config") or {}
    out = {
        "device": device, "hostname": env.get("hostname"), "cpu_model": env.get("cpu_model"),
        "physical_cores": env.get("physical_cores"), "threads_used": env.get("threads_used"),
        "gpu_name": devs[0]["name"] if devs else None, "gpu_count": gpu.get("count"),
        "gpu_memory_mib": devs[0].get("memory_mib") if devs else None, "driver": gpu.get("driver"),
        "power_limit_w": gpu.get("power_limit_w"), "time_utc": env.get("time_utc"), "torch": env.get("torch"),
        "monai": env.get("monai"), "git_commit": git.get("commit"), "git_dirty": git.get("dirty"),
        "quick": bool(cfg.get("quick")), "batch_size": cfg.get("batch_size"), "synthetic": bool(ds.get("synthetic")),
        "dataset_source": ds.get("source"), "dataset_images": ds.get("total"),
    }
    if device == "cuda":
        out["label"] = f"{out['gpu_name'] or 'GPU'} (host {out['hostname']}, {out['cpu_model']})"
        out["short"] = out["gpu_name"] or "GPU"
    else:
        out["label"] = f"{out['cpu_model']}, {out['threads_used']} threads (host {out['hostname']})"
        out["short"] = f"{out['cpu_model']}, {out['threads_used']} threads"
    return out


# --- values and speedup entries -------------------------------------------------------------


def _get(obj: Any, path: list) -> Any:
    for p in path:
        obj = obj[p]
    return obj


@dataclass
class Side:
    """Where one side's values come from: a record of a run, paths inside it (summed elementwise)
    and a scale (e.g. 1e3 / batch size for milliseconds per image)."""

    run: Run
    kind: str
    paths: list[list]
    config: str
    levers: dict | None = None
    scale: float = 1.0
    unit: str = ""

    def values(self) -> list[float]:
        root = {"data": self.run.records[self.kind].data}
        total = None
        for path in self.paths:
            v = _get(root, path)
            arr = np.atleast_1d(np.asarray(v, dtype=np.float64))
            total = arr if total is None else total + arr
        return (total * self.scale).tolist()

    def describe(self, values: list[float]) -> dict[str, Any]:
        s = Summary.from_values(values, self.unit)
        return {"config": self.config, "levers": self.levers, "file": self.run.file(self.kind),
                "paths": self.paths, "scale": self.scale, "unit": self.unit, "median": s.median,
                "ci95": list(s.ci95), "n": s.n}


def short_label(eid: str, metric: str) -> str:
    """A figure label of a speedup entry (its metric is the full description)."""
    p = eid.split(".")
    tail = metric.split(": ")[-1]
    head = metric.split(",")[0]
    cfg = {"tutorial_recipe": "recipe", "device_resident": "device-resident"}.get(p[1], p[1])
    if p[0] == "training":
        if p[1] == "winner":
            return "training e2e: each device's winner"
        return f"training {'e2e' if p[-1] == 'end_to_end' else 'model-only'}: {tail}"
    if p[0] == "pipeline":
        what = {"end_to_end": "e2e throughput", "model_only": "model-only throughput", "step_time": "step time/image",
                "model_stages": "model stages", "data_stages": "data stages"}.get(p[2], p[-1])
        return f"{cfg}: {what}"
    if p[0] == "performance":
        return f"training, {'batch ' + p[2] if p[1] == 'batch_sweep' else tail.rstrip(')')}"
    if p[0] == "inference":
        if p[1] == "latency_batch1":
            return f"latency b1, {'best precision each' if p[2] == 'best' else p[2]}"
        return "inference, best batch each" if p[2] == "best_batch" else f"inference, batch {p[2][6:]}"
    if p[0] == "augmentation":
        way = {"device_batched": "batched", "cpu_per_sample": "MONAI, host CPUs"}.get(p[1])
        if p[1] == "chain":
            return "augmentation chain, best way each"
        return f"{'augmentation chain' if p[2] == 'chain' else head} ({way})"
    if p[0] == "volume3d":
        if p[1] == "augmentation":
            return f"{head} ({'batched' if p[2].startswith('device') else 'MONAI, host CPUs'})"
        return {"unet_train_step": "3D UNet train step", "sliding_window": "3D sliding window"}.get(
            p[1], f"3D UNet {p[-1]}")
    return metric


def speedup_entry(eid: str, group: str, metric: str, kind: str, gpu: Side, cpu: Side, higher_is_better: bool,
                  headline: bool = False, note: str | None = None, skipped: list | None = None) -> dict | None:
    """One speedup: > 1 means the GPU is better. Throughputs: ratio(gpu, cpu); times: ratio(cpu, gpu)."""
    try:
        gv, cv = gpu.values(), cpu.values()
        num, den = (gv, cv) if higher_is_better else (cv, gv)
        if not num or not den or any(not math.isfinite(x) for x in num + den):
            raise ValueError("no finite values")
        r = ratio(num, den)
        sides = {"gpu": gpu.describe(gv), "cpu": cpu.describe(cv)}
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        if skipped is not None:
            skipped.append({"id": eid, "metric": metric, "reason": str(exc) or type(exc).__name__})
        return None
    entry = {
        "id": eid, "group": group, "metric": metric, "short": short_label(eid, metric), "kind": kind,
        "speedup": r.value, "ci95": list(r.ci95),
        "unit": "x", "numerator": "gpu" if higher_is_better else "cpu",
        "quantity": "higher is better" if higher_is_better else "lower is better",
        "gpu": sides["gpu"], "cpu": sides["cpu"], "differences": levers_diff(gpu.levers, cpu.levers),
        "headline": headline, "note": note,
    }
    if min(sides["gpu"]["n"], sides["cpu"]["n"]) < 2:
        entry["note"] = ((note + "; ") if note else "") + "one measurement on a side: its interval is degenerate"
    lo, hi = r.ci95
    entry["verdict"] = "gpu" if lo > 1 else "cpu" if hi < 1 else "no clear difference"
    return entry


def _training(g: Run, c: Run, out: list, skipped: list) -> None:
    gw, cw = g.ok("winning_solution"), c.ok("winning_solution")
    if not (gw and cw):
        return
    g_rungs = {r["name"]: i for i, r in enumerate(gw.data["rungs"])}
    for ci, rung in enumerate(cw.data["rungs"]):
        gi = g_rungs.get(rung["name"])
        if gi is None:
            continue
        gr = gw.data["rungs"][gi]
        for part, metric, head in (("images_per_s", "end to end", gi == 0 and ci == 0),
                                   ("model_only_images_per_s", "model only (batch fixed on the device)", False)):
            e = speedup_entry(
                f"training.ladder.{slug(rung['name'])}.{'end_to_end' if part == 'images_per_s' else 'model_only'}",
                "training", f"training throughput, {metric}: {rung['name']}", LIKE_FOR_LIKE,
                Side(g, "winning_solution", [["data", "rungs", gi, part, "values"]], gr["label"], gr["levers"],
                     unit="img/s"),
                Side(c, "winning_solution", [["data", "rungs", ci, part, "values"]], rung["label"], rung["levers"],
                     unit="img/s"),
                True, headline=head, skipped=skipped)
            if e:
                out.append(e)
    gi, ci = gw.data["summary"]["winner_index"], cw.data["summary"]["winner_index"]
    gr, cr = gw.data["rungs"][gi], cw.data["rungs"][ci]
    e = speedup_entry(
        "training.winner.end_to_end", "training", "training throughput, end to end: each device's winning "
        "configuration (accuracy-gated ladder)", BEST_VS_BEST,
        Side(g, "winning_solution", [["data", "rungs", gi, "images_per_s", "values"]], f"{gr['name']}: {gr['label']}",
             gr["levers"], unit="img/s"),
        Side(c, "winning_solution", [["data", "rungs", ci, "images_per_s", "values"]], f"{cr['name']}: {cr['label']}",
             cr["levers"], unit="img/s"),
        True, headline=True, skipped=skipped)
    if e:
        out.append(e)


def _pipeline(g: Run, c: Run, out: list, skipped: list) -> None:
    gp, cp = g.ok("pipeline_deep_dive"), c.ok("pipeline_deep_dive")
    if not (gp and cp):
        return
    for key, cc in cp.data["configs"].items():
        gc = gp.data["configs"].get(key)
        if gc is None:
            continue
        title = CONFIG_TITLES.get(key, key)
        bg, bc = gc["levers"].get("batch_size") or 1, cc["levers"].get("batch_size") or 1
        base = ["data", "configs", key]

        def side(run, cfg, paths, scale=1.0, unit="img/s", key=key):
            return Side(run, "pipeline_deep_dive", paths, cfg.get("label", key), cfg["levers"], scale, unit)

        for part, metric, head in (("end_to_end_images_per_s", "training throughput, end to end",
                                    key == "device_resident"),
                                   ("model_only_images_per_s", "training throughput, model only", False)):
            e = speedup_entry(f"pipeline.{key}.{part.replace('_images_per_s', '')}", "pipeline",
                              f"{metric}: {title}", LIKE_FOR_LIKE, side(g, gc, [base + [part, "values"]]),
                              side(c, cc, [base + [part, "values"]]), True, headline=head, skipped=skipped)
            if e:
                out.append(e)
        e = speedup_entry(f"pipeline.{key}.step_time", "pipeline", f"training step time per image: {title}",
                          LIKE_FOR_LIKE, side(g, gc, [base + ["step_wall_s", "values"]], 1e3 / bg, "ms/image"),
                          side(c, cc, [base + ["step_wall_s", "values"]], 1e3 / bc, "ms/image"), False,
                          note="one synchronized step, per image", skipped=skipped)
        if e:
            out.append(e)
        common = [s for s in cc["stages_s"] if s in gc["stages_s"]]
        for stage in common:
            e = speedup_entry(f"pipeline.{key}.stage.{stage}", "pipeline_stage", f"stage {stage} per image: {title}",
                              LIKE_FOR_LIKE, side(g, gc, [base + ["stages_s", stage, "values"]], 1e3 / bg, "ms/image"),
                              side(c, cc, [base + ["stages_s", stage, "values"]], 1e3 / bc, "ms/image"), False,
                              skipped=skipped)
            if e:
                out.append(e)
        for group, names in (("model_stages", MODEL_STAGES), ("data_stages", DATA_STAGES)):
            gs = [s for s in gc["stages_s"] if s in names]
            cs = [s for s in cc["stages_s"] if s in names]
            if not gs or not cs:
                continue
            e = speedup_entry(f"pipeline.{key}.{group}", "pipeline",
                              f"{group.replace('_', ' ')} ({', '.join(sorted(set(gs) | set(cs)))}) per image: {title}",
                              LIKE_FOR_LIKE, side(g, gc, [base + ["stages_s", s, "values"] for s in gs], 1e3 / bg,
                                                  "ms/image"),
                              side(c, cc, [base + ["stages_s", s, "values"] for s in cs], 1e3 / bc, "ms/image"),
                              False, note="per-step sum of the stages" + (
                                  "" if gs == cs else f" (GPU: {', '.join(gs)}; CPU: {', '.join(cs)})"),
                              skipped=skipped)
            if e:
                out.append(e)


def _rows_by(rows: list[dict], key: str) -> dict[Any, int]:
    return {r[key]: i for i, r in enumerate(rows) if not r.get("error") and r.get("images_per_s")}


def _performance(g: Run, c: Run, out: list, skipped: list) -> None:
    gp, cp = g.ok("performance_analysis"), c.ok("performance_analysis")
    if not (gp and cp):
        return
    for section, key, label in (("batch_sweep", "batch_size", "batch"), ("precision", "label", "precision")):
        gi, ci = _rows_by(gp.data[section], key), _rows_by(cp.data[section], key)
        for k, i in ci.items():
            if k not in gi:
                continue
            grow, crow = gp.data[section][gi[k]], cp.data[section][i]
            e = speedup_entry(f"performance.{section}.{slug(k)}", "training",
                              f"training throughput, end to end ({label} sweep: {k})", LIKE_FOR_LIKE,
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
    gi, ci = _rows_by(gt, "batch_size"), _rows_by(ct, "batch_size")
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


def _augmentation(g: Run, c: Run, out: list, skipped: list) -> None:
    ga, ca = g.ok("augmentation_analysis"), c.ok("augmentation_analysis")
    if not (ga and ca):
        return
    gdb, cdb = ga.data["device_batched"], ca.data["device_batched"]
    for part, how, note in (
            ("device_batched", "batched on the device", None),
            ("cpu_per_sample", "MONAI per sample on one CPU thread of each run's host",
             "both sides run on a CPU core of their host: this compares the hosts' CPUs, not the GPU")):
        gpt, cpt = ga.data[part]["per_transform_us"], ca.data[part]["per_transform_us"]
        cfg_g = f"batch {gdb.get('batch_size')} on {gdb.get('device')}" if part == "device_batched" else "1 thread"
        cfg_c = f"batch {cdb.get('batch_size')} on {cdb.get('device')}" if part == "device_batched" else "1 thread"
        lev_g = {"batch_size": gdb.get("batch_size")} if part == "device_batched" else None
        lev_c = {"batch_size": cdb.get("batch_size")} if part == "device_batched" else None
        grp = "augmentation" if part == "device_batched" else "augmentation_host_cpu"
        for t in cpt:
            if t not in gpt:
                continue
            e = speedup_entry(f"augmentation.{part}.{slug(t)}", grp, f"{t}, time per image ({how})", LIKE_FOR_LIKE,
                              Side(g, "augmentation_analysis", [["data", part, "per_transform_us", t, "values"]], cfg_g,
                                   lev_g, unit="us/image"),
                              Side(c, "augmentation_analysis", [["data", part, "per_transform_us", t, "values"]], cfg_c,
                                   lev_c, unit="us/image"), False, note=note, skipped=skipped)
            if e:
                out.append(e)
        e = speedup_entry(f"augmentation.{part}.chain", grp, f"augmentation chain throughput ({how})", LIKE_FOR_LIKE,
                          Side(g, "augmentation_analysis", [["data", part, "chain_images_per_s", "values"]], cfg_g,
                               lev_g, unit="img/s"),
                          Side(c, "augmentation_analysis", [["data", part, "chain_images_per_s", "values"]], cfg_c,
                               lev_c, unit="img/s"), True, headline=part == "device_batched", note=note,
                          skipped=skipped)
        if e:
            out.append(e)

    def best(data: dict) -> tuple[str, str]:
        per = data["cpu_per_sample"]["chain_images_per_s"]["median"]
        bat = data["device_batched"]["chain_images_per_s"]["median"]
        return ("device_batched", f"batched on {data['device_batched'].get('device')}") if bat >= per \
            else ("cpu_per_sample", "MONAI per sample, 1 CPU thread")

    (gpart, gcfg), (cpart, ccfg) = best(ga.data), best(ca.data)
    e = speedup_entry("augmentation.chain.best", "augmentation", "augmentation chain throughput: each device's "
                      "fastest way (per sample with MONAI or batched)", BEST_VS_BEST,
                      Side(g, "augmentation_analysis", [["data", gpart, "chain_images_per_s", "values"]], gcfg,
                           {"way": gpart}, unit="img/s"),
                      Side(c, "augmentation_analysis", [["data", cpart, "chain_images_per_s", "values"]], ccfg,
                           {"way": cpart}, unit="img/s"), True, headline=True, skipped=skipped)
    if e:
        out.append(e)


def _volume3d(g: Run, c: Run, out: list, skipped: list) -> None:
    gv, cv = g.ok("visualizations"), c.ok("visualizations")
    if not (gv and cv):
        return
    gd, cd = gv.data, cv.data
    lev = {k: gd.get(k) for k in ("precision",)}
    lev_c = {k: cd.get(k) for k in ("precision",)}
    ga, ca = gd.get("augmentation_3d") or {}, cd.get("augmentation_3d") or {}
    for part, how in (("device_batched_ms_per_patch", "batched on the device"),
                      ("cpu_monai_ms_per_patch", "MONAI on each run's host CPU")):
        gp, cp = ga.get(part) or {}, ca.get(part) or {}
        for t in cp:
            if t in gp:
                e = speedup_entry(f"volume3d.augmentation.{slug(part)}.{slug(t)}", "volume3d",
                                  f"3D {t}, time per patch ({how})", LIKE_FOR_LIKE,
                                  Side(g, "visualizations", [["data", "augmentation_3d", part, t, "values"]],
                                       f"patch {ga.get('patch')}", {"patch": ga.get("patch")}, unit="ms/patch"),
                                  Side(c, "visualizations", [["data", "augmentation_3d", part, t, "values"]],
                                       f"patch {ca.get('patch')}", {"patch": ca.get("patch")}, unit="ms/patch"),
                                  False, skipped=skipped,
                                  note=None if part.startswith("device") else "both sides run on their host's CPU")
                if e:
                    out.append(e)
    gt, ct = gd.get("training") or {}, cd.get("training") or {}
    if gt.get("step_s") and ct.get("step_s"):
        lg = dict(lev, batch=gt.get("batch"), patch=gt.get("patch"))
        lc = dict(lev_c, batch=ct.get("batch"), patch=ct.get("patch"))
        e = speedup_entry("volume3d.unet_train_step", "volume3d", "3D UNet training step time", LIKE_FOR_LIKE,
                          Side(g, "visualizations", [["data", "training", "step_s", "values"]],
                               f"{gd.get('precision')} batch {gt.get('batch')} patch {gt.get('patch')}", lg, 1e3, "ms"),
                          Side(c, "visualizations", [["data", "training", "step_s", "values"]],
                               f"{cd.get('precision')} batch {ct.get('batch')} patch {ct.get('patch')}", lc, 1e3, "ms"),
                          False, headline=True, note="each device's analysis precision", skipped=skipped)
        if e:
            out.append(e)
        for stage in ct.get("stage_s") or {}:
            if stage in (gt.get("stage_s") or {}):
                e = speedup_entry(f"volume3d.unet_stage.{stage}", "volume3d", f"3D UNet step, stage {stage}",
                                  LIKE_FOR_LIKE,
                                  Side(g, "visualizations", [["data", "training", "stage_s", stage, "values"]],
                                       f"{gd.get('precision')}", lg, 1e3, "ms"),
                                  Side(c, "visualizations", [["data", "training", "stage_s", stage, "values"]],
                                       f"{cd.get('precision')}", lc, 1e3, "ms"), False, skipped=skipped)
                if e:
                    out.append(e)
    gs, cs = gd.get("sliding_window") or {}, cd.get("sliding_window") or {}
    if gs.get("voxels_per_s") and cs.get("voxels_per_s"):
        e = speedup_entry("volume3d.sliding_window", "volume3d", "3D sliding-window inference throughput",
                          LIKE_FOR_LIKE,
                          Side(g, "visualizations", [["data", "sliding_window", "voxels_per_s"]],
                               f"roi {gs.get('roi')}, {gd.get('precision')}", dict(lev, roi=gs.get("roi")),
                               unit="voxels/s"),
                          Side(c, "visualizations", [["data", "sliding_window", "voxels_per_s"]],
                               f"roi {cs.get('roi')}, {cd.get('precision')}", dict(lev_c, roi=cs.get("roi")),
                               unit="voxels/s"), True, note="one timed call per device", skipped=skipped)
        if e:
            out.append(e)


def section_reason(inputs: Inputs, kind: str) -> str | None:
    """Why a section cannot be compared (a run's record missing or not ok), or None."""
    out = []
    for label, run in (("GPU run", inputs.gpu), ("CPU run", inputs.cpu)):
        rec = run.records.get(kind)
        if rec is None:
            out.append(f"{label}: no {kind} record")
        elif rec.status != "ok":
            why = f" ({rec.reason})" if rec.reason else ""
            out.append(f"{label}: {run.file(kind)} has status {rec.status}{why}")
    return "; ".join(out) or None


def all_speedups(inputs: Inputs) -> tuple[list[dict], list[dict]]:
    out: list[dict] = []
    skipped: list[dict] = []
    for fn in (_training, _pipeline, _performance, _augmentation, _volume3d):
        fn(inputs.gpu, inputs.cpu, out, skipped)
    return out, skipped


# --- scalability ------------------------------------------------------------------------------


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


# --- pipeline (Amdahl) ------------------------------------------------------------------------


def pipeline_analysis(inputs: Inputs, speedups: list[dict]) -> dict[str, Any]:
    gp, cp = inputs.gpu.ok("pipeline_deep_dive"), inputs.cpu.ok("pipeline_deep_dive")
    if not (gp and cp):
        return {"available": False, "reason": section_reason(inputs, "pipeline_deep_dive"), "configs": {}}
    by_id = {e["id"]: e for e in speedups}
    configs = {}
    for key, cc in cp.data["configs"].items():
        gc = gp.data["configs"].get(key)
        if gc is None:
            continue
        bg, bc = gc["levers"].get("batch_size") or 1, cc["levers"].get("batch_size") or 1
        g_ms = {s: v["median"] * 1e3 / bg for s, v in gc["stages_s"].items()}
        c_ms = {s: v["median"] * 1e3 / bc for s, v in cc["stages_s"].items()}
        tg, tc = sum(g_ms.values()), sum(c_ms.values())
        stages = []
        for s in list(dict.fromkeys(list(cc["stages_s"]) + list(gc["stages_s"]))):
            e = by_id.get(f"pipeline.{key}.stage.{s}")
            gms, cms = g_ms.get(s), c_ms.get(s)
            stages.append({
                "stage": s, "meaning": STAGE_MEANING.get(s, s),
                "gpu_ms_per_image": gms, "cpu_ms_per_image": cms,
                "gpu_ci95": [x * 1e3 / bg for x in gc["stages_s"][s]["ci95"]] if s in gc["stages_s"] else None,
                "cpu_ci95": [x * 1e3 / bc for x in cc["stages_s"][s]["ci95"]] if s in cc["stages_s"] else None,
                "gpu_share": gms / tg if gms is not None and tg else None,
                "cpu_share": cms / tc if cms is not None and tc else None,
                "speedup": e["speedup"] if e else None, "ci95": e["ci95"] if e else None,
                # Amdahl: even if every other stage cost nothing on the GPU, the step could not beat this
                "amdahl_cap": tc / gms if gms else None,
            })
        capped = [s for s in stages if s["amdahl_cap"] is not None]
        bound = min(capped, key=lambda s: s["amdahl_cap"]) if capped else None
        step = by_id.get(f"pipeline.{key}.step_time")
        e2e = by_id.get(f"pipeline.{key}.end_to_end")
        model = by_id.get(f"pipeline.{key}.model_stages")
        data = by_id.get(f"pipeline.{key}.data_stages")
        cfg = {
            "title": CONFIG_TITLES.get(key, key), "gpu_label": gc.get("label"), "cpu_label": cc.get("label"),
            "differences": levers_diff(gc["levers"], cc["levers"]), "kind": LIKE_FOR_LIKE,
            "gpu_step_ms_per_image": tg, "cpu_step_ms_per_image": tc,
            "stage_sum_speedup": tc / tg if tg else None, "stages": stages,
            "bounding_stage": bound["stage"] if bound else None,
            "bounding_stage_meaning": bound["meaning"] if bound else None,
            "bounding_share_of_gpu_step": bound["gpu_share"] if bound else None,
            "amdahl_cap": bound["amdahl_cap"] if bound else None,
            "step_speedup": _brief(step), "end_to_end_speedup": _brief(e2e),
            "model_stages_speedup": _brief(model), "data_stages_speedup": _brief(data),
            "pipeline_efficiency": {"gpu": gc.get("pipeline_efficiency"), "cpu": cc.get("pipeline_efficiency")},
            "data_stall_fraction": {"gpu": gc.get("data_stall_fraction"), "cpu": cc.get("data_stall_fraction")},
            "worker_cpu_ms_per_image": {
                "gpu": {k: v * 1e3 / bg for k, v in (gc.get("worker_cpu_s_per_batch") or {}).items()},
                "cpu": {k: v * 1e3 / bc for k, v in (cc.get("worker_cpu_s_per_batch") or {}).items()}},
        }
        from common.analysis.interpret import interpret

        cfg["gpu_bottleneck"] = interpret(gc)
        cfg["cpu_bottleneck"] = interpret(cc)
        cfg["verdict"] = _pipeline_verdict(cfg)
        configs[key] = cfg
    return {"available": bool(configs), "reason": None if configs else "no pipeline configuration in both runs",
            "configs": configs,
            "method": "Stage times are medians of synchronized steps, divided by the batch size (ms per image). "
                      "Amdahl cap of a stage = CPU step time / that stage's GPU time: the end-to-end speedup "
                      "the GPU could reach if every other stage cost nothing. The bounding stage has the lowest cap."}


def _brief(e: dict | None) -> dict | None:
    return {"id": e["id"], "speedup": e["speedup"], "ci95": e["ci95"]} if e else None


def _pipeline_verdict(cfg: dict) -> str:
    parts = []
    step = cfg["step_speedup"] or cfg["end_to_end_speedup"]
    title = cfg["title"]
    if step:
        parts.append(f"{title}: a training step is {speedup_phrase(step)} per image")
    model = cfg["model_stages_speedup"]
    if model:
        parts.append(f"the model stages are {speedup_phrase(model)}")
    gb = cfg.get("gpu_bottleneck") or {}
    if gb.get("bottleneck") == "data loading":
        parts.append(f"but on the GPU the model waits for data ({gb['why']}; data stall "
                     f"{100 * gb['data_stall_fraction']:.0f}%)")
    elif cfg["bounding_stage"] and cfg["amdahl_cap"] is not None:
        share = f"{100 * (cfg['bounding_share_of_gpu_step'] or 0):.0f}% of the GPU step"
        if cfg["bounding_stage"] in MODEL_STAGES:
            parts.append(f"the GPU step is compute bound: {cfg['bounding_stage']} ({cfg['bounding_stage_meaning']}) "
                         f"takes {share} (Amdahl cap {fmt_x(cfg['amdahl_cap'])}x)")
        else:
            parts.append(f"but {cfg['bounding_stage']} ({cfg['bounding_stage_meaning']}) takes {share} and caps the "
                         f"end-to-end speedup at {fmt_x(cfg['amdahl_cap'])}x")
    text = ", ".join(parts[:2]) + ("; " + parts[2] if len(parts) > 2 else "")
    diff = diff_text(cfg["differences"])
    return f"{text} [{LIKE_FOR_LIKE}{'; settings that differ: ' + diff if diff else ''}]"


# --- utilization --------------------------------------------------------------------------------


def _stats(vals: list[float]) -> dict[str, Any] | None:
    vals = [v for v in vals if v is not None and math.isfinite(v)]
    if not vals:
        return None
    return {"mean": float(np.mean(vals)), "max": float(np.max(vals)), "samples": len(vals)}


def _downsample(t: list[float], series: dict[str, list], n: int = 300) -> dict[str, list]:
    if not t:
        return {"t_s": [], **{k: [] for k in series}}
    step = max(1, math.ceil(len(t) / n))
    out = {"t_s": [float(x) for x in t[::step]]}
    for k, v in series.items():
        out[k] = [None if x is None else float(x) for x in v[::step]]
    return out


def _run_utilization(run: Run) -> dict[str, Any]:
    u = run.ok("utilization_patterns")
    if u is None:
        rec = run.records.get("utilization_patterns")
        return {"available": False, "reason": (rec.reason if rec else None) or "no utilization record"}
    d = u.data
    mon = d.get("monitor") or {}
    if not mon:
        return {"available": False, "reason": d.get("reason") or "samplers were not running",
                "per_stage": d.get("per_stage") or {}}
    t0 = d.get("t0") or 0.0
    cpu = (mon.get("cpu") or {}).get("samples") or []
    gpu = ((mon.get("gpu") or {}) or {}).get("samples") or []
    out: dict[str, Any] = {
        "available": True, "hz": mon.get("hz"),
        "cpu_total_pct": _stats([s.get("cpu_total_pct") for s in cpu]),
        "process_rss_mib": _stats([s.get("process_rss_mib") for s in cpu]),
        "gpu_util_pct": _stats([s.get("gpu_util_pct") for s in gpu]),
        "gpu_memory_used_mib": _stats([s.get("memory_used_mib") for s in gpu]),
        "gpu_power_w": _stats([s.get("power_w") for s in gpu]),
        "unavailable": dict(mon.get("unavailable") or {}),
        "sensor_errors": {**((mon.get("cpu") or {}).get("errors") or {}),
                          **(((mon.get("gpu") or {}) or {}).get("errors") or {})},
        "sampler_overhead": {"cpu": (mon.get("cpu") or {}).get("overhead"),
                             "gpu": ((mon.get("gpu") or {}) or {}).get("overhead")},
        "per_stage": d.get("per_stage") or {},
        "timeline": {
            "cpu": _downsample([s["t"] - t0 for s in cpu], {"cpu_total_pct": [s.get("cpu_total_pct") for s in cpu]}),
            "gpu": _downsample([s["t"] - t0 for s in gpu], {"gpu_util_pct": [s.get("gpu_util_pct") for s in gpu],
                                                            "power_w": [s.get("power_w") for s in gpu]}) if gpu
            else None,
            "sections": [{"name": s["name"], "start_s": s["start"] - t0, "end_s": s["end"] - t0}
                         for s in d.get("sections") or []],
        },
    }
    return out


def utilization(inputs: Inputs) -> dict[str, Any]:
    g, c = inputs.gpu, inputs.cpu
    out: dict[str, Any] = {"gpu_run": _run_utilization(g), "cpu_run": _run_utilization(c)}
    gw, cw = g.ok("winning_solution"), c.ok("winning_solution")
    rungs = []
    if gw:
        c_by = {r["name"]: r for r in (cw.data["rungs"] if cw else [])}
        for r in gw.data["rungs"]:
            cr = c_by.get(r["name"])
            rungs.append({"name": r["name"], "gpu_label": r.get("label"), "cpu_label": cr.get("label") if cr else None,
                          "gpu_util_pct": r.get("gpu_util_pct"), "gpu_power_w": r.get("gpu_power_w"),
                          "gpu_run_cpu_util_pct": r.get("cpu_util_pct"),
                          "cpu_run_cpu_util_pct": cr.get("cpu_util_pct") if cr else None})
        names = {r["name"] for r in gw.data["rungs"]}
        for r in (cw.data["rungs"] if cw else []):
            if r["name"] not in names:
                rungs.append({"name": r["name"], "gpu_label": None, "cpu_label": r.get("label"), "gpu_util_pct": None,
                              "gpu_power_w": None, "gpu_run_cpu_util_pct": None,
                              "cpu_run_cpu_util_pct": r.get("cpu_util_pct")})
    out["rungs"] = rungs
    verdicts = []
    recipe = next((r for r in rungs if r["gpu_util_pct"] is not None), None)
    if recipe:
        verdicts.append(f"During the training ladder the GPU was busy {recipe['gpu_util_pct']:.0f}% of the time on "
                        f"'{recipe['name']}'" + "".join(
                            f", {r['gpu_util_pct']:.0f}% on '{r['name']}'" for r in rungs[1:]
                            if r["gpu_util_pct"] is not None) + " (NVML utilization, mean over the timed windows).")
    gu = out["gpu_run"].get("gpu_util_pct") if out["gpu_run"].get("available") else None
    if gu:
        verdicts.append(f"Over the whole GPU run the GPU was busy {gu['mean']:.0f}% of the time on average "
                        f"(max {gu['max']:.0f}%).")
    for label, run in (("GPU run's host", out["gpu_run"]), ("CPU run's", out["cpu_run"])):
        cu = run.get("cpu_total_pct") if run.get("available") else None
        if cu:
            verdicts.append(f"The {label} CPUs averaged {cu['mean']:.0f}% busy over the run (max {cu['max']:.0f}%).")
    out["verdicts"] = verdicts
    return out


# --- efficiency, cost, radar ----------------------------------------------------------------------


def _rung_efficiency(run: Run, rung: dict) -> dict[str, Any]:
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
        "name": rung["name"], "label": rung.get("label"), "images_per_s": ips["median"],
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
        rungs = [_rung_efficiency(run, r) for r in w.data["rungs"]]
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
            ("training.winner.end_to_end", "training, winner", "img/s", True),
            ("training.ladder.monai_tutorial_recipe.end_to_end", "training, tutorial recipe", "img/s", True),
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


# --- summary and verdicts ----------------------------------------------------------------------------


def _kind_tag(e: dict) -> str:
    diff = diff_text(e.get("differences") or {}) if e["kind"] == LIKE_FOR_LIKE else ""
    return (f"[{e['kind']}: GPU {e['gpu']['config']} vs CPU {e['cpu']['config']}"
            f"{'; settings that differ: ' + diff if diff else ''}]")


def verdicts(speedups: list[dict], pipeline: dict, eff: dict, util: dict, scal: dict) -> list[dict[str, Any]]:
    by = {e["id"]: e for e in speedups}
    out: list[dict[str, Any]] = []

    def add(text: str, kind: str, ids: list[str]):
        out.append({"text": text, "kind": kind, "ids": ids})

    e = by.get("training.ladder.monai_tutorial_recipe.end_to_end")
    tut = (pipeline.get("configs") or {}).get("tutorial_recipe")
    if e:
        text = f"Training with the MONAI tutorial recipe is {speedup_phrase(e)} end to end"
        gb = (tut or {}).get("gpu_bottleneck") or {}
        if tut and gb.get("bottleneck") == "data loading":
            text += (f"; on the GPU the model waits for data ({gb['why']}), so data loading, not the model, "
                     f"bounds this recipe")
        elif tut and tut.get("model_stages_speedup") and tut.get("bounding_stage") \
                and tut["bounding_stage"] not in MODEL_STAGES:
            text += (f"; its model stages alone are {speedup_phrase(tut['model_stages_speedup'])}, but "
                     f"{tut['bounding_stage']} ({tut['bounding_stage_meaning']}) caps the end-to-end speedup at "
                     f"{fmt_x(tut['amdahl_cap'])}x")
        elif tut and tut.get("bounding_stage"):
            text += (f"; on the GPU its step is compute bound ({tut['bounding_stage']} takes "
                     f"{100 * (tut['bounding_share_of_gpu_step'] or 0):.0f}% of it)")
        add(f"{text} {_kind_tag(e)}.", LIKE_FOR_LIKE, [e["id"]])
    e = by.get("pipeline.device_resident.end_to_end")
    if e:
        add(f"With device-resident data and batched device augmentation, end-to-end training is {speedup_phrase(e)} "
            f"{_kind_tag(e)}.", LIKE_FOR_LIKE, [e["id"]])
    e = by.get("training.winner.end_to_end")
    if e:
        add(f"Each device at its best (its accuracy-gated winning configuration), training is {speedup_phrase(e)}: "
            f"{fmt_num(e['gpu']['median'], 'img/s')} vs {fmt_num(e['cpu']['median'], 'img/s')} {_kind_tag(e)}.",
            BEST_VS_BEST, [e["id"]])
    e = by.get("inference.latency_batch1.fp32")
    if e:
        add(f"Batch-1 inference (fp32) is {speedup_phrase(e)}: p50 {e['gpu']['median']:.3g} ms vs "
            f"{e['cpu']['median']:.3g} ms {_kind_tag(e)}.", LIKE_FOR_LIKE, [e["id"]])
    e = by.get("inference.throughput.best_batch")
    if e:
        add(f"At each device's best batch size, inference throughput is {speedup_phrase(e, 'higher')}: "
            f"{fmt_num(e['gpu']['median'], 'img/s')} vs {fmt_num(e['cpu']['median'], 'img/s')} {_kind_tag(e)}.",
            BEST_VS_BEST, [e["id"]])
    e = by.get("augmentation.device_batched.chain")
    if e:
        add(f"The batched augmentation chain runs {speedup_phrase(e)} {_kind_tag(e)}.", LIKE_FOR_LIKE, [e["id"]])
    e = by.get("augmentation.chain.best")
    if e:
        add(f"Augmenting each device's fastest way, the chain is {speedup_phrase(e)} {_kind_tag(e)}.", BEST_VS_BEST,
            [e["id"]])
    e = by.get("volume3d.unet_train_step")
    if e:
        add(f"A 3D UNet training step is {speedup_phrase(e)} {_kind_tag(e)}.", LIKE_FOR_LIKE, [e["id"]])
    # energy and cost
    ge = ((eff.get("energy") or {}).get("gpu") or {}).get("winner") or {}
    ce = ((eff.get("energy") or {}).get("cpu") or {}).get("winner") or {}
    if ge or ce:
        gtxt = (f"the GPU's winner uses {ge['j_per_image']:.3g} J per image ({ge['images_per_j']:.3g} images per "
                f"joule, {ge['energy_counter']})" if ge.get("j_per_image")
                else f"GPU energy not available on that machine ({ge.get('energy_reason')})")
        ctxt = (f"the CPU's winner {ce['j_per_image']:.3g} J per image ({ce['images_per_j']:.3g} images per joule, "
                f"{ce['energy_counter']})" if ce.get("j_per_image")
                else f"CPU energy not available on that machine ({ce.get('energy_reason')})")
        gain = next((x for x in eff.get("gains", []) if x["metric"].startswith("images per joule, winning")), None)
        extra = f"; the GPU does {fmt_x(gain['gain'])}x more images per joule" if gain and gain.get("gain") else ""
        add(f"Energy: {gtxt}; {ctxt}{extra} [{BEST_VS_BEST}: winning configurations].", BEST_VS_BEST, [])
    cost = ((eff.get("cost") or {}).get("configs") or {}).get("winner")
    if cost:
        g, c = cost["gpu"], cost["cpu"]
        if g["cost_per_million_images"] is not None and c["cost_per_million_images"] is not None:
            cheaper = "GPU" if g["cost_per_million_images"] < c["cost_per_million_images"] else "CPU"
            add(f"Cost per million training images: {g['cost_per_million_images']:.3g} on the GPU machine "
                f"(at {g['price_per_hour']}/h) vs {c['cost_per_million_images']:.3g} on the CPU machine (at "
                f"{c['price_per_hour']}/h): the {cheaper} is cheaper by "
                f"{fmt_x(max(cost['cpu_over_gpu'], 1 / cost['cpu_over_gpu']))}x [{BEST_VS_BEST}: winning "
                "configurations].", BEST_VS_BEST, [])
        else:
            parts = [f"{d}: {x['cost_per_million_images']:.3g} per million images at {x['price_per_hour']}/h"
                     if x["cost_per_million_images"] is not None else f"{d}: {x['reason']}"
                     for d, x in (("GPU", g), ("CPU", c))]
            add("Cost: " + "; ".join(parts) + ".", BEST_VS_BEST, [])
    if scal.get("available"):
        top = scal["rows"][-1]
        add(f"Scaling: {top['gpus']} GPUs train {fmt_x(top['speedup_vs_1'])}x faster than {scal['baseline_gpus']} "
            f"({fmt_x(top['ci95'][0])}-{fmt_x(top['ci95'][1])}x), parallel efficiency "
            f"{100 * top['efficiency']:.0f}%.", "scaling", [])
    else:
        add(f"Scalability: {scal.get('reason')}.", "scaling", [])
    for v in util.get("verdicts", [])[:1]:
        add(v, "utilization", [])
    return out


def comparison_environment(inputs: Inputs) -> dict[str, Any]:
    from common.measure.environment import git_commit

    return {
        "gpu_run": inputs.gpu.environment, "cpu_run": inputs.cpu.environment,
        "comparison": {"time_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                       "hostname": platform.node(), "python": platform.python_version(), "git": git_commit()},
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
                  "from the raw values of both records; 95% interval by bootstrap resampling of both sides "
                  "(common.measure.stats.ratio, 2000 resamples, seed 0). > 1 means the GPU is better.",
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
