"""The report's key numbers, one function per section (registered in common.layout.SECTIONS):
each reads one record (status ok) and gives (label, text) rows. Pure; no torch."""

from __future__ import annotations

from typing import Any

from common.records import Record


def _f(v: Any, fmt: str = "{:.3g}", none: str = "n/a") -> str:
    return none if v is None else fmt.format(v)


def winning(w: Record) -> list[tuple[str, str]]:
    """The winning solution's rows: the same sentences as the README's headline block
    (common/ladder_text.py), each speed claim beside its time to target."""
    from common.ladder_text import headline_rows

    if "time_to_target" not in w.data["rungs"][0]:  # a throughput-ladder record from before issue 15
        return [("Winning solution", "this record predates time to target (issue 15): re-run the winning_solution "
                 "section (--sections winning_solution) for cold and warm time to target on every seed")]
    rows = [(f"Winning solution: {label.lower()}", text.lstrip("- "))
            for label, text in headline_rows(w.data, w.device)]
    s = w.data["summary"]
    rows.append(("Winning solution: rule", f"{s['winner_rule']}; gate: test accuracy >= "
                 + (_f(s.get("accuracy_gate"), "{:.2%}") if s.get("accuracy_gate") is not None else "n/a")
                 + " on every seed"))
    return rows


def pipeline(p: Record) -> list[tuple[str, str]]:
    from common.analysis.interpret import interpret

    rows = []
    for k, c in p.data["configs"].items():
        it = interpret(c)
        rows.append((f"Pipeline ({k.replace('_', ' ')})", f"bottleneck {it['bottleneck']} ({it['why']}), "
                     f"data stall {100 * it['data_stall_fraction']:.0f}%; if data cost nothing the step would "
                     f"be {_f(it['speedup_if_data_free'], '{:.2f}x')} faster"))
    return rows


def augmentation(a: Record) -> list[tuple[str, str]]:
    return [("Augmentation chain", f"{a.data['cpu_per_sample']['chain_images_per_s']['median']:.0f} img/s "
             f"per sample on 1 CPU thread vs {a.data['device_batched']['chain_images_per_s']['median']:.0f} "
             f"img/s batched ({a.data['chain_speedup_batched_vs_per_sample']:.0f}x); max |Δ| vs MONAI "
             f"{a.data['quality']['per_transform']['chain']['vs_monai_max_abs']:.1e}")]


def _ladder_rows(lad: dict | None) -> list[tuple[str, str]]:
    """Key numbers of the inference ladder: each winner, the eager baseline, end to end from a JPEG."""
    if not lad:
        return []
    rungs = {r["name"]: r for r in lad["rungs"]}
    base, w, t = rungs.get("eager fp32"), lad.get("latency_winner"), lad.get("throughput_winner")
    out = []
    if w:
        win = rungs[w["name"]]
        e2e = win.get("end_to_end")
        out.append(("Serving, latency winner", f"{w['name']} ({w['label']}): batch-1 p50 {w['p50_ms']:.3g} ms, p99 "
                    f"{w['p99_ms']:.3g} ms, {w['speedup_p50_vs_eager']:.2f}x eager fp32 (p50 "
                    f"{base['latency']['p50_ms']:.3g} ms); top-1 agreement {100 * win['agreement']['top1_agreement']:.2f}%"
                    + (f"; end to end from JPEG p50 {e2e['p50_ms']:.3g} ms" if e2e else "")))
    else:
        out.append(("Serving, latency winner", f"none: {lad.get('latency_winner_reason')}"))
    out.append(("Serving, throughput winner", f"{t['name']}, batch {t['batch_size']}: {t['images_per_s']:.0f} img/s "
                f"within the {lad['config']['budget_ms']:g} ms budget (p99 {t['p99_ms']:.3g} ms)" if t
                else f"none: {lad.get('throughput_winner_reason')}"))
    return out


def performance(pf: Record) -> list[tuple[str, str]]:
    rows = [(f"Inference batch 1 ({prec})", f"p50 {r['p50_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms")
            for prec, r in pf.data["inference_latency"].items()]
    best = pf.data.get("inference_best_batch")
    row = next((r for r in pf.data["inference_throughput"] if r["batch_size"] == best), None)
    if row:
        rows.append(("Inference best batch", f"{best}: {row['images_per_s']['median']:.0f} img/s"))
    return rows + _ladder_rows(pf.data.get("inference_ladder"))


def volume3d(v: Record) -> list[tuple[str, str]]:
    if not v.data.get("training"):
        return []
    dice = ", ".join(f"{k} {x:.3f}" for k, x in (v.data.get("dice") or {}).items() if x is not None)
    sw = v.data["sliding_window"]
    return [("3D segmentation", f"Dice {dice}; sliding-window inference {sw['seconds']:.2f} s for "
                                f"{sw['voxels']} voxels")]

def scaling_numbers(rec: Record | None) -> list[tuple[str, str]]:
    """Key numbers of the scaling section: the widest count against the first, or why there is no curve."""
    if rec is None or rec.status != "ok":
        return []
    d = rec.data
    if not d.get("available"):
        return [("Data-parallel scaling", d.get("reason") or "not measured")]
    a, b = d["rows"][0], d["rows"][-1]
    u = d["unit"]

    def tta(r):
        return f"{r['time_to_target_s']:.1f} s" if r["time_to_target_s"] is not None else "not reached"

    strong = b.get("strong_efficiency")
    return [(f"Data-parallel scaling, {b['workers']} {u}s", f"{b['images_per_s']['median']:.0f} img/s; weak-scaling "
             f"efficiency {b['weak_efficiency']['value']:.3f} (95% CI {b['weak_efficiency']['ci95'][0]:.3f}-"
             f"{b['weak_efficiency']['ci95'][1]:.3f})" + (f", strong {strong['value']:.3f}" if strong else "")
             + f"; time to target {tta(b)} vs {tta(a)} on {a['workers']}, test accuracy "
             f"{100 * b['test_accuracy']:.2f}%; all-reduce in flight {_f(b['comm_in_flight_share'], '{:.1%}')} of "
             f"the step, exposed {_f(b['comm_exposed_share'], '{:.1%}')}")]


def scaling(rec) -> list[tuple[str, str]]:
    return scaling_numbers(rec)


def key_numbers(records: dict[str, Record]) -> list[tuple[str, str]]:
    """Every section's key numbers, headline sections first (common.layout.PRESENTATION_ORDER)."""
    from common.layout import presented, resolve

    rows: list[tuple[str, str]] = []
    for sec in presented():
        rec = records.get(sec.name)
        if sec.key_numbers and rec is not None and rec.status == "ok":
            rows += resolve(sec.key_numbers)(rec)
    return rows
