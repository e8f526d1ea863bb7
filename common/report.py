"""The Markdown report of one result tree, built from its records alone: every figure,
the environment, the key numbers and the method."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from common.atomic import write_json, write_text
from common.errors import UserError
from common.formatting import fmt_or_na
from common.key_numbers import key_numbers
from common.layout import SECTIONS, file_name, record_paths
from common.measure.stats import BOOTSTRAP_RESAMPLES, CI_LEVEL, UNSTABLE_IQR_FRACTION
from common.records import Record, load_record


def _load(root: Path, device: str, base: str) -> Record | None:
    p = root / "metrics" / file_name(device, base)
    return load_record(p) if p.exists() else None


def _f(v: Any, fmt: str = "{:.3g}", reason: str | None = None) -> str:
    """The value formatted, or "n/a (<reason>)" where it is missing (None or NaN)."""
    return fmt_or_na(v, fmt, reason)


def _interval_text(d: dict | None, fmt: str = "{:.1f}") -> str:
    """'<kind> lo-hi' of a Summary/Ratio dict, or 'n/a (no interval)'."""
    from common.measure.stats import interval_label, interval_of

    iv, kind = interval_of(d)
    if iv is None:
        return "interval n/a (not recorded)"
    return f"{interval_label(kind)} {fmt.format(iv[0])}-{fmt.format(iv[1])}"




def write_report(root: Path, device: str) -> Path:
    summary = _load(root, device, "run_summary.json")
    records: dict[str, Record] = {}
    for sec in SECTIONS:
        kind, folder = sec.name, sec.folder
        path = record_paths(root, device, kind, folder)[0]
        if path.exists():
            records[kind] = load_record(path)
    env = (summary.environment if summary else None) or next((r.environment for r in records.values()), {})
    reports = root / "reports"
    reports.mkdir(parents=True, exist_ok=True)
    dev_name = "GPU" if device == "cuda" else "CPU"
    lines = [f"# {dev_name} analysis report", ""] + _environment_lines(env, summary)
    lines += ["", "## Key numbers", "", "| | |", "|---|---|"]
    try:
        kn = key_numbers(records)
    except (KeyError, TypeError, IndexError) as err:
        raise UserError(f"{root / 'metrics'}: a record lacks field {err} needed for the key numbers; re-run the "
                        "section whose record it is (--sections NAME), or the analysis") from None
    lines += [f"| {k} | {v} |" for k, v in kn] or ["| (no section finished) | |"]
    key_png = file_name(device, "key_numbers.png")
    lines += ["", f"![key numbers]({key_png})"]
    figures: list[str] = [f"reports/{key_png}"]
    lines += ["", "## Figures", ""] + _figure_lines(root, device, records, summary, figures)
    lines += _summary_lines(summary) + files_section(root, reports, file_name(device, ""))
    lines += _method_lines(env.get("config") or {})
    path = reports / file_name(device, "report.md")
    write_text(path, "\n".join(lines) + "\n")
    write_json(reports / file_name(device, "report_index.json"),
               {"report": path.name, "figures": figures, "key_numbers": dict(kn)})
    _key_numbers_figure(kn, env, reports / file_name(device, "key_numbers.png"), dev_name)
    return path


def _environment_lines(env: dict[str, Any], summary: Record | None = None) -> list[str]:
    lines: list[str] = []
    ds = env.get("dataset") or {}
    cfg = env.get("config") or {}
    if ds.get("synthetic"):
        lines += ["> **The MedNIST data of this run is SYNTHETIC** (generated offline); its numbers describe the "
                  "pipeline, not real images.", ""]
    if ds.get("source") == "embedded subset":
        lines += ["> **The MedNIST data of this run is the embedded subset** (360 real images, 60 per class, shipped "
                  "in the repository): numbers on it describe the pipeline on few images, not the full dataset.", ""]
    if cfg.get("quick"):
        lines += ["> Quick mode: fewer steps, repeats, epochs and images than the default run.", ""]
    lines += interruption_lines(summary)
    lines += ["## Environment", "", "| | |", "|---|---|"]
    env_rows = environment_rows(env)
    return lines + [f"| {k} | {v} |" for k, v in env_rows]


def environment_rows(env: dict) -> list[tuple[str, Any]]:
    """The environment table of a report: (what, value) rows."""
    gpu = (env.get("gpu") or {})
    git = env.get("git") or {}
    devs = gpu.get("devices") or []
    ds = env.get("dataset") or {}
    return [
        ("time (UTC)", env.get("time_utc")), ("host", env.get("hostname")), ("OS", env.get("os")),
        ("GPU", ", ".join(d["name"] for d in devs) if devs else gpu.get("reason")),
        ("driver / CUDA", f"{gpu.get('driver')} / {gpu.get('torch_cuda')}" if devs else None),
        ("CPU", f"{env.get('cpu_model')} ({env.get('physical_cores')} physical / {env.get('logical_cores')} logical "
                f"cores, {env.get('threads_used')} threads used)"),
        ("RAM", _f(env.get("ram_gib"), "{:.1f} GiB", "not readable")),
        ("torch / MONAI / numpy / Python", f"{env.get('torch')} / {env.get('monai')} / {env.get('numpy')} / "
                                           f"{env.get('python')}"),
        ("git commit", f"{git.get('commit')}{' (dirty)' if git.get('dirty') else ''}"),
        ("dataset", f"{ds.get('source')} ({ds.get('total')} images{', SYNTHETIC' if ds.get('synthetic') else ''}, "
                    f"archive md5 {ds.get('archive_md5')})" if ds else "n/a"),
        ("seed", env.get("seed")),
    ]


def files_section(root: Path, reports: Path, prefix: str) -> list[str]:
    """Markdown lines naming the trace, the profiler trace and the CSV exports of a tree."""
    lines = ["## Files", ""]
    trace = root / "metrics" / f"{prefix}trace.json"
    if trace.exists():
        lines.append(f"- Timeline: [{trace.name}]({os.path.relpath(trace, reports)}) (Chrome trace JSON: open it in "
                     "https://ui.perfetto.dev or chrome://tracing; sections and stages as slices, every sampler "
                     "series as a counter track, one process per device)")
    for prof in sorted((root / "metrics").glob(f"{prefix}*profiler*.json")):
        lines.append(f"- torch.profiler trace of a few training steps: [{prof.name}]({os.path.relpath(prof, reports)})")
    lines.append(f"- CSV exports (every table of this report, the tables inside the records, the sampler time "
                 f"series): [csv/]({os.path.relpath(root / 'csv', reports)})")
    return lines + [""]


def _figure_lines(root: Path, device: str, records: dict[str, Record], summary: Record | None,
                  figures: list[str]) -> list[str]:
    """Each section's figures and record, linked from reports/ (``figures`` collects their paths)."""
    reports = root / "reports"
    lines: list[str] = []
    for sec in SECTIONS:
        kind, folder = sec.name, sec.folder
        st = (summary.data["sections"].get(kind) if summary else None) or {}
        rec = records.get(kind)
        lines.append(f"### {kind.replace('_', ' ')}")
        lines.append("")
        if rec is None:
            lines += ["not run in this analysis.", ""]
            continue
        if rec.status != "ok":
            lines += [f"**{rec.status}**: {rec.reason}", ""]
        figs = st.get("figures") or sorted(str(p.relative_to(root)) for p in (root / folder).glob("*.png")) \
            if folder else st.get("figures") or []
        if not figs and folder == "":
            figs = [p.name for p in root.glob("*winning_solution_analysis.png")]
        for f in figs:
            rel = os.path.relpath(root / f, reports)
            figures.append(f)
            lines += [f"![{Path(f).stem}]({rel})", ""]
        rel_rec = os.path.relpath(record_paths(root, device, kind, folder)[0], reports)
        lines += [f"Record: [{Path(rel_rec).name}]({rel_rec})", ""]
    overview = root / "metrics" / file_name(device, "run_overview.png")
    if overview.exists():
        figures.append(str(overview.relative_to(root)))
        lines += ["### run overview", "", f"![run overview]({os.path.relpath(overview, reports)})", ""]
    return lines


def _summary_lines(summary: Record | None) -> list[str]:
    lines: list[str] = []
    if summary is not None:
        lines += data_problem_lines(summary.data)
        lines += ["", "## Sampler overhead", ""]
        for name, ov in (summary.data.get("sampler_overhead") or {}).items():
            fams = "; ".join(f"{k} {_f(v.get('mean_ms'), '{:.3f} ms', 'no reads')}"
                             + (" (slow)" if v.get("slow") else "") for k, v in (ov.get("families") or {}).items())
            lines.append(f"- {name}: {ov.get('samples')} samples, mean read "
                         f"{_f(ov.get('mean_read_ms'), '{:.2f} ms', 'no samples')}, busy fraction "
                         f"{_f(ov.get('busy_fraction'), '{:.4f}', 'not started')}"
                         + (f"; per family: {fams}" if fams else ""))
        for name, why in (summary.data.get("sampler_unavailable") or {}).items():
            lines.append(f"- {name} sampler not available: {why}")
        lines.append("")
    return lines


def _method_lines(cfg: dict[str, Any]) -> list[str]:
    return ["## Method", "",
              "- Every number was measured in this run on this machine; a sensor that does not exist gives `null` "
              "with its reason, and the figures say so.",
              "- Device work is timed with synchronization at window edges; warm-up (cuDNN autotune, graph capture, "
              "first batches) is recorded apart and excluded.",
              f"- Windows are repeated; figures show medians with {CI_LEVEL:.0%} bootstrap intervals "
              f"({cfg.get('bootstrap_resamples', BOOTSTRAP_RESAMPLES)} resamples); a measurement whose IQR exceeds "
              f"{cfg.get('unstable_iqr_fraction', UNSTABLE_IQR_FRACTION):.0%} of its median is flagged unstable in the "
              "records.",
              "- Stage breakdowns come from steps synchronized at every stage edge; throughputs from unsynchronized "
              "windows. Energy comes from hardware counters (NVML total energy, RAPL), never from power × time "
              "estimates.",
              "- The optimization ladder changes one lever per rung and trains every rung to the target validation "
              "accuracy (`TARGET_VAL_ACCURACY`) or its epoch budget, each run in a fresh process, cold (empty caches) "
              "and then warm (a second process reusing the decoded data and the compile caches), on every seed of "
              "`LADDER_SEEDS`. Its clock runs from the rung's start to the end of the epoch that reached the target, "
              "every one-time cost on it (decode, upload, worker start, cuDNN, compilation, capture, validation "
              "passes); process start (`import torch, monai`) is recorded beside it. A rung passes the gate when on "
              "every seed it reached the target and kept a test accuracy of at least the recipe's lowest seed minus "
              "`ACCURACY_TOLERANCE`; the winner is the passing rung with the shortest median cold time to target "
              "(optionally only among those at most `WINNER_MAX_J_PER_IMAGE` J/image). Throughput and J/image come "
              "from `ENERGY_WINDOW_S` of sustained training after the target (whole epochs where DataLoader workers "
              "feed the rung), with board temperature, SM clock and idle power beside them; they are reported, "
              "never crowned.", ""]


def _key_numbers_figure(rows, env, path: Path, dev_name: str) -> None:
    import textwrap

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from common.atomic import save_figure

    fig, ax = plt.subplots(figsize=(12, 0.55 * max(len(rows), 1) + 1.2))
    ax.set_axis_off()
    y = 1.0
    for k, v in rows or [("no section finished", "")]:
        ax.text(0.0, y, k, fontsize=9, fontweight="bold", va="top", transform=ax.transAxes)
        ax.text(0.27, y, "\n".join(textwrap.wrap(v, 110)), fontsize=9, va="top", transform=ax.transAxes)
        y -= 1.0 / max(len(rows), 1)
    fig.suptitle(f"{dev_name} analysis: key numbers ({env.get('time_utc', '')})", fontsize=11)
    save_figure(fig, path)


def data_problem_lines(data: dict, limit: int = 200) -> list[str]:
    """The report's "Data problems" section: every skipped, converted or ignored file named
    (up to ``limit`` of each, the rest counted), with the rule that was applied."""
    lines = ["## Data problems", "",
             "Every image was decoded and checked before any section ran (`common/data/imagecheck.py`): a file that "
             "cannot be decoded, is not 64x64 or is deeper than 8 bits is skipped; an 8-bit image that is not "
             "grayscale is converted to grayscale; entries that are not one of the six class folders, or not an "
             "image inside one, are ignored.", ""]
    groups = (("skipped_images", "image(s) could not be used and were skipped"),
              ("converted_images", "image(s) were converted to 8-bit grayscale"),
              ("ignored_entries", "entry(ies) of the data folder were ignored (never a class, never a sample)"))
    for key, text in groups:
        items = data.get(key) or []
        lines.append(f"{len(items)} {text}.")
        lines += [f"- `{p}`: {why}" for p, why in items[:limit]]
        if len(items) > limit:
            lines.append(f"- ... and {len(items) - limit} more (all of them in the run summary record)")
        lines.append("")
    return lines


def interruption_lines(summary: Record | None) -> list[str]:
    """A banner saying which sections did not finish, when the run was interrupted or left
    no summary."""
    if summary is None:
        return ["> **No run summary**: the run that wrote these records did not finish. Sections without a record "
                "below were not run; `--resume` finishes the run.", ""]
    intr = summary.data.get("interrupted")
    if not intr:
        return []
    done = ", ".join(intr.get("finished") or []) or "none"
    missing = ", ".join(intr.get("not_run") or []) or "none"
    return [f"> **This run was interrupted ({intr.get('signal')})** during {intr.get('during') or 'set-up'}. "
            f"Finished: {done}. Not run: {missing}. Run the same command with `--resume` to finish it.", ""]
