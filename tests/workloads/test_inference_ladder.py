"""The inference ladder on tiny inputs (seconds on 2 cores): it runs and names winners, the
agreement check refuses a rung that changes predictions (even the fastest), the latency budget
picks the right batch, and an engine that is missing is skipped with its reason."""

from __future__ import annotations

import sys
import time

import numpy as np
import pytest
import torch
from PIL import Image

from common.workloads import inference_ladder as il
from common.workloads.inference_engines import RungSkipped, ServeLevers, build_predictor
from common.workloads.serving import end_to_end

CPU = torch.device("cpu")


class TinyNet(torch.nn.Module):
    """Conv + BN + ReLU + linear head, 1 channel in, 6 classes out: every lever applies to it."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(1, 8, 3, padding=1)
        self.bn = torch.nn.BatchNorm2d(8)
        self.head = torch.nn.Linear(8, 6)

    def forward(self, x):
        return self.head(torch.relu(self.bn(self.conv(x))).mean((2, 3))) * 10


def _images(n: int = 24) -> torch.Tensor:
    return torch.rand(n, 1, 64, 64, generator=torch.Generator().manual_seed(1))


def _cfg(**kw) -> il.LadderConfig:
    base = dict(latency_calls=15, batch_sizes=(1, 4), curve_seconds=0.0, budget_ms=1000.0, min_agreement=0.999)
    return il.LadderConfig(**{**base, **kw})


def _inputs(**kw) -> il.LadderInputs:
    return il.LadderInputs(TinyNet().eval(), _images(), CPU, _cfg(**kw))


def _rungs() -> list[il.ServeRung]:
    return [r for r in il.cpu_rungs()[0] if not r.name.startswith(("torch.compile", "bf16"))]


def test_ladder_runs_and_names_winners():
    res = il.run_ladder(_inputs(), _rungs(), ["test"])
    names = [r["name"] for r in res["rungs"]]
    assert names[0] == "eager fp32" and "threads" in names and "ONNX Runtime" in names
    base = res["rungs"][0]
    assert base["status"] == "ok" and base["agreement"]["top1_agreement"] == 1.0
    assert base["latency"]["calls"] == 15 and base["latency"]["p50_ms"] <= base["latency"]["p99_ms"]
    assert [row["batch_size"] for row in base["curve"]] == [1, 4]
    probe = next(r for r in res["rungs"] if r["name"] == "threads")["probe"]
    assert probe and all(p["p50_ms"] > 0 for p in probe)
    for r in res["rungs"]:
        assert r["status"] in ("ok", "skipped"), r
        if r["status"] == "skipped":
            assert r["reason"]
        else:  # fp32 rungs of the same network: same predictions
            assert r["levers"]["precision"] != "fp32" or r["agreement"]["passed"], r["agreement"]
    win = res["latency_winner"]
    fastest = min((r for r in res["rungs"] if r["status"] == "ok" and r["agreement"]["passed"]),
                  key=lambda r: r["latency"]["p50_ms"])
    assert win["name"] == fastest["name"]
    assert res["throughput_winner"]["batch_size"] in (1, 4)
    assert res["notes"] == ["test"]


class _Broken:
    """The fastest predictor there is: a constant answer (wrong for most images)."""

    def __init__(self, *_a):
        self.out = {}

    def prepare(self, batch):
        return 0.0

    def __call__(self, x):
        return self.out.setdefault(x.shape[0], torch.arange(6.0).repeat(x.shape[0], 1))


def test_a_rung_that_changes_predictions_cannot_win(monkeypatch):
    real = il.build_predictor

    def build(model, levers, device):
        return _Broken() if levers.channels_last else real(model, levers, device)

    monkeypatch.setattr(il, "build_predictor", build)
    rung = il.ServeRung("broken", "a constant answer", lambda c: c.replace(channels_last=True))
    res = il.run_ladder(_inputs(), [rung], [])
    broken = res["rungs"][1]
    assert broken["status"] == "ok" and not broken["agreement"]["passed"]
    assert broken["agreement"]["top1_agreement"] < 0.999 and broken["agreement"]["max_abs_logit_diff"] > 0
    assert broken["latency"]["p50_ms"] < res["rungs"][0]["latency"]["p50_ms"]  # fastest, yet
    assert not broken["kept"] and res["latency_winner"]["name"] == "eager fp32"
    assert res["throughput_winner"]["name"] == "eager fp32"


class _FixedShape:
    """Like a CUDA-graph predictor: only the batch sizes it was prepared for run."""

    def __init__(self, model, levers, device):
        self.inner, self.ready = build_predictor(model, levers.replace(channels_last=False), device), set()

    def prepare(self, batch):
        self.ready.add(batch)
        return 0.0

    def __call__(self, x):
        if x.shape[0] not in self.ready:
            raise RuntimeError(f"no CUDA graph captured for batch {x.shape[0]}")
        return self.inner(x)


def test_fixed_shape_engines_run_only_prepared_shapes(monkeypatch):
    real = il.build_predictor
    monkeypatch.setattr(il, "build_predictor", lambda m, lv, d: _FixedShape(m, lv, d) if lv.channels_last
                        else real(m, lv, d))
    inp = _inputs(batch_sizes=(1, 8, 128))
    r = il.measure_rung(inp, "fixed", ServeLevers(channels_last=True), il._reference(inp))
    assert r["status"] == "ok" and r["agreement"]["passed"], r.get("reason")
    assert set(r["setup_s"]) == {"1", "8", "128"}  # the agreement check ran at batch 8, a curve batch


def _row(b, p99, ips):
    return {"batch_size": b, "p99_ms": p99, "images_per_s_median": ips, "error": None}


def test_budget_rule_picks_the_fastest_batch_within_the_budget():
    rows = [_row(1, 2.0, 500), _row(8, 6.0, 1300), _row(32, 9.9, 3200), _row(128, 30.0, 4200),
            {"batch_size": 512, "error": "out of memory"}]
    assert il.best_under_budget(rows, 10.0)["batch_size"] == 32
    assert il.best_under_budget(rows, 6.0)["batch_size"] == 8
    assert il.best_under_budget(rows, 100.0)["batch_size"] == 128
    assert il.best_under_budget(rows, 1.0) is None
    # a faster point over the budget never wins; the winner comes from the rung with the best in-budget point
    rungs = [{"name": "a", "status": "ok", "agreement": {"passed": True}, "latency": {"p50_ms": 2.0, "p99_ms": 3},
              "curve": rows, "levers": {"engine": "pytorch"}, "label": "a", "one_time_s": 0.0},
             {"name": "b", "status": "ok", "agreement": {"passed": True}, "latency": {"p50_ms": 1.0, "p99_ms": 2},
              "curve": [_row(1, 1.0, 900), _row(64, 11.0, 9000)], "levers": {"engine": "pytorch"}, "label": "b",
              "one_time_s": 5.0}]
    res = il.summarize(rungs, _cfg(budget_ms=10.0), [])
    assert res["throughput_winner"]["name"] == "a" and res["throughput_winner"]["batch_size"] == 32
    assert res["latency_winner"]["name"] == "b"
    assert rungs[1]["break_even_requests"] == pytest.approx(5.0e3 / 1.0)
    none = il.summarize(rungs, _cfg(budget_ms=0.5), [])
    assert none["throughput_winner"] is None and "0.5 ms" in none["throughput_winner_reason"]


def test_missing_engine_is_skipped_with_its_reason(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime -> ImportError
    with pytest.raises(RungSkipped, match="onnxruntime is not installed"):
        build_predictor(TinyNet(), ServeLevers(engine="onnxruntime"), CPU)
    inp = _inputs()
    r = il.measure_rung(inp, "ONNX Runtime", ServeLevers(engine="onnxruntime"), il._reference(inp))
    assert r["status"] == "skipped" and "pip install onnxruntime" in r["reason"]
    r = il.measure_rung(inp, "CUDA graph", ServeLevers(graph="cuda_graph"), il._reference(inp))
    assert r["status"] == "skipped" and "needs a CUDA device" in r["reason"]


def test_onnxruntime_matches_eager_where_installed():
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    model, x = TinyNet().eval(), _images(8)
    p = build_predictor(model, ServeLevers(engine="onnxruntime", cpu_threads=1), CPU)
    with torch.no_grad():
        assert torch.allclose(p(x), model(x), atol=1e-4)


def test_end_to_end_from_jpeg(tmp_path):
    paths = []
    for i in range(3):
        path = tmp_path / f"{i}.jpeg"
        Image.fromarray((np.arange(64 * 64).reshape(64, 64) * (i + 1) % 256).astype(np.uint8)).save(path)
        paths.append(str(path))
    p = build_predictor(TinyNet().eval(), ServeLevers(), CPU)

    class Slow:
        def __call__(self, x):
            time.sleep(0.005)
            return p(x)

    res = end_to_end(Slow(), paths, CPU, calls=6)
    stages = res["stage_p50_ms"]
    assert set(stages) == {"decode", "preprocess", "h2d", "model", "postprocess"}
    assert stages["model"] >= 5.0 and stages["decode"] > 0  # the 5 ms sleep lands in the model stage
    assert min(res["summary"]["values"]) >= 5.0 and res["calls"] == 6 == res["summary"]["n"]


@pytest.mark.gpu
def test_cuda_graph_and_bf16_rungs_agree_on_the_gpu():
    dev = torch.device("cuda")
    inp = il.LadderInputs(TinyNet().eval(), _images(), dev, _cfg())
    ref = il._reference(inp)
    for lv in (ServeLevers(graph="cuda_graph"), ServeLevers(graph="cuda_graph", precision="bf16_cast",
                                                            channels_last=True, grad_mode="inference_mode")):
        r = il.measure_rung(inp, lv.label(), lv, ref)
        assert r["status"] == "ok" and r["agreement"]["passed"], r
