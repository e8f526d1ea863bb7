"""The run's Chrome trace: valid JSON object format with slices and counters on one clock,
one process per device, and only measured values (a failed sensor has no track)."""

from __future__ import annotations

import json
import time

from common.measure.samplers import Monitor, wait_for_samples
from common.measure.timing import Timer
from common.measure.trace import CPU_PID, GPU_PID, build_trace, check_trace, write_trace


def test_trace_of_real_spans_and_samples(tmp_path):
    timeline: list = []
    timer = Timer("cpu", tag="training", sink=timeline)
    with Monitor(hz=50, gpu_index=None) as mon:
        t0 = time.perf_counter()
        for step in range(3):
            with timer.window("step", step=step):
                with timer.window("forward", step=step):
                    time.sleep(0.01)
                with timer.window("backward", step=step):
                    time.sleep(0.02)
        wait_for_samples(mon.cpu, 3)
        t1 = time.perf_counter()
    sections = [{"name": "pipeline_deep_dive", "start": t0, "end": t1, "status": "ok"}]
    path = write_trace(tmp_path / "trace.json", mon.to_dict(), [s.to_dict() for s in timeline], sections, "cpu")
    trace = json.loads(path.read_text())
    counts = check_trace(trace)
    assert counts["X"] == 1 + 9 and counts["C"] > 0
    slices = [e for e in trace["traceEvents"] if e["ph"] == "X"]
    assert {e["pid"] for e in slices} == {CPU_PID}
    fwd = [e for e in slices if e["name"] == "forward"]
    assert len(fwd) == 3 and all(9_000 <= e["dur"] < 200_000 for e in fwd)  # µs of a 10 ms sleep
    sec = next(e for e in slices if e["cat"] == "section")
    assert all(sec["ts"] <= e["ts"] and e["ts"] + e["dur"] <= sec["ts"] + sec["dur"] + 1 for e in fwd)
    names = {e["name"] for e in trace["traceEvents"] if e["ph"] == "C"}
    assert {"cpu_total_pct", "cpu_per_core_pct", "ram_used_mib", "process_rss_mib"} <= names
    assert all(e["ts"] >= 0 for e in trace["traceEvents"] if "ts" in e)


def test_gpu_counters_get_their_own_process_and_energy_starts_at_zero():
    samples = [{"t": 10.0 + i, "gpu_util_pct": 50 + i, "power_w": 300.0, "energy_mj": 1000 + 500 * i,
                "temperature_c": None, "throttle_mask": 4} for i in range(3)]
    monitor = {"cpu": {"samples": [], "errors": {"rapl_uj": "no RAPL"}},
               "gpu": {"index": 0, "samples": samples, "errors": {"temperature_c": "NVMLError: not supported"}},
               "unavailable": {}}
    spans = [{"name": "forward", "start": 10.5, "end": 10.7, "depth": 0, "tag": "train"}]
    trace = build_trace(monitor, spans, [], "cuda")
    check_trace(trace)
    ev = trace["traceEvents"]
    assert {e["pid"] for e in ev if e["ph"] == "C"} == {GPU_PID}
    assert {e["pid"] for e in ev if e["ph"] == "X"} == {GPU_PID}
    energy = [e["args"]["energy_mj"] for e in ev if e["name"] == "energy since start (J)"]
    assert energy == [0.0, 0.5, 1.0]
    assert not any(e["name"] == "temperature_c" for e in ev)  # failed sensor: no track, reason kept
    assert trace["metadata"]["not_available"]["gpu.temperature_c"].startswith("NVMLError")
    assert trace["metadata"]["not_available"]["cpu.rapl_uj"] == "no RAPL"
    procs = {e["pid"]: e["args"]["name"] for e in ev if e["ph"] == "M" and e["name"] == "process_name"}
    assert procs == {CPU_PID: "CPU (host)", GPU_PID: "GPU 0"}
