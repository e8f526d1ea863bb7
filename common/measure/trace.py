"""One run as a Chrome trace (JSON object format), which Perfetto (ui.perfetto.dev) and
chrome://tracing open: sections and stage spans as complete slices ("X"), every sampler series
as counter tracks ("C"), all on the run's one clock (``perf_counter``, shown in microseconds from
the first event). One process per device: the host CPU (its sampler's counters) and, on a GPU run,
the GPU (its NVML counters); the spans sit on the process of the device the analysis ran on,
one thread per tag (the section or configuration that opened them).

Only measured values go in: a sensor that failed or does not exist has no counter track, and the
reason is kept in the trace's ``metadata``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from common.atomic import write_json

CPU_PID, GPU_PID = 1, 2
SECTIONS_TID = 1


def _us(t: float, t0: float) -> float:
    return round((t - t0) * 1e6, 3)


def _meta(pid: int, tid: int | None, name: str, value: str) -> dict:
    ev = {"ph": "M", "pid": pid, "name": name, "args": {"name": value}}
    if tid is not None:
        ev["tid"] = tid
    return ev


def _flat(key: str, value: Any) -> dict[str, float] | None:
    """A sample field as counter values: numbers as they are, dicts by their keys, lists by index;
    cumulative energy counters are left to ``_energy`` (their level is meaningless)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return {key: float(value)}
    if isinstance(value, dict):
        out = {str(k): float(v) for k, v in value.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        return out or None
    if isinstance(value, (list, tuple)):
        out = {f"{i}": float(v) for i, v in enumerate(value) if isinstance(v, (int, float))}
        return out or None
    return None


ENERGY_FIELDS = {"energy_mj": ("energy since start (J)", 1e-3), "rapl_uj": ("RAPL energy since start (J)", 1e-6)}
SKIP_FIELDS = {"t", "throttle_mask"}


def _counter_events(samples: list[dict], pid: int, t0: float) -> list[dict]:
    events: list[dict] = []
    first_energy: dict[str, Any] = {}
    for s in samples:
        ts = _us(s["t"], t0)
        for key, value in s.items():
            if key in SKIP_FIELDS:
                continue
            if key in ENERGY_FIELDS:
                label, scale = ENERGY_FIELDS[key]
                flat = _flat(key, value)
                if not flat:
                    continue
                base = first_energy.setdefault(key, flat)
                args = {k: (v - base.get(k, v)) * scale for k, v in flat.items()}
                events.append({"ph": "C", "pid": pid, "name": label, "ts": ts, "args": args})
                continue
            flat = _flat(key, value)
            if flat:
                events.append({"ph": "C", "pid": pid, "name": key, "ts": ts, "args": flat})
        if s.get("throttle_mask") is not None:
            events.append({"ph": "C", "pid": pid, "name": "throttle_mask", "ts": ts,
                           "args": {"throttle_mask": float(s["throttle_mask"])}})
    return events


def build_trace(monitor: dict | None, spans: list[dict], sections: list[dict], device: str,
                title: str = "analysis") -> dict[str, Any]:
    """The trace as a dict: ``spans`` are Span.to_dict()s, ``sections`` {name, start, end, status}s,
    ``monitor`` is Monitor.to_dict() (or None); ``device`` "cuda" or "cpu"."""
    monitor = monitor or {}
    cpu = monitor.get("cpu") or {}
    gpu = monitor.get("gpu") or {}
    times = [s["start"] for s in spans] + [s["start"] for s in sections]
    times += [x["t"] for x in (cpu.get("samples") or [])] + [x["t"] for x in (gpu.get("samples") or [])]
    t0 = min(times) if times else 0.0
    run_pid = GPU_PID if device == "cuda" else CPU_PID
    events: list[dict] = [_meta(CPU_PID, None, "process_name", "CPU (host)")]
    if device == "cuda" or gpu:
        events.append(_meta(GPU_PID, None, "process_name", f"GPU {gpu.get('index', 0)}"))
    events.append(_meta(run_pid, SECTIONS_TID, "thread_name", f"{title}: sections"))
    for sec in sections:
        events.append({"ph": "X", "pid": run_pid, "tid": SECTIONS_TID, "name": sec["name"], "cat": "section",
                       "ts": _us(sec["start"], t0), "dur": _us(sec["end"], sec["start"]),
                       "args": {"status": sec.get("status")}})
    tids: dict[str, int] = {}
    for sp in sorted(spans, key=lambda s: (s["start"], -s["end"])):
        tag = sp.get("tag") or "spans"
        if tag not in tids:
            tids[tag] = SECTIONS_TID + 1 + len(tids)
            events.append(_meta(run_pid, tids[tag], "thread_name", tag))
        args = {k: sp[k] for k in ("step", "warmup", "cuda_ms", "depth") if sp.get(k) is not None}
        events.append({"ph": "X", "pid": run_pid, "tid": tids[tag], "name": sp["name"],
                       "cat": "warmup" if sp.get("warmup") else "stage", "ts": _us(sp["start"], t0),
                       "dur": _us(sp["end"], sp["start"]), "args": args})
    events += _counter_events(cpu.get("samples") or [], CPU_PID, t0)
    events += _counter_events(gpu.get("samples") or [], GPU_PID, t0)
    missing = {f"cpu.{k}": v for k, v in (cpu.get("errors") or {}).items()}
    missing.update({f"gpu.{k}": v for k, v in (gpu.get("errors") or {}).items()})
    missing.update({f"sampler.{k}": v for k, v in (monitor.get("unavailable") or {}).items()})
    return {"traceEvents": events, "displayTimeUnit": "ms",
            "metadata": {"title": title, "device": device, "clock": "time.perf_counter (CLOCK_MONOTONIC)",
                         "clock_origin_s": t0, "not_available": missing}}


def write_trace(path: str | Path, monitor: dict | None, spans: list[dict], sections: list[dict], device: str,
                title: str = "analysis") -> Path:
    return write_json(path, build_trace(monitor, spans, sections, device, title), indent=None)


def check_trace(trace: dict) -> dict[str, int]:
    """Counts of slices and counters; raises ValueError where the trace breaks the format
    (the checks Perfetto's JSON importer needs)."""
    events = trace.get("traceEvents")
    if not isinstance(events, list):
        raise ValueError("traceEvents is not a list")
    counts = {"X": 0, "C": 0, "M": 0}
    for ev in events:
        ph = ev.get("ph")
        if ph not in counts or not isinstance(ev.get("pid"), int) or not isinstance(ev.get("name"), str):
            raise ValueError(f"bad event {ev}")
        if ph == "X" and not (ev["dur"] >= 0 and isinstance(ev.get("tid"), int)):
            raise ValueError(f"bad slice {ev}")
        if ph in ("X", "C") and not isinstance(ev.get("ts"), (int, float)):
            raise ValueError(f"event without ts {ev}")
        if ph == "C" and not all(isinstance(v, (int, float)) for v in ev["args"].values()):
            raise ValueError(f"counter with a non-numeric value {ev}")
        counts[ph] += 1
    return counts
