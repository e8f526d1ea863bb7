"""The pipeline comparison: per-stage times per image on both devices, each stage's Amdahl cap on
the end-to-end speedup, the stage that bounds it, and a verdict in words."""

from __future__ import annotations

from typing import Any

from common.comparison import LIKE_FOR_LIKE
from common.comparison.load import Inputs
from common.comparison.speedups import section_reason
from common.comparison.text import diff_text, fmt_x, levers_diff, speedup_phrase

MODEL_STAGES = ("forward", "backward", "optimizer")
DATA_STAGES = ("io_decode", "preprocess", "augment", "collate", "data_wait", "h2d", "sample")
STAGE_MEANING = {
    "data_wait": "waiting for the DataLoader workers that decode, preprocess and augment the images",
    "io_decode": "image decoding", "preprocess": "preprocessing", "augment": "augmentation",
    "h2d": "the host-to-device copy", "forward": "the forward pass", "backward": "the backward pass",
    "optimizer": "the optimizer step", "collate": "batch collation", "sample": "patch sampling",
}


CONFIG_TITLES = {"tutorial_recipe": "MONAI tutorial recipe", "device_resident": "device-resident pipeline"}


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
