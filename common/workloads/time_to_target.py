"""Time to target: one ladder rung, one seed, trained from its start until its validation
accuracy reaches the target (or its epoch budget ends), in a fresh process, as a person
trains a model once.

The clock starts when the rung starts (after the process has imported torch and MONAI:
that cost, the same for every rung, is recorded beside it as ``process_start_s``) and stops
at the end of the epoch whose validation accuracy first reaches the target. Everything in
between is on it: listing and splitting the data, JPEG decoding (or loading the decoded
cache), upload, model construction, CUDA/cuDNN initialisation and autotuning, compilation,
CUDA-graph warm-up and capture, DataLoader worker start-up, every training step and every
validation pass. The run is *cold* when its cache folder starts empty and *warm* when it
reuses the folder a cold run filled (decoded MedNIST, inductor's and Triton's caches), as a
user's second run would.

After the clock stops (off the clock): test accuracy, and where asked the rung's sustained
throughput and energy per image over ``measure_s`` seconds of steady training, with board
temperature, SM clock and throttle reasons beside them, and its model-only ceiling.

Run as ``python -m common.workloads.time_to_target PLAN.json OUT.json`` by the ladder
(``common.workloads.ladder``); the plan is a ``RunPlan`` as JSON."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
import time
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class RunPlan:
    rung_id: str  # stable id of the rung (never derived from its display name)
    levers: dict  # Levers.to_dict()
    seed: int  # initialisation and augmentation
    kind: str  # "cold" | "warm"
    device: str  # "cuda" | "cpu"
    data_dir: str
    split_seed: int  # the split stays fixed across seeds
    val_fraction: float
    test_fraction: float
    max_train: int | None
    max_eval: int | None
    lr: float  # Adam learning rate at base_batch
    base_batch: int
    epochs: int  # budget; the schedule spans it
    target: float  # validation accuracy
    cache_dir: str  # empty for a cold run, the cold run's folder for a warm one
    measure_s: float = 0.0  # sustained throughput/energy window after the target (0: none)
    repeats: int = 3  # windows the sustained measurement is split into
    model_only: bool = False  # also time the model-only ceiling
    cpu_threads: int | None = None
    decode_workers: int = 1
    spawned_at: float = 0.0  # time.time() when the parent started this process
    skipped: tuple = ()  # (path, reason) of the files the parent's image check refused: never trained on
    min_steps: int = 0  # the epoch budget grows to hold at least this many optimizer steps (the recipe: the
    # tutorial's own length, ladder.TUTORIAL_STEPS)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def cache_env(cache_dir: str) -> dict[str, str]:
    """Environment that points PyTorch's persistent compile caches into ``cache_dir``
    (set before torch is imported)."""
    return {"TORCHINDUCTOR_CACHE_DIR": os.path.join(cache_dir, "inductor"),
            "TRITON_CACHE_DIR": os.path.join(cache_dir, "triton")}


def _levers(d: dict):
    from common.workloads.levers import Levers

    d = dict(d)
    d["compile_options"] = tuple(sorted(d.get("compile_options", {}).items()))
    return Levers(**d)


def eval_points(steps_per_epoch: int, epochs: int, schedule_epochs: float | None) -> tuple[int, list[int]]:
    """(steps the learning-rate schedule spans, the steps after which validation runs): every
    epoch's end, and the schedule's end where it falls inside an epoch."""
    budget = steps_per_epoch * epochs
    total = min(budget, max(1, round(schedule_epochs * steps_per_epoch))) if schedule_epochs else budget
    points = sorted({steps_per_epoch * e for e in range(1, epochs + 1)} | {total})
    return total, points


def epoch_budget(epochs: int, min_steps: int, steps_per_epoch: int) -> int:
    """``epochs``, or more where ``min_steps`` optimizer steps need more (whole epochs)."""
    return max(epochs, math.ceil(min_steps / max(1, steps_per_epoch)) if min_steps > 0 else 0)


def train_to_target(trainer, epochs: int, target: float, t0: float, marks: dict[str, float]) -> dict[str, Any]:
    """Training, with a validation pass at every epoch's end (and where a shorter learning-rate
    schedule ends, ``Levers.schedule_epochs``), until validation accuracy reaches ``target`` or
    ``epochs`` run out. Times are seconds since ``t0`` (the rung's start); the first steps are
    synchronised one by one so that their one-time costs show."""
    from common.measure.timing import clock, cuda_sync
    from common.workloads.training import lr_for

    steps = trainer.steps_per_epoch()
    total, points = eval_points(steps, epochs, getattr(trainer.levers, "schedule_epochs", None))
    history: list[dict[str, Any]] = []
    step_i = 0
    reached = None
    first_steps: list[float] = []
    for point in points:
        a = clock()
        images = 0
        losses = []
        while step_i < point:
            trainer.set_lr(lr_for(trainer.levers, step_i, total, trainer.lr))
            s0 = clock()
            n, loss = trainer.run_steps(1)
            if step_i < 3:
                cuda_sync(trainer.device)
                first_steps.append(clock() - s0)
            step_i += 1
            images += n
            losses.append(loss)
        cuda_sync(trainer.device)
        b = clock()
        val = trainer.evaluate("val")
        c = clock()
        epoch = step_i // steps if step_i % steps == 0 else round(step_i / steps, 3)
        history.append({"epoch": epoch, "step": step_i, "train_s": b - a, "val_s": c - b, "images": images,
                        "images_per_s": images / (b - a), "end_s": c - t0,
                        "train_loss": float(sum(float(x.detach()) for x in losses) / max(1, len(losses))),
                        "val_accuracy": val["accuracy"], "val_loss": val["loss"]})
        if val["accuracy"] >= target:
            reached = {"epoch": epoch, "s": c - t0}
            break
    marks["first_steps_s"] = first_steps
    return {"history": history, "time_to_target_s": reached["s"] if reached else None,
            "epochs_to_target": reached["epoch"] if reached else None,
            "reached": reached is not None, "schedule_steps": total,
            "target_reason": None if reached else
            f"validation accuracy stayed below {target} in {epochs} epochs (best "
            f"{max((h['val_accuracy'] for h in history), default=float('nan')):.4f})"}


def idle_power(device, seconds: float = 1.0) -> dict[str, Any]:
    """The board's power with nothing running on it (NVML energy counter over ``seconds``)."""
    from common.measure.energy import EnergyMeter, measure_idle
    from common.measure.samplers import nvml_index

    if device.type != "cuda":
        return {"idle_power_w": None, "reason": "no GPU"}
    d = measure_idle(EnergyMeter(gpu_index=nvml_index(device.index or 0), device=str(device)), seconds)
    return {"idle_power_w": d["gpu_avg_power_w"], "reason": d["gpu_reason"]}


def sustained(trainer, history: list[dict], measure_s: float, repeats: int, model_only: bool) -> dict[str, Any]:
    """Throughput and energy per image over ``measure_s`` seconds of steady training after a
    warm-up, split into ``repeats`` windows (whole epochs from an epoch boundary where
    DataLoader workers feed the rung), with the board's temperature, SM clock and throttle
    reasons over the same windows; then the model-only ceiling."""
    from common.measure.energy import EnergyMeter, board_means
    from common.measure.samplers import GPUSampler, nvml_available, nvml_index
    from common.measure.timing import clock, cuda_sync
    from common.workloads.throughput import steady_throughput, timed_windows

    dev = trainer.device
    lv = trainer.levers
    window_s = measure_s / repeats
    # a short run of steps sizes the windows (and warms the board a little more)
    cuda_sync(dev)
    a = clock()
    trainer.run_steps(3)
    cuda_sync(dev)
    per_step = max((clock() - a) / 3, 1e-6)
    epoch_s = sorted(h["train_s"] for h in history)[len(history) // 2] if history else None
    if lv.data_path != "device_resident" and lv.num_workers > 0 and epoch_s:
        trainer.run_steps(trainer.steps_left_in_epoch())
        epochs = max(1, math.ceil(window_s / epoch_s))
        steps = trainer.steps_per_epoch() * epochs
        window = {"kind": "epochs", "epochs": epochs, "steps": steps,
                  "reason": "DataLoader workers: whole epochs from an epoch boundary"}
    else:
        steps = max(1, math.ceil(window_s / per_step))
        window = {"kind": "steps", "steps": steps, "reason": "no DataLoader workers"}
    meter = EnergyMeter(gpu_index=nvml_index(dev.index or 0) if dev.type == "cuda" else None, device=str(dev))
    sampler = None
    if dev.type == "cuda" and nvml_available()[0]:
        sampler = GPUSampler(10.0, index=nvml_index(dev.index or 0), pcie=False)
        sampler.start()
    try:
        e2e = steady_throughput(trainer, steps, repeats, 0, energy=meter)
    finally:
        if sampler is not None:
            sampler.stop()
    out: dict[str, Any] = {"window": window, "end_to_end": e2e,
                           "board": board_means(sampler.snapshot(), e2e["window_start_end"]) if sampler else None}
    if model_only:
        runner = trainer.model_only_runner()
        cuda_sync(dev)
        a = clock()
        runner(2)
        cuda_sync(dev)
        n = max(1, math.ceil(min(window_s, 2.0) / max((clock() - a) / 2, 1e-6)))
        out["model_only"] = timed_windows(runner, n, repeats, 1, dev, energy=meter,
                                          name=f"model-only {lv.label()}")
    return out


def run_plan(plan: RunPlan) -> dict[str, Any]:
    """One time-to-target run in this process (the clock starts here)."""
    import torch

    from common.measure.timing import clock
    from common.workloads.decoded_cache import begin_decoded
    from common.workloads.mednist_data import load_mednist
    from common.workloads.training import Trainer

    imports = time.perf_counter()
    import monai.networks.nets  # noqa: F401  (process start, like torch: MONAI imports every network it has)

    # torch.optim imports torch._dynamo when the first optimizer is built (4-6 s on the H200 image, run AA).
    # `import monai` pulls it in through torchvision wherever that is installed; these runs leave torchvision
    # out (leave_out_unused_monai_extras), which had moved that import onto the clock of every rung alike
    import torch._dynamo  # noqa: F401

    imports = time.perf_counter() - imports
    t0 = clock()
    process_start_s = time.time() - plan.spawned_at if plan.spawned_at else None
    lv = _levers(plan.levers)
    device = torch.device("cuda:0" if plan.device == "cuda" else "cpu")
    if plan.cpu_threads:
        torch.set_num_threads(plan.cpu_threads)
    marks: dict[str, Any] = {"import_networks_s (before the clock)": imports}
    a = clock()
    # the parent checked every image once (common/data/imagecheck.py); a run does not check them again on its
    # clock: it leaves out the files the parent refused, and its decode skips any other unreadable one
    data = load_mednist(plan.data_dir, plan.val_fraction, plan.test_fraction, plan.split_seed,
                        max_train=plan.max_train, max_eval=plan.max_eval, check=False)
    data.skipped.extend(tuple(x) for x in plan.skipped)
    marks["list_split_s"] = clock() - a
    finish = None
    if lv.data_path != "tutorial":  # the decode's workers start (spawned, milliseconds each) and decode while
        a = clock()  # this process initialises CUDA and, with prewarm, warms its kernels
        finish = begin_decoded(data, plan.cache_dir, plan.decode_workers, start_method="spawn")  # __main__ is ours
        marks["decode_start_s"] = clock() - a
    if device.type == "cuda":
        a = clock()
        torch.backends.cudnn.benchmark = lv.cudnn_benchmark
        torch.zeros(1, device=device)  # CUDA context: on the clock, the same for every rung
        torch.cuda.synchronize(device)
        marks["cuda_init_s"] = clock() - a
    a = clock()
    trainer = None
    if finish is None:  # the recipe decodes in its DataLoader workers; validation once here
        data.arrays("val")
        cache = {"hit": False, "reason": "the recipe reads JPEGs in its DataLoader workers (no decoded cache)"}
    elif lv.prewarm and device.type == "cuda":  # kernels and plans warmed on the real trainer while the JPEGs decode
        from common.workloads.prewarm import overlapped

        trainer = Trainer(data, lv, device, lr=plan.lr, base_batch=plan.base_batch, seed=plan.seed)
        marks["build_s"] = clock() - a
        a = clock()
        cache, marks["prewarm"] = overlapped(finish, trainer)
    else:
        if lv.prewarm:
            marks["prewarm"] = {"total_s": None, "reason": "not run: prewarm warms CUDA kernels and cuDNN plans "
                                                            f"(this run is on {device.type})"}
        cache = finish()
    marks["decode_s"] = clock() - a  # with prewarm: the decode and the prewarm side by side, the longer of the two
    if trainer is None:
        a = clock()
        trainer = Trainer(data, lv, device, lr=plan.lr, base_batch=plan.base_batch, seed=plan.seed)
        marks["build_s"] = clock() - a
    if lv.data_path == "device_resident":
        trainer.resident()
    epochs = epoch_budget(plan.epochs, plan.min_steps, trainer.steps_per_epoch())
    result = train_to_target(trainer, epochs, plan.target, t0, marks)
    wall = clock() - t0
    test = trainer.evaluate("test")
    out: dict[str, Any] = {
        "rung_id": plan.rung_id, "seed": plan.seed, "kind": plan.kind, **result,
        "test_accuracy": test["accuracy"], "test_n": test["n"], "val_n": len(data.arrays("val")[1]),
        "train_images": trainer.steps_per_epoch() * lv.batch_size if lv.data_path == "device_resident"
        else len(data.train_paths_labels()[0]),
        "wall_to_stop_s": wall, "process_start_s": process_start_s, "one_time_s": {**marks, **trainer.setup_seconds},
        "decoded_cache": cache, "lr": trainer.lr, "steps_per_epoch": trainer.steps_per_epoch(),
        "skipped_images": len(data.skipped), "epoch_budget": epochs,
    }
    if plan.measure_s > 0:
        out["idle"] = idle_power(device)
        out["sustained"] = sustained(trainer, result["history"], plan.measure_s, plan.repeats, plan.model_only)
    if device.type == "cuda":
        out["peak_memory_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
    return out


def main(argv: list[str]) -> int:
    plan_path, out_path = argv
    with open(plan_path) as fh:
        raw = json.load(fh)
    plan = RunPlan(**raw)
    for k, v in cache_env(plan.cache_dir).items():
        os.environ.setdefault(k, v)
    left_out: list[str] = []
    if "compile" not in str(plan.levers.get("graph", "")):
        from common.models import leave_out_unused_monai_extras

        left_out = leave_out_unused_monai_extras()
    from common.atomic import write_json

    try:
        res = run_plan(plan)
        res["process_start_left_out"] = left_out  # packages MONAI would import that DenseNet121 does not use
    except Exception as exc:  # the parent records it; a rung that fails does not stop the ladder
        import traceback

        write_json(out_path, {"rung_id": plan.rung_id, "seed": plan.seed, "kind": plan.kind,
                              "error": f"{type(exc).__name__}: {exc}".splitlines()[0][:500],
                              "traceback": traceback.format_exc()[-4000:]})
        return 1
    write_json(out_path, res)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
