"""Text of a time-to-target ladder record: the table `benchmarks/winning_solution.py` prints,
the headline block of the README and the report's key numbers (one source for all three),
and the table of the throughput ladder's records from before issue 15."""

from __future__ import annotations


def _s(v, fmt="{:.1f}") -> str:
    return fmt.format(v) if v is not None else "n/a"


def _t(t: dict | None) -> str:
    """median [min-max] of a time-to-target spread, or n/a."""
    if not t:
        return "n/a"
    return f"{t['median']:.1f} [{t['min']:.1f}-{t['max']:.1f}]"


def table(res: dict, device: str) -> str:
    rows = res["rungs"]
    s = res["summary"]
    win = s["winner_index"] if s.get("crowned", True) else None
    lead = s.get("throughput_leader_index")
    head = (f"{'#':>2} {'rung':<40} {'img/s':>8} {'x':>5} {'J/img':>7} {'cold s [range]':>17} {'x':>5} "
            f"{'warm s [range]':>17} {'x':>5} {'test acc per seed':<24} gate")
    lines = [head, "-" * len(head)]
    for i, r in enumerate(rows):
        t = r["time_to_target"]
        rate = r["images_per_s"]["median"] if r.get("images_per_s") else None
        sp = (r.get("speedup_vs_recipe") or {}).get("value")
        j = r.get("gpu_j_per_image") if device == "cuda" else r.get("cpu_j_per_image")
        accs = " ".join(f"{100 * a:.2f}" if a is not None else "n/a" for a in t["test_accuracy_per_seed"].values())
        mark = "* " if i == win else ("^ " if i == lead else "")
        lines.append(
            f"{i:>2} {(mark + r['name']):<40.40} {_s(rate, '{:.0f}'):>8} {_s(sp):>5} {_s(j, '{:.4f}'):>7} "
            f"{_t(t.get('cold')):>17} {_s(r.get('time_to_target_ratio_cold')):>5} {_t(t.get('warm')):>17} "
            f"{_s(r.get('time_to_target_ratio_warm')):>5} {accs:<24} "
            f"{'pass' if r.get('passes_gate') else 'FAIL: ' + (r.get('gate_reason') or '')}")
    gate = (f"gate: reach {100 * res['spec']['target']:.1f}% validation accuracy and test accuracy >= "
            f"{100 * s['accuracy_gate']:.2f}% (the recipe's lowest seed - {100 * s['tolerance']:.1f} points) on every "
            "seed" if s.get("accuracy_gate") is not None
            else "gate: the recipe has no test accuracy")
    lines.append(f"winner (*): {rows[s['winner_index']]['name']} ({s['winner_rule']}); {gate}")
    if lead is not None:
        lines.append(f"throughput leader (^): {rows[lead]['name']} "
                     f"({_s((rows[lead].get('speedup_vs_recipe') or {}).get('value'))}x the recipe's images/s)")
    lines.append("time to target: seconds from the rung's start to the end of the epoch that reached the target, "
                 "every one-time cost included; median [range] over seeds; x = the recipe's median / the rung's")
    return "\n".join(lines)


def legacy_table(res: dict, device: str) -> str:
    """The throughput ladder's table (records before issue 15: runs P and S in docs/PERFORMANCE.md)."""
    rows = res["rungs"]
    win = res["summary"]["winner_index"]
    head = (f"{'#':>2} {'configuration':<44} {'img/s':>9} {'x recipe':>15} {'eff':>5} {'util%':>6} {'J/img':>7} "
            f"{'MFU':>6} {'test acc':>8} {'TTA x':>6} {'warm':>5}")
    lines = [head, "-" * len(head)]
    for i, r in enumerate(rows):
        sp = r["speedup_vs_recipe"]
        util = r.get("gpu_util_pct") if device == "cuda" else r.get("cpu_util_pct")
        j = r.get("gpu_j_per_image") if device == "cuda" else r.get("cpu_j_per_image")
        tta = r.get("time_to_accuracy_ratio")
        warm = r.get("time_to_accuracy_ratio_warm")
        lines.append(
            f"{i:>2} {('* ' if i == win else '') + r['name']:<44.44} {r['images_per_s']['median']:>9.0f} "
            f"{sp['value']:>5.1f} [{sp['ci95'][0]:>4.1f}-{sp['ci95'][1]:>4.1f}] {r['pipeline_efficiency']:>5.2f} "
            f"{util if util is not None else float('nan'):>6.0f} {j if j is not None else float('nan'):>7.4f} "
            f"{100 * (r['mfu'] or float('nan')):>5.1f}% {100 * r['accuracy']['test_accuracy']:>7.2f}% "
            f"{tta if tta else float('nan'):>6.1f} {warm if warm else float('nan'):>5.1f}")
    s = res["summary"]
    gate = (f"accuracy gate {100 * s['accuracy_gate']:.2f}%" if s.get("gate_applied", True)
            else f"accuracy gate {s['gate_reason']}")
    lines.append(f"winner: {rows[win]['name']} ({rows[win]['label']}); {gate}; "
                 f"MFU against measured {res['matmul_peak']['dtype']} matmul "
                 f"{res['matmul_peak']['flops_per_s'] / 1e12:.1f} TFLOP/s; "
                 f"{res['train_flops_per_image'] / 1e9:.3f} GFLOP per image per training step")
    return "\n".join(lines)



def headline_rows(res: dict, device: str = "cuda") -> list[tuple[str, str]]:
    """(label, sentence) rows of the headline: the run, the recipe, the winner and, where it is
    another rung, the throughput leader; every speed claim beside its time to target."""
    rows, s = res["rungs"], res["summary"]
    env = res.get("environment", {})
    devices = (env.get("gpu") or {}).get("devices") or []
    card = devices[0]["name"] if devices and device == "cuda" else env.get("cpu_model")
    w, r0 = rows[s["winner_index"]], rows[0]
    train_images = res.get("train_images") or next((x.get("train_images") for x in r0["time_to_target"]["runs"]
                                                    if x.get("train_images")), None)
    lead = rows[s["throughput_leader_index"]] if s.get("throughput_leader_index") is not None else None
    tw, t0 = w["time_to_target"], r0["time_to_target"]
    seeds = ", ".join(str(x) for x in t0["seeds"])
    commit = str((env.get("git") or {}).get("commit") or "unknown")[:7]
    parts = res.get("merged_from") or []
    where = (f"On {len(parts)} {card or device}s of one host, the ladder split between them and run side by side"
             if len(parts) > 1 else f"On one {card or device}")
    out = [("Run", f"{where} ({str(env.get('time_utc', ''))[:10]}, commit {commit}; "
           f"{train_images} training images, seeds {seeds}; target {100 * res['spec']['target']:.0f}% "
           "validation accuracy):")]
    base_lr = res["spec"].get("lr")
    out.append(("Recipe", f"- the recipe (MONAI tutorial as written: per-sample CPU transforms in DataLoader workers, "
               f"fp32, batch {r0['levers']['batch_size']}, {_optimizer(r0['levers'], base_lr)}) reaches the target in "
               f"{_t(t0.get('cold'))} s cold and "
               f"{_t(t0.get('warm'))} s warm (median [range] over seeds), at "
               f"{_s(r0['images_per_s']['median'], '{:.0f}')}"
               f" images/s, test accuracy {_accs(t0)};"))
    if s.get("crowned") and lead is w:
        out.append(("Winner", "- the winner, also the throughput leader among the rungs measured, "
                   f"{w['name']} ({w['label']}), "
                   f"reaches it in {_t(tw.get('cold'))} s cold "
                   f"({_s(w.get('time_to_target_ratio_cold'))}x sooner) and {_t(tw.get('warm'))} s warm "
                   f"({_s(w.get('time_to_target_ratio_warm'))}x sooner), at {_s(w['images_per_s']['median'], '{:.0f}')}"
                   f" images/s ({_s((w.get('speedup_vs_recipe') or {}).get('value'))}x the recipe's), "
                   f"{_s(w.get('gpu_j_per_image'), '{:.4f}')} J/image, test accuracy {_accs(tw)}."))
    elif s.get("crowned"):
        out.append(("Winner", f"- the winner, {w['name']} ({w['label']}), reaches it in {_t(tw.get('cold'))} s cold "
                   f"({_s(w.get('time_to_target_ratio_cold'))}x sooner) and {_t(tw.get('warm'))} s warm "
                   f"({_s(w.get('time_to_target_ratio_warm'))}x sooner), at {_s(w['images_per_s']['median'], '{:.0f}')}"
                   f" images/s ({_s((w.get('speedup_vs_recipe') or {}).get('value'))}x the recipe's), "
                   f"{_s(w.get('gpu_j_per_image'), '{:.4f}')} J/image, test accuracy {_accs(tw)};"))
    else:
        out.append(("Winner", f"- {s['winner_rule']};"))
    tuned = next((r for r in rows if r.get("id") == "lr_schedule"), None)
    if tuned is not None and tuned is not w and s.get("crowned"):
        tt = tuned["time_to_target"]
        rate = _optimizer(tuned["levers"], base_lr)
        out.append(("Tuned baseline", f"- the tutorial with the suite's learning rate ({rate}) "
                   f"reaches it in {_t(tt.get('cold'))} s cold and {_t(tt.get('warm'))} s warm, "
                   f"test accuracy {_accs(tt)}: against that baseline the winner is "
                   f"{_s(_ratio(tt.get('cold'), tw.get('cold')))}x sooner cold and "
                   f"{_s(_ratio(tt.get('warm'), tw.get('warm')))}x warm;"))
    if lead is not None and lead is not w:
        out.append(("Throughput leader", "- " + _leader(lead, "the throughput leader") + "."))
    return out


def leader_row(res: dict, record: str) -> tuple[str, str]:
    """The throughput leader of another record (a run with the recipe beside it), as a headline row."""
    s = res["summary"]
    lead = res["rungs"][s["throughput_leader_index"]] if s.get("throughput_leader_index") is not None else None
    if lead is None:
        return ("Throughput leader", f"- {record}: no rung has a measured throughput.")
    env = res.get("environment", {})
    commit = str((env.get("git") or {}).get("commit") or "unknown")[:7]
    r0 = res["rungs"][0]["time_to_target"]
    return ("Throughput leader", f"- in {record} (commit {commit}, the same recipe measured beside it: "
            f"{_t(r0.get('cold'))} s cold, {_t(r0.get('warm'))} s warm), " + _leader(lead, "the throughput leader")
            + ".")


def _leader(lead: dict, what: str) -> str:
    tl = lead["time_to_target"]
    return (f"{what}, {lead['name']}, trains at {_s(lead['images_per_s']['median'], '{:.0f}')} images/s "
            f"({_s((lead.get('speedup_vs_recipe') or {}).get('value'))}x the recipe's) but reaches the target in "
            f"{_t(tl.get('cold'))} s cold ({_s(lead.get('time_to_target_ratio_cold'))}x the recipe's speed) and "
            f"{_t(tl.get('warm'))} s warm ({_s(lead.get('time_to_target_ratio_warm'))}x)"
            + (f"; {lead['gate_reason']}" if lead.get("gate_reason") else ""))


def _ratio(a: dict | None, b: dict | None) -> float | None:
    return a["median"] / b["median"] if a and b and b["median"] else None


def _sci(v: float) -> str:
    """1e-5, 1.5e-3: a learning rate as people write it."""
    m, e = f"{v:e}".split("e")
    return f"{m.rstrip('0').rstrip('.')}e{int(e)}"


def _optimizer(levers: dict, base_lr: float | None = None) -> str:
    """Adam's rate and schedule as a rung ran them (``base_lr``: the spec's rate at the recipe's batch)."""
    rate = levers.get("lr") or base_lr
    rate_text = _sci(rate) if rate else "LEARNING_RATE"
    if levers.get("lr_schedule") == "constant":
        return f"Adam at {rate_text}, constant"
    return f"Adam at {rate_text} with warm-up + cosine decay"


def headline(res: dict, device: str = "cuda", others: list[tuple[str, dict]] = ()) -> str:
    """The README's "Measured results" block, printed from a record (a test keeps them equal);
    ``others``: (name, record) of further runs whose throughput leader is stated beside it."""
    rows = [text for _, text in headline_rows(res, device) + [leader_row(r, name) for name, r in others]]
    bullets = [i for i, text in enumerate(rows) if text.startswith("- ")]
    for i in bullets:  # one sentence: every bullet ends in ";" and the last in "."
        rows[i] = rows[i].rstrip(".;") + ("." if i == bullets[-1] else ";")
    return "\n".join(rows)


def _accs(t: dict) -> str:
    return ", ".join(f"{100 * a:.2f}%" if a is not None else "n/a" for a in t["test_accuracy_per_seed"].values())
