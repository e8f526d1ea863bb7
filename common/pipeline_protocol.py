"""What your pipeline hands the suite so that ``analyze_custom_pipeline`` can measure it.

Fill in what your pipeline has; what is left as ``None`` is skipped, and the record says why
(nothing is invented in its place). Either build a :class:`CustomPipeline`, or pass any object
with the same attribute names (``PipelineLike``): :func:`as_pipeline` reads them with ``getattr``.

Training (stage breakdown, data stall and Amdahl bounds, batch sweep, levers):
    ``model``, ``loss_fn(outputs, targets)``, ``optimizer`` (an optimizer over ``model``'s
    parameters, or a factory ``params -> optimizer``), and ``train_loader`` (an iterable of
    ``(inputs, targets)`` batches, e.g. a DataLoader) or ``dataset`` (items ``(input, target)``;
    the suite builds a DataLoader with ``batch_size``).
Inference (batch-1 latency percentiles, throughput over batch sizes, levers):
    ``model`` or ``infer_fn(inputs) -> outputs``, and an example: ``example_input`` (one batch)
    or the first batch of the loader/dataset.
Transforms (timed one by one, per sample): ``transforms`` as ``[(name, callable), ...]`` applied
    in order to ``transform_inputs`` (raw samples; default: up to 16 dataset items' inputs).
Names: ``name`` appears in every figure and the tree's folder; ``stages`` renames the suite's
    stages in figures (``{"forward": "encoder+decoder"}``).

The suite trains copies of ``model`` (``copy.deepcopy``) for a few steps; your model is left as it was.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, Protocol, runtime_checkable

from common.errors import UserError


@runtime_checkable
class PipelineLike(Protocol):
    """Any object with at least a ``name`` and a ``model`` or an ``infer_fn``."""

    name: str


@dataclass
class CustomPipeline:
    name: str
    model: Any = None  # torch.nn.Module
    loss_fn: Callable[[Any, Any], Any] | None = None
    optimizer: Any = None  # torch.optim.Optimizer over model.parameters(), or params -> Optimizer
    train_loader: Iterable | None = None  # (inputs, targets) batches
    dataset: Any = None  # a map-style dataset of (input, target) items (used when train_loader is None)
    batch_size: int = 8  # of the DataLoader built from dataset, and the base of the batch sweep
    infer_fn: Callable[[Any], Any] | None = None  # inputs -> outputs; default: model in eval mode
    example_input: Any = None  # one batch of inputs for inference; default: the first training batch
    transforms: Sequence[tuple[str, Callable[[Any], Any]]] | None = None
    transform_inputs: Sequence[Any] | None = None
    stages: dict[str, str] = field(default_factory=dict)  # suite stage name -> your name
    batch_sizes: Sequence[int] | None = None  # of the sweep; default: the settings' batch sizes
    description: str = ""  # one line for the report


def slug(name: str) -> str:
    s = re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_").lower()
    if not s:
        raise UserError(f"pipeline name {name!r} has no letter or digit: give the pipeline a name such as 'my_unet'")
    return s


def as_pipeline(obj: Any) -> CustomPipeline:
    """A CustomPipeline from ``obj`` (itself, or any object with the same attribute names)."""
    if isinstance(obj, CustomPipeline):
        p = obj
    else:
        name = getattr(obj, "name", None) or type(obj).__name__
        p = CustomPipeline(name=str(name), **{f.name: getattr(obj, f.name) for f in fields(CustomPipeline)
                                             if f.name != "name" and hasattr(obj, f.name)})
    slug(p.name)
    if p.model is None and p.infer_fn is None:
        raise UserError(f"pipeline {p.name!r} gives neither a model nor an infer_fn: set at least one "
                        "(see common/pipeline_protocol.py)")
    if not isinstance(p.batch_size, int) or p.batch_size < 1:
        raise UserError(f"pipeline {p.name!r}: batch_size {p.batch_size!r} must be a positive integer")
    for item in p.transforms or []:
        if not (isinstance(item, (tuple, list)) and len(item) == 2 and callable(item[1])):
            raise UserError(f"pipeline {p.name!r}: transforms must be [(name, callable), ...]; got {item!r}")
    return p


def missing_for_training(p: CustomPipeline) -> str | None:
    """Why the pipeline cannot be trained by the suite, or None."""
    lacks = [n for n, v in (("model", p.model), ("loss_fn", p.loss_fn), ("optimizer", p.optimizer)) if v is None]
    if p.train_loader is None and p.dataset is None:
        lacks.append("train_loader or dataset")
    return f"the pipeline gives no {', '.join(lacks)}" if lacks else None
