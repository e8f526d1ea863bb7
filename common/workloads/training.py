"""Staged MedNIST training (MONAI tutorial: DenseNet121, CrossEntropy, Adam) under any Levers.

Two ways to run steps:
* ``staged_steps``: every stage in its own synchronized window (io_decode, preprocess,
  augment, collate or data_wait, h2d, forward, backward, optimizer) -> the stage breakdown;
* ``run_steps``: no synchronization inside, for throughput (the caller times whole windows).
With ``graph='cuda_graph'`` the whole step (gather, scale, augment, forward, backward,
Adam) is captured once and replayed; its stage breakdown comes from the eager equivalent.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from common.measure.timing import Span, Timer
from common.models import densenet121
from common.transforms import TUTORIAL_STAGES, BatchedAugment2D, scale_intensity
from common.workloads.levers import CAPTURED, Levers
from common.workloads.mednist_data import (
    CachedDataset,
    DeviceResidentData,
    MedNISTData,
    TutorialDataset,
    make_loader,
)

AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
# eager steps on a side stream before a CUDA graph is captured (PyTorch's whole-network capture
# recipe warms up "a few" iterations: autotuning, lazy kernel loading and compilation happen there)
GRAPH_WARMUP_STEPS = 2
DATA_STAGES = ("io_decode", "preprocess", "augment", "collate", "data_wait", "h2d")
MODEL_STAGES = ("forward", "backward", "optimizer")
STAGES = DATA_STAGES + MODEL_STAGES


def scaled_lr(base_lr: float, base_batch: int, batch: int) -> float:
    """Adam learning rate for another batch size: square-root scaling from the base recipe."""
    return base_lr * math.sqrt(batch / base_batch)


def lr_at(step: int, total: int, base: float, warmup_fraction: float = 0.05, final_fraction: float = 0.05) -> float:
    """Learning rate of ``step`` of ``total``: linear warm-up over the first 5% of steps, then
    cosine decay to 5% of ``base``. The same schedule for every configuration."""
    warm = max(1, int(total * warmup_fraction))
    if step < warm:
        return base * (step + 1) / warm
    progress = min(1.0, (step - warm) / max(1, total - warm))
    return base * (final_fraction + (1 - final_fraction) * 0.5 * (1 + math.cos(math.pi * progress)))


def lr_for(levers: Levers, step: int, total: int, base: float) -> float:
    """The learning rate of ``step`` of ``total`` under ``levers.lr_schedule``: ``lr_at``'s
    warm-up + cosine decay, or ``base`` throughout (constant)."""
    return base if levers.lr_schedule == "constant" else lr_at(step, total, base)


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Every group's learning rate; a device tensor (a captured step reads it) is filled in place."""
    for group in optimizer.param_groups:
        if isinstance(group["lr"], torch.Tensor):
            group["lr"].fill_(lr)
        else:
            group["lr"] = lr


def autocast_ctx(device: torch.device, precision: str, cache_enabled: bool = True):
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=AMP_DTYPES[precision], cache_enabled=cache_enabled)


@dataclass
class StepRecord:
    step: int
    wall_s: float
    stages: dict[str, float]
    worker_stage_cpu_s: dict[str, float] = field(default_factory=dict)
    images: int = 0
    loss: float | None = None


class Trainer:
    """One model + optimizer + data path, built from Levers on a device."""

    def __init__(self, data: MedNISTData, levers: Levers, device: str | torch.device, lr: float = 1e-3,
                 base_batch: int = 300, seed: int = 0, num_classes: int = 6):
        self.data, self.levers = data, levers
        self.device = torch.device(device)
        self.is_cuda = self.device.type == "cuda"
        self.seed = seed
        if levers.cpu_threads:
            torch.set_num_threads(levers.cpu_threads)
        if levers.precision == "bf16" and self.is_cuda and not torch.cuda.is_bf16_supported():
            raise ValueError("bf16 is not supported on this GPU")
        torch.manual_seed(seed)
        if levers.fused_blocks:
            from common.models.triton_env import triton_available

            ok, why = triton_available()
            if not (ok and self.is_cuda):
                why = why or f"this device is {self.device.type}"
                raise ValueError(f"fused_blocks needs a CUDA device and Triton: {why}")
        self.setup_seconds: dict[str, Any] = {}
        t0 = time.perf_counter()
        model = densenet121(num_classes, concat_free=levers.concat_free, fused_blocks=levers.fused_blocks,
                            gemm_1x1=levers.gemm_1x1)
        t1 = time.perf_counter()
        self.model = model.to(self.device)
        if levers.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        if self.is_cuda:
            torch.cuda.synchronize(self.device)
        self.setup_seconds.update(model_init_s=t1 - t0, model_to_device_s=time.perf_counter() - t1)
        self.loss_fn = torch.nn.CrossEntropyLoss()
        # the lever's own rate as given (the tutorial's 1e-5); else the base rate scaled to this batch
        self.lr = levers.lr if levers.lr is not None else scaled_lr(lr, base_batch, levers.batch_size)
        opt_kw: dict[str, Any] = {}
        lr_arg: float | torch.Tensor = self.lr
        if levers.graph in CAPTURED:  # the captured step reads the learning rate from device memory
            opt_kw["capturable"] = True
            lr_arg = torch.tensor(self.lr, dtype=torch.float32, device=self.device)
        if levers.fused_optimizer:
            opt_kw["fused"] = True
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=lr_arg, **opt_kw)
        self.scaler = torch.amp.GradScaler(self.device.type) if levers.precision == "fp16" else None
        self.forward_model: Callable = self.model
        self.compile_seconds: float | None = None
        if levers.graph in ("compile", "compile_reduce_overhead", "compile_cuda_graph"):
            mode = "reduce-overhead" if levers.graph == "compile_reduce_overhead" else None
            options = dict(levers.compile_options)
            if levers.concat_free or levers.fused_blocks:  # evaluation runs the concat-free forward
                from common.models.densenet_lists import compile_options
                options = {**compile_options(), **options}
            options = options or None
            if options and mode:
                # what mode="reduce-overhead" sets: torch.compile takes a mode or options, not both
                options["triton.cudagraphs"] = True
                mode = None
            self.forward_model = torch.compile(self.model, mode=mode, dynamic=False, options=options)
        t0 = time.perf_counter()
        self.augment = BatchedAugment2D().to(self.device)
        self.setup_seconds["augment_init_s"] = time.perf_counter() - t0
        self._batches: Iterator | None = None
        self._epoch_pos = 0  # batches taken from the current epoch
        self._resident: DeviceResidentData | None = None
        self._graph: _GraphedStep | None = None
        self.step_count = 0
        self.images_seen = 0

    def set_lr(self, lr: float) -> None:
        set_lr(self.optimizer, lr)

    # -- data -------------------------------------------------------------------------------
    def _loader(self):
        lv = self.levers
        if lv.data_path == "tutorial":
            paths, labels = self.data.train_paths_labels()
            ds = TutorialDataset(paths, labels, seed=self.seed)
        else:
            t0 = time.perf_counter()
            imgs, labs = self.data.arrays("train")
            self.setup_seconds.setdefault("decode_cache", time.perf_counter() - t0)
            ds = CachedDataset(imgs, labs, seed=self.seed)
        return make_loader(ds, lv.batch_size, lv.num_workers, self.seed)

    def resident(self) -> DeviceResidentData:
        if self._resident is None:
            t0 = time.perf_counter()
            imgs, labs = self.data.arrays("train")
            self.setup_seconds.setdefault("decode_cache", time.perf_counter() - t0)
            self._resident = DeviceResidentData(imgs, labs, self.device, seed=self.seed)
            self.setup_seconds["upload"] = self._resident.upload_seconds
        return self._resident

    def epoch_batches(self) -> Iterator:
        """The batches of one epoch in this data path's native form."""
        if self.levers.data_path == "device_resident":
            return iter(self.resident().epoch_indices(self.levers.batch_size))
        return iter(self._loader())

    def steps_per_epoch(self) -> int:
        if self.levers.data_path == "device_resident":
            return self.resident().steps_per_epoch(self.levers.batch_size)
        n = len(self.data.train_paths_labels()[0])
        return math.ceil(n / self.levers.batch_size)

    def _next_batch(self):
        """Next batch from an endless stream of epochs."""
        if self._batches is None:
            self._batches, self._epoch_pos = self.epoch_batches(), 0
        try:
            batch = next(self._batches)
        except StopIteration:
            self._batches, self._epoch_pos = self.epoch_batches(), 0
            batch = next(self._batches)
        self._epoch_pos += 1
        return batch

    def steps_left_in_epoch(self) -> int:
        """Steps until the stream of batches reaches an epoch boundary (0 where it is on one)."""
        if self._batches is None:
            return 0
        return max(0, self.steps_per_epoch() - self._epoch_pos)

    # -- one step ---------------------------------------------------------------------------
    def _prepare(self, batch, win) -> tuple[torch.Tensor, torch.Tensor]:
        lv = self.levers
        if lv.data_path == "device_resident":
            res = self.resident()
            with win("preprocess"):
                x = scale_intensity(res.images[batch])
                y = res.labels[batch]
            with win("augment"):
                x = self.augment(x)
        else:
            x, y, _ = batch
            with win("h2d"):
                if hasattr(x, "as_tensor"):  # MONAI MetaTensor -> plain tensor: the model computes the same for
                    x = x.as_tensor()  # every data path, without MetaTensor's per-op dispatch
                x = torch.as_tensor(x).to(self.device, non_blocking=False)
                y = torch.as_tensor(y).to(self.device, non_blocking=False)
        if lv.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, y

    def _optimize(self, x, y, win) -> torch.Tensor:
        with win("forward"):
            with autocast_ctx(self.device, self.levers.precision):
                out = self.forward_model(x)
                loss = self.loss_fn(out.float(), y)
        with win("backward"):
            if self.scaler is not None:
                self.scaler.scale(loss).backward()
            else:
                loss.backward()
        with win("optimizer"):
            if self.scaler is not None:
                self.scaler.step(self.optimizer)
                self.scaler.update()
            else:
                self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
        return loss

    def run_steps(self, n: int) -> tuple[int, torch.Tensor | None]:
        """``n`` training steps without synchronization; returns (images, last loss tensor)."""
        nowin = _no_window
        images, loss = 0, None
        for _ in range(n):
            batch = self._next_batch()
            if self._use_graph():
                loss = self._graphed().run(batch).clone()  # the static output is overwritten by the next replay
                images += self.levers.batch_size
            else:
                x, y = self._prepare(batch, nowin)
                loss = self._optimize(x, y, nowin)
                images += int(y.shape[0])
            self.step_count += 1
        self.images_seen += images
        return images, loss

    def run_eager_steps(self, n: int) -> int:
        """``n`` steps launched kernel by kernel even where the levers capture a CUDA graph (the
        compiled model, if any, is the same): what a profiler sees of a captured step."""
        for _ in range(n):
            x, y = self._prepare(self._next_batch(), _no_window)
            self._optimize(x, y, _no_window)
        return n * self.levers.batch_size

    def staged_steps(self, n: int, timer: Timer) -> list[StepRecord]:
        """``n`` steps with each stage in its own synchronized window of ``timer``."""
        if self._use_graph():
            raise RuntimeError("a captured CUDA graph has no stages; time the eager equivalent")
        records = []
        for _ in range(n):
            step = self.step_count
            before = len(timer.spans)
            win = lambda name, step=step: timer.window(name, step=step)  # noqa: E731
            with timer.window("step", step=step):
                fetch = "data_wait" if self.levers.num_workers > 0 or self.levers.data_path == "device_resident" \
                    else "data"
                if self.levers.data_path == "device_resident":
                    batch = self._next_batch()
                    fetch_span = None
                else:
                    with timer.window(fetch, step=step):
                        batch = self._next_batch()
                    fetch_span = timer.spans[-1]
                x, y = self._prepare(batch, win)
                loss = self._optimize(x, y, win)
            spans = timer.spans[before:]
            wall = spans[-1].duration
            stages: dict[str, float] = {}
            for s in spans:
                if s.name not in ("step", "data"):
                    stages[s.name] = stages.get(s.name, 0.0) + s.duration
            worker: dict[str, float] = {}
            if self.levers.data_path != "device_resident":
                per_transform = torch.as_tensor(batch[2]).sum(dim=0).tolist()
                for name, secs in zip(TUTORIAL_STAGES, per_transform):
                    worker[TUTORIAL_STAGES[name]] = worker.get(TUTORIAL_STAGES[name], 0.0) + secs
                if self.levers.data_path == "cached":
                    worker.pop("io_decode", None)
                if fetch == "data":  # in-process loading: split the fetch into its measured stages
                    self._split_fetch(timer, fetch_span, worker, stages, step)
            records.append(StepRecord(step, wall, stages, worker, int(y.shape[0]), float(loss.detach())))
            self.step_count += 1
            self.images_seen += int(y.shape[0])
        return records

    @staticmethod
    def _split_fetch(timer: Timer, fetch: Span, worker: dict[str, float], stages: dict[str, float], step: int):
        """With num_workers=0 the transforms run inside the fetch window: its measured parts
        become the io_decode / preprocess / augment stages, the rest is collate."""
        t = fetch.start
        for name in ("io_decode", "preprocess", "augment"):
            if name not in worker or (name == "io_decode" and worker[name] == 0.0):
                continue  # the cached path decodes nothing per step: no io_decode stage
            secs = worker[name]
            stages[name] = secs
            timer.spans.append(Span(name, t, t + secs, fetch.depth + 1, timer.tag, fetch.warmup, step))
            t += secs
        stages["collate"] = max(0.0, fetch.end - t)
        timer.spans.append(Span("collate", t, fetch.end, fetch.depth + 1, timer.tag, fetch.warmup, step))

    # -- CUDA graph ---------------------------------------------------------------------------
    def _use_graph(self) -> bool:
        return self.levers.graph in CAPTURED

    def _graphed(self) -> "_GraphedStep":
        if self._graph is None:
            t0 = time.perf_counter()
            self._graph = _GraphedStep(self, model_only=False)
            total = time.perf_counter() - t0
            self.setup_seconds["graph_warmup"] = self._graph.warmup_seconds  # includes compilation, if any
            self.setup_seconds["graph_warmup_steps"] = list(self._graph.warmup_step_seconds)
            self.setup_seconds["graph_capture"] = total - self._graph.warmup_seconds
        return self._graph

    # -- model-only ceiling ----------------------------------------------------------------------
    def model_only_runner(self) -> Callable[[int], int]:
        """A fixed, already prepared batch on the device: only forward, backward and optimizer
        run. Returns ``run(n) -> images``: the ceiling of this configuration."""
        g = torch.Generator(device="cpu").manual_seed(self.seed)
        x = torch.rand(self.levers.batch_size, 1, 64, 64, generator=g).to(self.device)
        y = torch.randint(0, 6, (self.levers.batch_size,), generator=g).to(self.device)
        if self.levers.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        if self._use_graph():
            graphed = _GraphedStep(self, model_only=True, static=(x, y))

            def run(n: int) -> int:
                for _ in range(n):
                    graphed.run(None)
                return n * self.levers.batch_size
        else:
            def run(n: int) -> int:
                for _ in range(n):
                    self._optimize(x, y, _no_window)
                return n * self.levers.batch_size
        return run

    # -- evaluation -----------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, part: str) -> dict[str, float]:
        imgs, labs = self.data.arrays(part)
        self.model.eval()
        # no cuDNN autotuning for evaluation shapes: it would cost seconds per new shape (evaluation batches have
        # the training batch's size, so most convolution plans are the ones training already built)
        bench = torch.backends.cudnn.benchmark
        torch.backends.cudnn.benchmark = False
        try:
            return self._evaluate(imgs, labs)
        finally:
            torch.backends.cudnn.benchmark = bench
            self.model.train()

    def eval_batch_size(self) -> int:
        """Evaluation's batch: the training batch (its kernels and plans are the ones training
        loaded), at most 1024."""
        return min(self.levers.batch_size, 1024)

    def _evaluate(self, imgs, labs) -> dict[str, float]:
        # the part is uploaded once and kept on the device (a pageable upload per batch waited for the batch
        # before it: 8 waits per pass at batch 150, run AD); counts and losses stay there until the end
        held = getattr(self, "_eval_part", None)  # (imgs, labs, their device copies): the arrays are held, so
        if held is None or held[0] is not imgs or held[1] is not labs:  # identity cannot match another array
            held = self._eval_part = (imgs, labs, torch.from_numpy(np.ascontiguousarray(imgs)).unsqueeze(1).to(
                self.device), torch.from_numpy(np.asarray(labs)).to(self.device))
        return self.evaluate_tensors(held[2], held[3])

    @torch.no_grad()
    def evaluate_tensors(self, x_all: torch.Tensor, y_all: torch.Tensor) -> dict[str, float]:
        """Accuracy and mean loss over uint8 images (N, 1, 64, 64) and labels already on the
        device, in batches of ``eval_batch_size``, with one wait at the end."""
        was = self.model.training
        self.model.eval()
        bs = self.eval_batch_size()
        correct = torch.zeros((), dtype=torch.long, device=self.device)
        loss_sum = torch.zeros((), dtype=torch.float32, device=self.device)
        total = int(y_all.shape[0])
        try:
            for i in range(0, total, bs):
                x, y = scale_intensity(x_all[i:i + bs]), y_all[i:i + bs]
                if self.levers.channels_last:
                    x = x.contiguous(memory_format=torch.channels_last)
                with autocast_ctx(self.device, self.levers.precision):
                    out = self.model(x).float()
                loss_sum += torch.nn.functional.cross_entropy(out, y, reduction="sum")
                correct += (out.argmax(1) == y).sum()
        finally:
            self.model.train(was)
        return {"accuracy": int(correct) / total if total else float("nan"),
                "loss": float(loss_sum) / max(total, 1), "n": total}


@contextlib.contextmanager
def _null(*_a, **_k):
    yield


def _no_window(name: str):
    return _null()


class _GraphedStep:
    """The whole training step captured in one CUDA graph (PyTorch's whole-network capture
    recipe: warm up on a side stream, capture with grads set to None, replay). The
    device-resident gather, scaling and random augmentation are inside the graph; before each
    replay only the batch's indices are copied into the static index buffer."""

    def __init__(self, trainer: Trainer, model_only: bool, static: tuple | None = None):
        t = trainer
        dev = t.device
        self.t = t
        bs = t.levers.batch_size
        self.static_idx = torch.zeros(bs, dtype=torch.long, device=dev)
        if not model_only:
            res = t.resident()
            self.static_idx.copy_(torch.arange(bs, device=dev) % res.n)

        def body():
            if model_only:
                x, y = static
            else:
                x = scale_intensity(res.images[self.static_idx])
                y = res.labels[self.static_idx]
                x = t.augment(x)
                if t.levers.channels_last:
                    x = x.contiguous(memory_format=torch.channels_last)
            with autocast_ctx(dev, t.levers.precision, cache_enabled=False):
                out = t.forward_model(x)
                loss = t.loss_fn(out.float(), y)
            loss.backward()
            t.optimizer.step()
            return loss

        side = torch.cuda.Stream(dev)
        side.wait_stream(torch.cuda.current_stream(dev))
        t0 = time.perf_counter()
        precompile = getattr(t.model, "precompile", None)
        if precompile is not None:  # fused kernels: compiled in parallel (once), counted in the warm-up
            dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(t.levers.precision, torch.float32)
            done = precompile(dtype)
            if done:
                t.setup_seconds["kernel_precompile"] = done["wall_s"]
        self.warmup_step_seconds = []
        with torch.cuda.stream(side):
            for _ in range(GRAPH_WARMUP_STEPS):  # cuDNN autotuning, and compilation for compile_cuda_graph
                s0 = time.perf_counter()
                t.optimizer.zero_grad(set_to_none=True)
                body()
                side.synchronize()
                self.warmup_step_seconds.append(time.perf_counter() - s0)
        torch.cuda.current_stream(dev).wait_stream(side)
        torch.cuda.synchronize(dev)
        self.warmup_seconds = time.perf_counter() - t0
        t.optimizer.zero_grad(set_to_none=True)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.static_loss = body()
        torch.cuda.synchronize(dev)

    def run(self, idx: torch.Tensor | None) -> torch.Tensor:
        if idx is not None:
            self.static_idx.copy_(idx)
        self.graph.replay()
        return self.static_loss
