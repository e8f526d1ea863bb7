"""Timed windows of training steps, and training a Trainer to an accuracy: the throughput and
accuracy measurements the sections and benchmarks take of a ``Trainer`` (common/workloads/training.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch

from common.measure.timing import Span, Timer, clock, cuda_sync
from common.workloads.training import lr_for

if TYPE_CHECKING:
    from common.workloads.training import Trainer


def timed_windows(run: Callable[[int], Any], steps: int, repeats: int, warmup_steps: int, device: torch.device,
                  timer: Timer | None = None, energy=None, name: str = "window") -> dict[str, Any]:
    """Run ``warmup_steps`` (recorded apart), then ``repeats`` windows of ``steps`` steps,
    synchronized at each window's edges. ``run(n)`` returns the images it processed (an int,
    or a tuple whose first item is). Energy, where a meter is given, covers all windows."""
    timer = timer or Timer(str(device))
    t0 = clock()
    with timer.warmup(), timer.window(f"{name}:warmup"):
        run(warmup_steps) if warmup_steps else None
    warm_s = clock() - t0
    durations, images, per_window = [], [], []
    readings = []
    for _ in range(repeats):
        cuda_sync(device)
        r0 = energy.read() if energy is not None else None
        a = clock()
        out = run(steps)
        cuda_sync(device)
        b = clock()
        r1 = energy.read() if energy is not None else None
        durations.append(b - a)
        images.append(out[0] if isinstance(out, tuple) else int(out))
        if energy is not None:
            readings.append((r0, r1))
        timer.spans.append(Span(name, a, b, 0, timer.tag, False, None))
        if timer.sink is not None:
            timer.sink.append(timer.spans[-1])
    rates = [n / d for n, d in zip(images, durations)]
    total_images = sum(images)
    energy_out: dict[str, Any] = {}
    if energy is not None:
        per_window = [energy.delta(r0, r1) for r0, r1 in readings]
        for k in ("gpu", "cpu"):
            js = [w.get(f"{k}_energy_j") for w in per_window]
            ok = all(j is not None for j in js)
            energy_out[f"{k}_energy_j"] = sum(js) if ok else None
            energy_out[f"{k}_energy_reason"] = None if ok else next(
                (w.get(f"{k}_energy_reason") for w in per_window if w.get(f"{k}_energy_reason")), None)
            energy_out[f"{k}_j_per_image"] = sum(js) / total_images if ok else None
            energy_out[f"{k}_j_per_image_per_window"] = [j / n for j, n in zip(js, images)] if ok else None
            energy_out[f"{k}_avg_power_w_per_window"] = [j / d for j, d in zip(js, durations)] if ok else None
        energy_out["gpu_avg_power_w"] = (energy_out["gpu_energy_j"] / sum(durations)
                                         if energy_out.get("gpu_energy_j") is not None else None)
        energy_out["duration_s"] = sum(durations)
    return {"warmup_s": warm_s, "window_s": durations, "images": images, "images_per_s": rates,
            "window_start_end": [(s.start, s.end) for s in timer.spans[-repeats:]], "energy": energy_out}


def train_to_accuracy(trainer: Trainer, epochs: int, target: float, progress=None) -> dict[str, Any]:
    """Train ``epochs`` full epochs (Adam, the levers' schedule: ``lr_for``),
    evaluating validation accuracy after each; report time to reach ``target`` (training time
    only, evaluation excluded), per-epoch losses and accuracies, and the final validation and
    test accuracy."""
    history = []
    train_s = 0.0
    reached_at: dict[str, Any] | None = None
    steps = trainer.steps_per_epoch()
    total_steps = steps * epochs
    step_i = 0
    for epoch in range(1, epochs + 1):
        cuda_sync(trainer.device)
        a = clock()
        images, loss_sum, n_loss = 0, 0.0, 0
        losses = []
        for _ in range(steps):
            trainer.set_lr(lr_for(trainer.levers, step_i, total_steps, trainer.lr))
            step_i += 1
            n, loss = trainer.run_steps(1)
            images += n
            losses.append(loss)
        cuda_sync(trainer.device)
        dt = clock() - a
        train_s += dt
        mean_loss = float(torch.stack([x.detach().float() for x in losses]).mean()) if losses else None
        val = trainer.evaluate("val")
        history.append({"epoch": epoch, "train_s": dt, "images": images, "images_per_s": images / dt,
                        "train_loss": mean_loss, "val_accuracy": val["accuracy"], "val_loss": val["loss"]})
        if reached_at is None and val["accuracy"] >= target:
            reached_at = {"epoch": epoch, "train_s": train_s}
        if progress is not None:
            progress.update(1)
            progress.set_postfix(loss=f"{mean_loss:.3f}", val=f"{val['accuracy']:.3f}")
        del loss_sum, n_loss
    test = trainer.evaluate("test")
    return {
        "epochs": epochs,
        "target_val_accuracy": target,
        "history": history,
        "train_s_total": train_s,
        "time_to_target_s": reached_at["train_s"] if reached_at else None,
        "epochs_to_target": reached_at["epoch"] if reached_at else None,
        "target_reason": None if reached_at else f"validation accuracy stayed below {target} in {epochs} epochs",
        "final_val_accuracy": history[-1]["val_accuracy"] if history else None,
        "test_accuracy": test["accuracy"],
        "test_n": test["n"],
        "lr": trainer.lr,
        "lr_schedule": "linear warm-up over 5% of steps, cosine decay to 5% of lr",
        "setup_s": dict(trainer.setup_seconds),
    }


def steady_throughput(trainer: Trainer, steps: int, repeats: int, warmup_steps: int, timer: Timer | None = None,
                      energy=None) -> dict[str, Any]:
    return timed_windows(trainer.run_steps, steps, repeats, warmup_steps, trainer.device, timer, energy,
                         name=f"train {trainer.levers.label()}")


def model_only_throughput(trainer: Trainer, steps: int, repeats: int, warmup_steps: int,
                          timer: Timer | None = None, energy=None) -> dict[str, Any]:
    return timed_windows(trainer.model_only_runner(), steps, repeats, warmup_steps, trainer.device, timer, energy,
                         name=f"model-only {trainer.levers.label()}")


def peak_memory_mib(device: torch.device) -> float | None:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return None
