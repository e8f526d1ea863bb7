"""common.workloads.training and levers: staged steps whose stages add up to the step,
levers that change what they name and nothing else, a tutorial run that learns on real
MedNIST, and timed windows checked against known work."""

from __future__ import annotations

import dataclasses
import time

import pytest
import torch

import config
from common.data.mednist import list_images, load_manifest, mednist_root, split_dataset
from common.measure.timing import Timer
from common.workloads.levers import Levers
from common.workloads.mednist_data import MedNISTData
from common.workloads.throughput import timed_windows
from common.workloads.training import STAGES, Trainer, scaled_lr

CONV3 = "features.denseblock1.denselayer2.layers.conv2"  # a 3x3 conv with 128 input channels
CONV3_INPUT = "features.denseblock1.denselayer2.layers.conv1"  # fed by the concatenated features (96 channels)


def _data(data_dir, max_train: int, seed: int = 0) -> MedNISTData:
    """As common.analysis.context builds it."""
    paths, labels, names = list_images(mednist_root(data_dir))
    split = split_dataset(paths, labels, config.VAL_FRACTION, config.TEST_FRACTION, seed, max_train=max_train)
    return MedNISTData(split, names, source=load_manifest(data_dir))


@pytest.fixture(scope="module")
def data(synthetic_data_dir) -> MedNISTData:
    return _data(synthetic_data_dir, max_train=48)


@pytest.fixture
def restore_threads():
    prev = torch.get_num_threads()
    yield prev
    torch.set_num_threads(prev)


def _staged(trainer: Trainer, steps: int = 3):
    timer = Timer("cpu")
    with timer.warmup():
        trainer.staged_steps(1, timer)
    return trainer.staged_steps(steps, timer), timer


def _named(model: torch.nn.Module, name: str) -> torch.nn.Module:
    return dict(model.named_modules())[name]


# --- stages -------------------------------------------------------------------------------

EXPECTED_STAGES = {
    "tutorial": {"io_decode", "preprocess", "augment", "collate", "h2d", "forward", "backward", "optimizer"},
    "cached": {"preprocess", "augment", "collate", "h2d", "forward", "backward", "optimizer"},
    "device_resident": {"preprocess", "augment", "forward", "backward", "optimizer"},
}


@pytest.mark.parametrize("data_path", ["tutorial", "cached", "device_resident"])
def test_stages_are_positive_and_add_up_to_the_step(data, data_path):
    trainer = Trainer(data, Levers(data_path, batch_size=8, num_workers=0), "cpu")
    records, timer = _staged(trainer)
    assert len(records) == 3
    for r in records:
        assert set(r.stages) <= set(STAGES)
        assert EXPECTED_STAGES[data_path] <= set(r.stages), r.stages
        for name in EXPECTED_STAGES[data_path]:
            assert r.stages[name] > 0, f"{data_path}: stage {name} has no time ({r.stages})"
        total = sum(r.stages.values())
        assert abs(total - r.wall_s) <= 0.10 * r.wall_s, f"{data_path}: stages {total:.4f} s vs step {r.wall_s:.4f} s"
        assert r.images == 8 and r.loss is not None and r.loss > 0
    # the step's spans are in the timer, the warm-up step marked apart
    assert len(timer.durations("step")) == 3 and len(timer.durations("step", include_warmup=True)) == 4
    assert [r.step for r in records] == [1, 2, 3] and trainer.step_count == 4 and trainer.images_seen == 32


def test_cached_path_records_no_io_decode_stage(data):
    trainer = Trainer(data, Levers("cached", batch_size=8, num_workers=0), "cpu")
    records, _ = _staged(trainer, steps=1)
    assert "io_decode" not in records[0].stages, records[0].stages


def test_data_path_changes_the_stages_recorded(data):
    """tutorial (in-process loading) splits the fetch into io_decode/preprocess/augment/collate;
    device_resident has preprocess and augment on the device, no io_decode, collate or h2d."""
    tut, _ = _staged(Trainer(data, Levers("tutorial", batch_size=4), "cpu"), steps=1)
    res, _ = _staged(Trainer(data, Levers("device_resident", batch_size=4), "cpu"), steps=1)
    assert set(tut[0].stages) == EXPECTED_STAGES["tutorial"]
    assert set(res[0].stages) == EXPECTED_STAGES["device_resident"]
    assert set(tut[0].worker_stage_cpu_s) == {"io_decode", "preprocess", "augment"}
    assert res[0].worker_stage_cpu_s == {}


def test_workers_give_a_data_wait_stage(data):
    trainer = Trainer(data, Levers("tutorial", batch_size=4, num_workers=1), "cpu")
    records, _ = _staged(trainer, steps=2)
    for r in records:
        assert "data_wait" in r.stages and r.stages["data_wait"] > 0
        assert not {"io_decode", "preprocess", "augment", "collate"} & set(r.stages), r.stages
        # what ran in the worker is still measured, as worker CPU seconds per batch
        assert all(r.worker_stage_cpu_s[k] > 0 for k in ("io_decode", "preprocess", "augment"))
        assert abs(sum(r.stages.values()) - r.wall_s) <= 0.10 * r.wall_s


# --- levers ---------------------------------------------------------------------------------

CHANGES = {
    "data_path": "device_resident",
    "precision": "bf16",
    "channels_last": True,
    "batch_size": 64,
    "num_workers": 2,
    "cpu_threads": 3,
    "graph": "compile",
    "fused_optimizer": True,
}


@pytest.mark.parametrize("field", list(CHANGES))
def test_replace_changes_only_the_named_lever(field):
    base = Levers()
    other = base.replace(**{field: CHANGES[field]})
    assert base.diff(other) == {field: (getattr(base, field), CHANGES[field])}
    assert other.diff(base) == {field: (CHANGES[field], getattr(base, field))}
    assert base.diff(base.replace()) == {}
    assert other.label() != base.label()
    assert set(base.to_dict()) == {f.name for f in dataclasses.fields(Levers)}
    with pytest.raises(dataclasses.FrozenInstanceError):
        base.batch_size = 1  # type: ignore[misc]


@pytest.mark.parametrize("kwargs", [
    {"data_path": "gpu"}, {"precision": "fp8"}, {"graph": "xla"}, {"batch_size": 0}, {"batch_size": -4},
    {"num_workers": -1}, {"cpu_threads": 0}, {"graph": "cuda_graph"},  # cuda_graph needs device_resident
    {"graph": "cuda_graph", "data_path": "cached"},
])
def test_invalid_levers_raise(kwargs):
    with pytest.raises(ValueError):
        Levers(**kwargs)
    with pytest.raises(ValueError):
        Levers().replace(**kwargs)


def test_compile_options_need_a_compiled_graph_and_show_in_the_label():
    lv = Levers("device_resident", graph="compile", compile_options=(("conv_1x1_as_mm", True),))
    assert "conv_1x1_as_mm=True" in lv.label() and lv.to_dict()["compile_options"] == {"conv_1x1_as_mm": True}
    with pytest.raises(ValueError, match="compiled graph"):
        Levers("device_resident", compile_options=(("conv_1x1_as_mm", True),))
    with pytest.raises(ValueError, match="pairs"):
        Levers("device_resident", graph="compile", compile_options=("conv_1x1_as_mm",))


def test_fused_optimizer_builds_a_fused_adam(data):
    trainer = Trainer(data, Levers("device_resident", batch_size=2, fused_optimizer=True), "cpu")
    assert trainer.optimizer.defaults["fused"] is True
    trainer.run_steps(1)


def test_cuda_graph_lever_is_valid_with_device_resident_data():
    lv = Levers("device_resident", graph="cuda_graph")
    assert "cuda_graph" in lv.label()


class _Probe:
    """Forward hooks that record what one module sees and gives."""

    def __init__(self, module: torch.nn.Module):
        self.inputs: list[torch.Tensor] = []
        self.outputs: list[torch.Tensor] = []
        self.handle = module.register_forward_hook(self._hook)

    def _hook(self, _m, args, out):
        self.inputs.append(args[0].detach())
        self.outputs.append(out.detach())

    def remove(self):
        self.handle.remove()


def _one_step_probe(trainer: Trainer, name: str) -> _Probe:
    probe = _Probe(_named(trainer.model, name))
    try:
        trainer.run_steps(1)
    finally:
        probe.remove()
    assert probe.outputs, f"{name} did not run"
    return probe


def test_channels_last_puts_weights_and_activations_in_nhwc(data):
    base = Levers("device_resident", batch_size=2)
    plain = Trainer(data, base, "cpu")
    nhwc = Trainer(data, base.replace(channels_last=True), "cpu")
    convs = [m for m in nhwc.model.modules() if isinstance(m, torch.nn.Conv2d)
             and m.weight.shape[1] > 1 and m.weight.shape[-1] > 1]
    assert convs
    assert all(m.weight.is_contiguous(memory_format=torch.channels_last) for m in convs)
    assert not any(m.weight.is_contiguous(memory_format=torch.channels_last) for m in plain.model.modules()
                   if isinstance(m, torch.nn.Conv2d) and m.weight.shape[1] > 1 and m.weight.shape[-1] > 1)
    p_nhwc = _one_step_probe(nhwc, CONV3_INPUT)
    p_plain = _one_step_probe(plain, CONV3_INPUT)
    x = p_nhwc.inputs[0]
    assert x.shape[1] > 1 and x.is_contiguous(memory_format=torch.channels_last)
    assert not p_plain.inputs[0].is_contiguous(memory_format=torch.channels_last)
    # nothing else changed: same initial weights, learning rate, precision and data
    assert nhwc.lr == plain.lr and nhwc.scaler is None and plain.scaler is None
    assert p_nhwc.outputs[0].dtype == p_plain.outputs[0].dtype == torch.float32
    fresh_plain = Trainer(data, base, "cpu").model.state_dict()
    fresh_nhwc = Trainer(data, base.replace(channels_last=True), "cpu").model.state_dict()
    assert all(torch.equal(fresh_plain[k], fresh_nhwc[k]) for k in fresh_plain)


def test_bf16_runs_the_forward_under_autocast(data):
    base = Levers("device_resident", batch_size=2)
    fp32 = Trainer(data, base, "cpu")
    bf16 = Trainer(data, base.replace(precision="bf16"), "cpu")
    assert _one_step_probe(bf16, CONV3).outputs[0].dtype == torch.bfloat16
    assert _one_step_probe(fp32, CONV3).outputs[0].dtype == torch.float32
    # nothing else changed: the weights stay fp32 in the same memory format, same learning rate
    assert all(p.dtype == torch.float32 for p in bf16.model.parameters())
    assert bf16.lr == fp32.lr and bf16.scaler is None
    w = _named(bf16.model, CONV3).weight
    assert w.is_contiguous() and not w.is_contiguous(memory_format=torch.channels_last)
    _, loss = bf16.run_steps(1)
    assert loss.dtype == torch.float32 and torch.isfinite(loss)  # the loss is computed in fp32


def test_batch_size_changes_the_images_per_step(data):
    base = Levers("device_resident", batch_size=2)
    small = Trainer(data, base, "cpu")
    big = Trainer(data, base.replace(batch_size=6), "cpu")
    assert small.run_steps(2)[0] == 4 and big.run_steps(2)[0] == 12
    assert small.steps_per_epoch() == 48 // 2 and big.steps_per_epoch() == 48 // 6
    # documented coupling: Adam's learning rate follows sqrt(batch / base batch)
    assert small.lr == pytest.approx(scaled_lr(1e-3, 300, 2)) and big.lr == pytest.approx(scaled_lr(1e-3, 300, 6))
    assert big.model_only_runner()(1) == 6


def test_cpu_threads_sets_torch_threads(data, restore_threads):
    prev = restore_threads
    want = 1 if prev != 1 else 2
    trainer = Trainer(data, Levers("device_resident", batch_size=2, cpu_threads=want), "cpu")
    assert torch.get_num_threads() == want
    torch.set_num_threads(prev)
    Trainer(data, Levers("device_resident", batch_size=2), "cpu")  # None: leaves the threads as they are
    assert torch.get_num_threads() == prev
    assert trainer.levers.cpu_threads == want


# --- learning ---------------------------------------------------------------------------------

def test_tutorial_recipe_lowers_the_loss_on_real_mednist(sample_data_dir, restore_threads):
    data = _data(sample_data_dir, max_train=600)
    assert not data.source.get("synthetic")
    # the recipe as the engine runs it: config's learning rate at config's batch, scaled to batch 32
    trainer = Trainer(data, Levers("tutorial", batch_size=32, num_workers=0), "cpu", lr=config.LEARNING_RATE,
                      base_batch=config.BATCH_SIZE, seed=config.SEED)
    assert trainer.lr == pytest.approx(scaled_lr(config.LEARNING_RATE, config.BATCH_SIZE, 32))
    losses = []
    t0 = time.perf_counter()
    for _ in range(12):
        n, loss = trainer.run_steps(1)
        assert n == 32
        losses.append(float(loss.detach()))
    first, last = sum(losses[:3]) / 3, sum(losses[-3:]) / 3
    assert last < first, f"loss did not fall: {[round(v, 3) for v in losses]}"
    assert time.perf_counter() - t0 < 120


# --- timed windows -----------------------------------------------------------------------------

def test_timed_windows_rate_matches_known_work():
    per_step, per_image = 0.05, 25
    calls = []

    def run(n: int) -> int:
        calls.append(n)
        time.sleep(per_step * n)
        return n * per_image

    timer = Timer("cpu")
    res = timed_windows(run, steps=3, repeats=4, warmup_steps=2, device=torch.device("cpu"), timer=timer, name="w")
    assert calls == [2, 3, 3, 3, 3]
    assert res["images"] == [75] * 4 and len(res["window_s"]) == 4
    expected = per_image / per_step  # 500 images/s
    for rate in res["images_per_s"]:
        assert abs(rate - expected) / expected < 0.10, res["images_per_s"]
    for d in res["window_s"]:
        assert abs(d - 3 * per_step) / (3 * per_step) < 0.10
    assert abs(res["warmup_s"] - 2 * per_step) / (2 * per_step) < 0.25
    assert res["energy"] == {}
    assert [tuple(se) for se in res["window_start_end"]] == [(s.start, s.end) for s in timer.spans if s.name == "w"]
    assert timer.durations("w:warmup") == []  # warm-up recorded apart
    assert len(timer.durations("w:warmup", include_warmup=True)) == 1


def test_timed_windows_accepts_tuples_and_no_warmup():
    def run(n: int):
        time.sleep(0.01 * n)
        return n * 4, "loss"

    res = timed_windows(run, steps=2, repeats=2, warmup_steps=0, device=torch.device("cpu"))
    assert res["images"] == [8, 8]
    for rate in res["images_per_s"]:
        assert abs(rate - 400) / 400 < 0.10
