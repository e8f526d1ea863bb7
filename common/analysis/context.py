"""What the sections of one run share: device, settings, data, samplers, energy meter,
the run-wide timeline of spans, and what one section hands another (``Handoff``, typed)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from common.analysis.settings import Settings
from common.atomic import atomic_path
from common.layout import file_name
from common.measure.energy import EnergyMeter
from common.measure.samplers import Monitor
from common.measure.timing import Span, Timer


@dataclass
class Handoff:
    """What one part of a run hands another, by name (a misspelt name fails at once)."""

    section_spans: list[dict] = field(default_factory=list)  # engine / custom run -> utilization_patterns
    figure_arrays: dict[str, Any] = field(default_factory=dict)  # section -> arrays its figure draws (engine pops)
    pipeline: Any = None  # a custom-pipeline run: the user's pipeline (common.pipeline_protocol)
    custom_configs: dict[Any, Any] = field(default_factory=dict)  # custom run: levers -> result measured once


@dataclass
class Context:
    settings: Settings
    device: torch.device
    root: Path  # <results>/gpu_results or cpu_results
    environment: dict
    monitor: Monitor | None = None
    energy: EnergyMeter | None = None
    timeline: list[Span] = field(default_factory=list)
    cache: Handoff = field(default_factory=Handoff)
    progress: bool = True
    _data: Any = None

    @property
    def kind(self) -> str:
        return "cuda" if self.device.type == "cuda" else "cpu"

    def name(self, base: str) -> str:
        return file_name(self.kind, base)

    def folder(self, section: str) -> Path:
        path = self.root if section == "" else self.root / section
        path.mkdir(parents=True, exist_ok=True)
        return path

    def timer(self, tag: str, sync: bool = True) -> Timer:
        return Timer(str(self.device), sync=sync, tag=tag, sink=self.timeline)

    def tqdm(self, total: int, desc: str):
        from tqdm.auto import tqdm

        return tqdm(total=total, desc=desc, disable=not self.progress, leave=False, dynamic_ncols=True)

    @property
    def data(self):
        """MedNIST split and decoded arrays (lazy, shared by the sections)."""
        if self._data is None:
            from common.workloads.mednist_data import load_mednist

            s = self.settings
            self._data = load_mednist(s.data_dir, s.val_fraction, s.test_fraction, s.seed,
                                      max_train=s.max_train_images, max_eval=s.max_eval_images,
                                      progress=self.progress)
            bad = self._data.problems()
            if any(bad.values()):
                print(f"data: {len(bad['skipped_images'])} image(s) skipped, {len(bad['converted_images'])} "
                      f"converted, {len(bad['ignored_entries'])} other entry(ies) ignored (named in the report)",
                      flush=True)
        return self._data

    def save_arrays(self, path: Path, arrays: dict[str, np.ndarray]) -> Path:
        with atomic_path(path, suffix=".npz") as tmp:
            with open(tmp, "wb") as fh:
                np.savez_compressed(fh, **arrays)
        return path
