"""Key numbers of the performance section for the report: batch-1 latency, the best inference
batch and the inference ladder's winners."""

from __future__ import annotations

from common.records import Record


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
                    f"{base['latency']['p50_ms']:.3g} ms); top-1 agreement "
                    f"{100 * win['agreement']['top1_agreement']:.2f}%"
                    + (f"; end to end from JPEG p50 {e2e['p50_ms']:.3g} ms" if e2e else "")))
    else:
        out.append(("Serving, latency winner", f"none: {lad.get('latency_winner_reason')}"))
    out.append(("Serving, throughput winner", f"{t['name']}, batch {t['batch_size']}: {t['images_per_s']:.0f} img/s "
                f"within the {lad['config']['budget_ms']:g} ms budget (p99 {t['p99_ms']:.3g} ms)" if t
                else f"none: {lad.get('throughput_winner_reason')}"))
    return out


def key_numbers(pf: Record) -> list[tuple[str, str]]:
    rows = [(f"Inference batch 1 ({prec})", f"p50 {r['p50_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms")
            for prec, r in pf.data["inference_latency"].items()]
    best = pf.data.get("inference_best_batch")
    row = next((r for r in pf.data["inference_throughput"] if r["batch_size"] == best), None)
    if row:
        rows.append(("Inference best batch", f"{best}: {row['images_per_s']['median']:.0f} img/s"))
    return rows + _ladder_rows(pf.data.get("inference_ladder"))
