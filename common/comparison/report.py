"""The comparison's Markdown report, built from the comparison records alone: plain-language
verdicts generated from the numbers (each naming its kind of comparison), tables of every
speedup with its interval, and every figure linked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from common.atomic import write_text
from common.comparison import BEST_VS_BEST, FIGURES, LIKE_FOR_LIKE, RECORDS, REPORT
from common.comparison.text import diff_text, fmt_num, fmt_x
from common.measure.stats import CI_LEVEL

FIGURE_TEXT = {
    "performance_comparison/gpu_cpu_performance_dashboard.png": "Performance dashboard",
    "utilization_comparison/gpu_cpu_utilization_comparison.png": "Utilization",
    "augmentation_comparison/gpu_cpu_augmentation_comparison.png": "Augmentation",
    "pipeline_comparison/gpu_cpu_pipeline_comparison.png": "Pipeline stage by stage",
    "visualizations/gpu_cpu_efficiency_analysis.png": "Efficiency",
    "visualizations/gpu_cpu_performance_comparison.png": "Speedups and efficiency gains",
    "visualizations/gpu_cpu_radar_chart.png": "Radar",
    "reports/gpu_cpu_headline_speedups.png": "Headline speedups and verdicts",
    "metrics/gpu_cpu_comparison_overview.png": "The two runs",
}


def _link(rel: str) -> str:
    """Path of ``rel`` (relative to comparison_results/) as seen from reports/."""
    return rel[len("reports/"):] if rel.startswith("reports/") else f"../{rel}"


def _fig(rel: str) -> str:
    return f"![{FIGURE_TEXT.get(rel, rel)}]({_link(rel)})"


def _n(v: Any, fmt: str = "{:.3g}") -> str:
    return "n/a" if v is None else fmt.format(v)


def _table(entries: list[dict]) -> list[str]:
    if not entries:
        return ["(none: no quantity was measured in a way both runs share)", ""]
    out = ["| comparison | GPU configuration | CPU configuration | GPU | CPU | speedup (window range) | "
           "settings that differ |", "|---|---|---|---|---|---|---|"]
    for e in entries:
        g, c = e["gpu"], e["cpu"]
        lo, hi = e["ci95"]
        note = f" ({e['note']})" if e.get("note") else ""
        out.append(f"| {e['metric']}{note} | {g['config']} | {c['config']} | {fmt_num(g['median'], g['unit'])} | "
                   f"{fmt_num(c['median'], c['unit'])} | **{fmt_x(e['speedup'])}x** ({fmt_x(lo)}-{fmt_x(hi)}) | "
                   f"{diff_text(e.get('differences') or {}) or '-'} |")
    return out + [""]


def build_report(records: dict[str, Any]) -> str:
    perf = records["comparison_performance"].data
    pipe = records["comparison_pipeline"].data
    aug = records["comparison_augmentation"].data
    util = records["comparison_utilization"].data
    eff = records["comparison_efficiency"].data
    summ = records["comparison_summary"]
    s = summ.data
    g, c = s["machines"]["gpu"], s["machines"]["cpu"]
    env = (summ.environment or {}).get("comparison") or {}
    L: list[str] = [
        "# GPU vs CPU comparison",
        "",
        f"Built {env.get('time_utc', '')} from the JSON records of two runs (nothing was measured for this "
        "report). A speedup above 1 means the GPU is better; every speedup carries its "
        f"{CI_LEVEL:.0%} bootstrap interval and "
        f"its kind: **{LIKE_FOR_LIKE}** (the same configuration on both devices; settings that still differ are "
        f"listed) or **{BEST_VS_BEST}** (each device's best configuration).",
        "",
        "| | GPU run | CPU run |",
        "|---|---|---|",
        f"| device | {g.get('gpu_name') or 'n/a'} | {c.get('cpu_model')}, {c.get('threads_used')} threads |",
        f"| host | {g.get('hostname')} ({g.get('cpu_model')}) | {c.get('hostname')} |",
        f"| date (UTC) | {g.get('time_utc')} | {c.get('time_utc')} |",
        f"| code | git {str(g.get('git_commit'))[:10]}{' (dirty)' if g.get('git_dirty') else ''}, torch "
        f"{g.get('torch')}, MONAI {g.get('monai')} | git {str(c.get('git_commit'))[:10]}"
        f"{' (dirty)' if c.get('git_dirty') else ''}, torch {c.get('torch')}, MONAI {c.get('monai')} |",
        f"| mode | {'quick' if g.get('quick') else 'full'}, recipe batch {g.get('batch_size')} | "
        f"{'quick' if c.get('quick') else 'full'}, recipe batch {c.get('batch_size')} |",
        f"| data | {g.get('dataset_source')}, {g.get('dataset_images')} images"
        f"{', SYNTHETIC' if g.get('synthetic') else ''} | {c.get('dataset_source')}, {c.get('dataset_images')} "
        f"images{', SYNTHETIC' if c.get('synthetic') else ''} |",
        "",
        "## Verdicts",
        "",
    ]
    L += [f"- {v['text']}" for v in s.get("verdicts", [])]
    L += ["", _fig("reports/gpu_cpu_headline_speedups.png"), "", "## About the inputs", ""]
    L += [f"- {n}" for n in s.get("notes", [])] or ["- nothing to note"]
    L += ["", _fig("metrics/gpu_cpu_comparison_overview.png"), ""]
    L += _performance_lines(perf) + _pipeline_lines(pipe) + _augmentation_lines(aug) + _utilization_lines(util)
    L += _efficiency_lines(eff) + _scalability_lines(perf.get("scalability") or {}) + _method_lines(perf)
    L += _files_lines(s)
    return "\n".join(L) + "\n"


def _performance_lines(perf: dict[str, Any]) -> list[str]:
    stats = _link("performance_comparison/gpu_cpu_performance_stats.json")
    L = ["## Performance", "", f"Every speedup below is in [{stats}]({stats}) with the record files and fields its "
          "values come from.", "",
          _fig("performance_comparison/gpu_cpu_performance_dashboard.png"), ""]
    speed = perf.get("speedups", [])
    main_groups = ("training", "inference", "pipeline", "volume3d")
    L += [f"### {LIKE_FOR_LIKE}: the same configuration on both devices", ""]
    L += _table([e for e in speed if e["kind"] == LIKE_FOR_LIKE and e["group"] in main_groups])
    L += [f"### {BEST_VS_BEST}: each device's best", ""]
    L += _table([e for e in speed if e["kind"] == BEST_VS_BEST])
    if perf.get("skipped"):
        L += ["Comparisons left out: " + "; ".join(f"{x['metric']} ({x['reason']})" for x in perf["skipped"]), ""]
    return L


def _pipeline_lines(pipe: dict[str, Any]) -> list[str]:
    L = ["## Pipeline, stage by stage", "", _fig("pipeline_comparison/gpu_cpu_pipeline_comparison.png"), ""]
    if not pipe.get("available"):
        L += [f"Not available: {pipe.get('reason')}", ""]
    for c_ in (pipe.get("configs") or {}).values():
        L += [f"### {c_['title']} ({c_['kind']})", "", f"{c_['verdict']}.", "",
              "| stage | GPU ms/image | CPU ms/image | share of the GPU step | speedup (window range) | Amdahl cap |",
              "|---|---|---|---|---|---|"]
        for st in c_["stages"]:
            sp = (f"{fmt_x(st['speedup'])}x ({fmt_x(st['ci95'][0])}-{fmt_x(st['ci95'][1])})"
                  if st.get("speedup") is not None else "only on one device")
            cap = f"{fmt_x(st['amdahl_cap'])}x" if st.get("amdahl_cap") is not None else "n/a"
            bold = "**" if st["stage"] == c_["bounding_stage"] else ""
            L.append(f"| {bold}{st['stage']}{bold} | {_n(st['gpu_ms_per_image'])} | {_n(st['cpu_ms_per_image'])} | "
                     f"{_n(st['gpu_share'], '{:.0%}')} | {sp} | {bold}{cap}{bold} |")
        pe, ds = c_["pipeline_efficiency"], c_["data_stall_fraction"]
        L += ["", f"Pipeline efficiency (end to end / model only): GPU {_n(pe.get('gpu'), '{:.2f}')}, CPU "
              f"{_n(pe.get('cpu'), '{:.2f}')}; data stall: GPU {_n(ds.get('gpu'), '{:.0%}')}, CPU "
              f"{_n(ds.get('cpu'), '{:.0%}')}.", ""]
        w = c_.get("worker_cpu_ms_per_image") or {}
        if w.get("gpu") or w.get("cpu"):
            L += ["CPU work per image in the DataLoader workers (ms, no interval: one median recorded): "
                  + "; ".join(f"{d.upper()}: " + ", ".join(f"{k} {v:.3g}" for k, v in (w.get(d) or {}).items())
                              for d in ("gpu", "cpu") if w.get(d)), ""]
    return L + [pipe.get("method", ""), ""]


def _augmentation_lines(aug: dict[str, Any]) -> list[str]:
    L = ["## Augmentation", "", _fig("augmentation_comparison/gpu_cpu_augmentation_comparison.png"), ""]
    L += [f"- {v}" for v in (aug.get("quality") or {}).get("verdicts", [])]
    return L + [""] + _table(aug.get("speedups", []))


def _utilization_lines(util: dict[str, Any]) -> list[str]:
    L = ["## Utilization", "", _fig("utilization_comparison/gpu_cpu_utilization_comparison.png"), ""]
    L += [f"- {v}" for v in util.get("verdicts", [])] or ["- no utilization samples in the records"]
    for d, label in (("gpu_run", "GPU run"), ("cpu_run", "CPU run")):
        r = util.get(d) or {}
        if not r.get("available"):
            L.append(f"- {label}: not available ({r.get('reason')})")
        elif r.get("unavailable") or r.get("sensor_errors"):
            L.append(f"- {label}, sensors not available on that machine: " + "; ".join(
                f"{k}: {v}" for k, v in {**r.get("unavailable", {}), **r.get("sensor_errors", {})}.items()))
    return L + [""]


def _efficiency_lines(eff: dict[str, Any]) -> list[str]:
    L = ["## Efficiency and cost", "", _fig("visualizations/gpu_cpu_efficiency_analysis.png"), "",
          "| measure | kind | GPU | CPU | GPU / CPU |", "|---|---|---|---|---|"]
    for gm in eff.get("gains", []):
        gain = f"{fmt_x(gm['gain'])}x" if gm.get("gain") else f"not available on this machine: {gm.get('reason')}"
        L.append(f"| {gm['metric']} ({gm['unit']}) | {gm['kind']} | {_n(gm.get('gpu'))} | {_n(gm.get('cpu'))} | "
                 f"{gain} |")
    cost = eff.get("cost") or {}
    L += ["", f"Cost per million images = price per hour / (images per second x 3600) x 1e6, with GPU price "
              f"{cost.get('gpu_price_per_hour')} and CPU price {cost.get('cpu_price_per_hour')} per hour "
              "(config.GPU_PRICE_PER_HOUR / CPU_PRICE_PER_HOUR or --gpu-price-per-hour / --cpu-price-per-hour; "
              "nothing is assumed when no price is given).", ""]
    for cfg, row in (cost.get("configs") or {}).items():
        parts = []
        for d in ("gpu", "cpu"):
            x = row[d]
            parts.append(f"{d.upper()} {x['cost_per_million_images']:.3g} ({x['ci95'][0]:.3g}-{x['ci95'][1]:.3g})"
                         if x.get("cost_per_million_images") is not None else f"{d.upper()}: {x.get('reason')}")
        L.append(f"- {'winning configuration' if cfg == 'winner' else 'tutorial recipe'} ({row['kind']}): "
                 + "; ".join(parts))
    L += ["", _fig("visualizations/gpu_cpu_performance_comparison.png"), "",
          _fig("visualizations/gpu_cpu_radar_chart.png"), "",
          f"Radar normalization: {(eff.get('radar') or {}).get('normalization', '')}", ""]
    missing = (eff.get("radar") or {}).get("missing") or []
    if missing:
        L += ["Radar axes not shown: " + "; ".join(f"{m['name']} ({m['reason']})" for m in missing), ""]
    return L


def _scalability_lines(scal: dict[str, Any]) -> list[str]:
    L = ["## Scalability", ""]
    if scal.get("available"):
        L += ["| GPUs | images/s | speedup vs baseline (window range) | parallel efficiency | time to target |",
              "|---|---|---|---|---|"]
        L += [f"| {r['gpus']} | {fmt_num(r['images_per_s']['median'])} | {fmt_x(r['speedup_vs_1'])}x "
              f"({fmt_x(r['ci95'][0])}-{fmt_x(r['ci95'][1])}) | {r['efficiency']:.0%} | "
              f"{fmt_num(r.get('time_to_target_s'), 's')} |" for r in scal["rows"]]
    else:
        L.append(f"{scal.get('reason')} (the GPU run saw {scal.get('gpu_count')} GPU(s)).")
    cpr = scal.get("cpu_processes")
    if cpr:
        L += ["", "CPU data-parallel scaling (gloo processes) in the CPU run: " + (", ".join(
            f"{r['processes']} process(es) {fmt_num(r['images_per_s'])} img/s (weak efficiency "
            f"{r['weak_efficiency']:.0%})" for r in cpr["rows"]) if cpr.get("available") else str(cpr.get("reason")))]
    ct = scal.get("cpu_threads")
    if ct:
        L += ["", f"CPU thread scaling in the CPU run ({ct.get('workload')}, {ct.get('physical_cores')} physical "
                  "cores): " + ", ".join(f"{r['threads']} threads {fmt_num(r['images_per_s'])} img/s "
                                         f"(efficiency {r['parallel_efficiency']:.0%})" for r in ct["rows"])]
    return L


def _method_lines(perf: dict[str, Any]) -> list[str]:
    return ["", "## Method", "", perf.get("method", ""), "",
          f"- {LIKE_FOR_LIKE}: {perf.get('kinds', {}).get(LIKE_FOR_LIKE, '')}",
          f"- {BEST_VS_BEST}: {perf.get('kinds', {}).get(BEST_VS_BEST, '')}",
          "- Per-stage times are compared per image (stage time / batch size), so runs with different batch sizes "
          "stay comparable; their settings that differ are listed.",
          "- Energy comes from hardware counters only (NVML total energy for the GPU board, RAPL for the CPU); a "
          "missing counter is reported as not available with its reason, never estimated.", ""]


def _files_lines(s: dict[str, Any]) -> list[str]:
    L = ["## Files", ""]
    L += [f"- {FIGURE_TEXT.get(f, f)}: [{f}]({_link(f)})" for f in FIGURES]
    L += [f"- record `{k}`: [{d}/{n}]({_link(f'{d}/{n}')}) (canonical copy: [metrics/{n}]({_link(f'metrics/{n}')}))"
          for k, (d, n) in RECORDS.items()]
    for d, label in (("gpu", "GPU run"), ("cpu", "CPU run")):
        inp = (s.get("inputs") or {}).get(d) or {}
        L += [f"- {label} records ({inp.get('root')}): " + ", ".join(
            f"`{Path(r['file']).name}` ({r['status']}, {r['created']})" for r in (inp.get("records") or {}).values())]
    return L


def write_report(records: dict[str, Any], root: Path) -> Path:
    return write_text(root / REPORT, build_report(records))
