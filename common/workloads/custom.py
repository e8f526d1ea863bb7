"""A user's pipeline (common/pipeline_protocol.py) as a staged workload: training steps split into
data_wait, h2d, forward (with the loss), backward and optimizer, timed with the suite's Timer
windows; throughput windows with the EnergyMeter; device batches of any size built from the
pipeline's own samples. Levers change one thing at a time on a fresh copy of the model."""

from __future__ import annotations

import contextlib
import copy
import itertools
from dataclasses import dataclass
from typing import Any

import torch

from common.measure.timing import Timer, clock, cuda_sync
from common.pipeline_protocol import CustomPipeline
from common.workloads.training import autocast_ctx


@dataclass(frozen=True)
class CustomLevers:
    device_resident: bool = False
    precision: str = "fp32"
    channels_last: bool = False

    def label(self) -> str:
        parts = ["device-resident data" if self.device_resident else "data as given", self.precision]
        if self.channels_last:
            parts.append("channels_last")
        return ", ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {"device_resident": self.device_resident, "precision": self.precision,
                "channels_last": self.channels_last, "data_path": "device_resident" if self.device_resident
                else "as_given"}


def split_batch(batch: Any) -> tuple[Any, Any]:
    if isinstance(batch, dict):
        keys = list(batch)
        return batch[keys[0]], batch[keys[1]] if len(keys) > 1 else None
    if isinstance(batch, (tuple, list)) and len(batch) >= 2:
        return batch[0], batch[1]
    raise TypeError(f"a training batch must be (inputs, targets); got {type(batch).__name__}")


def loader_of(p: CustomPipeline, batch_size: int | None = None):
    if p.train_loader is not None and batch_size is None:
        return p.train_loader
    source = p.dataset if p.dataset is not None else getattr(p.train_loader, "dataset", None)
    if source is None:
        raise ValueError("no dataset to build batches of another size from (give the pipeline a dataset)")
    return torch.utils.data.DataLoader(source, batch_size=batch_size or p.batch_size, shuffle=True, num_workers=0,
                                       generator=torch.Generator().manual_seed(0))


def memory_format(x: torch.Tensor, channels_last: bool) -> torch.Tensor:
    if not channels_last:
        return x
    if x.dim() == 4:
        return x.contiguous(memory_format=torch.channels_last)
    if x.dim() == 5:
        return x.contiguous(memory_format=torch.channels_last_3d)
    return x


def to_device(x: Any, device: torch.device, channels_last: bool = False) -> Any:
    if isinstance(x, torch.Tensor):
        return memory_format(x.to(device, non_blocking=True), channels_last)
    if isinstance(x, (tuple, list)):
        return type(x)(to_device(v, device, channels_last) for v in x)
    return x


def make_optimizer(spec: Any, model: torch.nn.Module) -> torch.optim.Optimizer:
    """A new optimizer over ``model``: from a factory, or the same class and settings as a given one."""
    if isinstance(spec, torch.optim.Optimizer):
        return type(spec)(model.parameters(), **spec.defaults)
    return spec(model.parameters())


def channels_last_applies(x: Any) -> bool:
    return isinstance(x, torch.Tensor) and x.dim() in (4, 5)


class CustomTrainer:
    """One configuration of the user's training step on a fresh copy of the model."""

    def __init__(self, p: CustomPipeline, device: torch.device, levers: CustomLevers, cached_batches: int = 4,
                 batch_size: int | None = None):
        self.p, self.device, self.levers = p, device, levers
        torch.manual_seed(0)
        self.loader = loader_of(p, batch_size)
        self.model = copy.deepcopy(p.model).to(device)
        if levers.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last_3d if self._is_3d() else torch.channels_last)
        self.model.train()
        self.opt = make_optimizer(p.optimizer, self.model)
        self._cache: list | None = None
        if levers.device_resident:
            batches = list(itertools.islice(iter(self.loader), cached_batches))
            self._cache = [tuple(to_device(v, device, levers.channels_last) for v in split_batch(b)) for b in batches]
        self._it = self._batches()

    def _is_3d(self) -> bool:
        first = next(iter(self.loader))
        return split_batch(first)[0].dim() == 5

    def _batches(self):
        if self._cache is not None:
            yield from itertools.cycle(self._cache)
        while True:
            yield from self.loader

    def step(self, timer: Timer | None = None, step: int | None = None) -> int:
        """One training step; each stage in its own window when ``timer`` is given. Images in the batch."""
        win = (lambda name: timer.window(name, step=step)) if timer else (lambda name: contextlib.nullcontext())
        with win("data_wait"):
            batch = next(self._it)
        with win("h2d"):
            x, y = (batch if self._cache is not None else
                    tuple(to_device(v, self.device, self.levers.channels_last) for v in split_batch(batch)))
        with win("forward"):
            with autocast_ctx(self.device, self.levers.precision):
                loss = self.p.loss_fn(self.model(x), y)
        with win("backward"):
            loss.backward()
        with win("optimizer"):
            self.opt.step()
            self.opt.zero_grad(set_to_none=True)
        self.last_loss = float(loss.detach())
        return int(x.shape[0])

    def model_only_step(self, x: torch.Tensor, y: Any) -> int:
        with autocast_ctx(self.device, self.levers.precision):
            loss = self.p.loss_fn(self.model(x), y)
        loss.backward()
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        return int(x.shape[0])


def throughput(run_step, steps: int, repeats: int, warmup: int, device: torch.device, energy=None,
               timer: Timer | None = None, name: str = "window") -> dict[str, Any]:
    """Images/s over ``repeats`` windows of ``steps`` unsynchronized steps (synchronized at the window
    edges), with the energy of each window where counters exist."""
    for _ in range(warmup):
        run_step()
    rates, windows, energies = [], [], []
    for _ in range(repeats):
        ctx = energy.window() if energy is not None else contextlib.nullcontext({})
        win = timer.window(name) if timer is not None else contextlib.nullcontext()
        with ctx as e, win:
            cuda_sync(device)
            a = clock()
            images = sum(run_step() for _ in range(steps))
            cuda_sync(device)
            dt = clock() - a
        rates.append(images / dt)
        windows.append(dt)
        energies.append(dict(e, images=images))
    return {"images_per_s": rates, "window_s": windows, "energy": energies}


def sample_pool(p: CustomPipeline, need: int) -> tuple[torch.Tensor, Any, int]:
    """(inputs, targets, distinct samples) with ``need`` rows, from the pipeline's own batches;
    where it has fewer samples they are repeated (the record says how many were distinct)."""
    xs, ys, n = [], [], 0
    for batch in loader_of(p):
        x, y = split_batch(batch)
        xs.append(x)
        ys.append(y)
        n += int(x.shape[0])
        if n >= need:
            break
    x = torch.cat(xs)
    y = torch.cat(ys) if isinstance(ys[0], torch.Tensor) else None
    distinct = int(x.shape[0])
    reps = -(-need // distinct)
    x = x.repeat(reps, *[1] * (x.dim() - 1))[:need]
    if y is not None:
        y = y.repeat(reps, *[1] * (y.dim() - 1))[:need]
    return x, y, distinct


def example_input(p: CustomPipeline) -> torch.Tensor:
    if p.example_input is not None:
        return p.example_input
    return split_batch(next(iter(loader_of(p))))[0]


def inference_fn(p: CustomPipeline, device: torch.device, precision: str = "fp32", channels_last: bool = False,
                 spatial_dims: int = 2):
    """A callable inputs -> outputs on ``device``: the pipeline's infer_fn, or its model in eval mode
    (a copy, moved to the device; channels_last for 2-D, channels_last_3d for 3-D inputs), under
    no_grad and the precision's autocast."""
    if p.infer_fn is not None:
        base = p.infer_fn
    else:
        model = copy.deepcopy(p.model).to(device).eval()
        if channels_last:
            model = model.to(memory_format=torch.channels_last_3d if spatial_dims == 3 else torch.channels_last)
        base = model

    @torch.no_grad()
    def fn(x):
        with autocast_ctx(device, precision):
            return base(x)

    return fn
