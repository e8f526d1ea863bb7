"""docs/PERFORMANCE.md's numbers of device runs V-Y are the committed records' (docs/records/*_run_*.json):
the scaling tables are what `benchmarks/scaling.py --from-record` prints, and the issue 16 and 21 claims
are read back from their records."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
RECORDS = REPO / "docs" / "records"
DOC = (REPO / "docs" / "PERFORMANCE.md").read_text()


def _record(name: str) -> dict:
    return json.loads((RECORDS / name).read_text())


def test_scaling_rows_are_printed_from_the_records():
    from benchmarks.scaling import main

    for run in ("V", "X", "Z"):
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
            main(["--from-record", str(RECORDS / f"scaling_run_{run}.json")])
        rows = [line for line in out.getvalue().splitlines() if line.strip()[:1].isdigit()]
        assert rows, f"no rows printed from scaling_run_{run}.json"
        for row in rows:
            assert row in DOC, f"PERFORMANCE.md lacks run {run}'s row: {row}"


def test_inference_latency_claims_are_the_records():
    y = _record("inference_gpu_run_Y.json")
    rung = next(r for r in y["data"]["rungs"] if r["levers"]["graph"] == "compile_cuda_graph")
    p50, e2e = rung["latency"]["summary"]["median"], rung["end_to_end"]["p50_ms"]
    assert rung["agreement"]["top1_agreement"] == 1.0 and rung["agreement"]["passed"]
    assert f"**{p50:.3f}**" in DOC and f"**{e2e:.3f}**" in DOC
    assert f"Batch-1 model-only p50 is {p50:.3f} ms" in DOC
    assert p50 <= 1.5  # the bar, on the record
    w = _record("inference_gpu_run_W.json")
    graph = next(r for r in w["data"]["rungs"] if r["name"] == "CUDA graph")
    assert f"{graph['latency']['summary']['median']:.3f}" in DOC


def test_sampler_overhead_and_power_claims_are_the_records():
    w = _record("sampler_overhead_run_W.json")
    lo, hi = w["overhead"]["ci95"]
    assert f"**{100 * w['overhead']['mean']:.2f}%, 95% CI [{100 * lo:.2f}%, {100 * hi:.2f}%]**".replace("-", "−") in DOC
    reads = {name: s["mean_read_ms"] for name, s in w["sampler_read_time"].items()}
    assert f"CPU sampler {reads['cpu']:.2f} ms, GPU sampler {reads['gpu']:.2f} ms" in DOC
    assert max(reads.values()) < 1.0 and w["target_met"]
    x = _record("measure_gpu_run_X.json")["nvml_vs_nvidia_smi"]
    assert f"| {x['sampler_power_w']:.1f} W | {x['counter_power_w']:.1f} W | {x['nvidia_smi_w']:.1f} W |" in DOC
    tick = _record("measure_gpu_run_X.json")["gpu_sampler_10hz"]["mean_read_ms"]
    assert f"**{tick:.2f} ms per tick at 10 Hz**" in DOC


def test_readme_sampler_claims_are_the_records():
    readme = (REPO / "README.md").read_text()
    w = _record("sampler_overhead_run_W.json")["overhead"]
    lo, hi = w["ci95"]
    claim = f"{100 * w['mean']:.2f}% [{100 * lo:.2f}, {100 * hi:.2f}]".replace("-", "−")
    assert claim in readme and "run W" in readme
    x = _record("measure_gpu_run_X.json")["gpu_sampler_10hz"]["families"]["energy_mj"]["mean_ms"]
    assert f"energy counter: {x:.1f} ms a read" in readme


def test_time_to_target_table_of_run_ab_is_printed_from_its_record():
    from benchmarks.winning_solution import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        main(["--from-record", str(RECORDS / "winning_solution_run_AB.json")])
    lines = [line for line in out.getvalue().splitlines() if line.strip()]
    assert any("cuda_graph" in line or "warmed" in line for line in lines)
    for line in lines:
        assert line in DOC, f"PERFORMANCE.md lacks run AB's line: {line}"
    prewarm = next(r for r in _record("winning_solution_run_AB.json")["rungs"] if r["id"] == "cuda_graph_prewarm")
    cold = prewarm["time_to_target"]["cold"]
    assert f"**{cold['median']:.1f} s [{cold['min']:.1f}-{cold['max']:.1f}] against" in DOC


def test_runs_ac_to_af_are_what_their_records_print():
    """Run AD's table, run AC's schedule choice and the numbers quoted from runs AC, AE and AF."""
    from benchmarks.winning_solution import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        main(["--from-record", str(RECORDS / "winning_solution_run_AD.json")])
    for line in out.getvalue().splitlines():
        if line.strip():
            assert line in DOC, f"PERFORMANCE.md lacks run AD's line: {line}"
    from benchmarks.schedule_probe import from_records

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        from_records([str(RECORDS / "schedule_probe_run_AC.json")], None, None)
    for line in out.getvalue().splitlines():
        if not line.startswith("batch "):  # the header names the record's path
            assert line in DOC, f"PERFORMANCE.md lacks run AC's schedule line: {line}"
    probes = _record("warmup_probe_run_AC.json")["probes"]
    first = {("gemm" if "gemm_1x1" in k else "conv"): v["setup_seconds"]["graph_warmup_steps"][0]
             for k, v in probes.items()}
    assert f"{first['conv']:.2f} s with cuDNN's convolutions and {first['gemm']:.2f} s with" in DOC
    gpu = _record("measure_gpu_run_AE.json")
    assert f"{gpu['gemm_1x1_vs_conv_bf16']['grad_rel_diff']:.1e}".replace("e-05", "e-5") in DOC
    assert gpu["prewarm_on_cuda"]["losses_prewarmed"] == gpu["prewarm_on_cuda"]["losses_cold"]
    af = {r["id"]: r for r in _record("winning_solution_run_AF.json")["rungs"]}
    win = af["schedule_b150"]["time_to_target"]
    runs = [r for r in win["runs"] if r["kind"] == "cold"]
    lo, hi = min(r["time_to_target_s"] for r in runs), max(r["time_to_target_s"] for r in runs)
    assert f"**{lo:.2f}-{hi:.2f} s**" in DOC
    ratio = af["recipe"]["time_to_target"]["cold"]["median"] / win["cold"]["median"]
    assert f"{ratio:.1f}x sooner cold" in DOC


def test_runs_ag_to_aj_claims_are_their_records():
    """The recipe's epochs and the alone-vs-beside ranges quoted for runs AG-AJ."""
    text = (REPO / "docs" / "PERFORMANCE.md").read_text()
    recipe_runs = [x for run in ("AG", "AH", "AI")
                   for x in _record(f"winning_solution_run_{run}.json")["rungs"][0]["time_to_target"]["runs"]]
    assert len(recipe_runs) == 15 and {x["epochs_to_target"] for x in recipe_runs} == {9, 10}
    assert "in all 15 of its runs" in text
    times = [x["time_to_target_s"] for x in recipe_runs]
    assert f"({min(times):.0f}-{max(times):.0f} s)" in text
    alone = [x for g in _record("ttt_probe_run_AJ.json")["rungs"] for x in g["runs"]]
    cold = [x["time_to_target_s"] for x in alone if x["kind"] == "cold"]
    warm = [x["time_to_target_s"] for x in alone if x["kind"] == "warm"]
    prewarm = [x["one_time_s"]["prewarm"]["total_s"] for x in alone]
    assert (f"{min(cold):.1f}-{max(cold):.1f} s cold and\n  {min(warm):.1f}-{max(warm):.1f} s warm, "
            f"with the prewarm at {min(prewarm):.2f}-{max(prewarm):.2f} s") in text
