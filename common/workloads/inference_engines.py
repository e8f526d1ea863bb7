"""Serving engines for the inference ladder: one configuration object (ServeLevers) and the
predictors built from it. A predictor maps a float32 (B, 1, 64, 64) batch already on the device
to logits; what it costs once (compilation, export, CUDA-graph capture) is timed per batch size
by ``prepare``. An engine this machine cannot run raises RungSkipped with the reason."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import os
import tempfile
import time
from dataclasses import dataclass

import torch

from common.measure.timing import cuda_sync

ENGINES = ("pytorch", "onnxruntime")
GRAD_MODES = ("no_grad", "inference_mode")
PRECISIONS = ("fp32", "bf16_autocast", "bf16_cast")
GRAPHS = ("none", "cuda_graph", "compile", "compile_cuda_graph", "compile_reduce_overhead")
CAPTURED = ("cuda_graph", "compile_cuda_graph")  # the forward captured by the suite, one graph per batch size
NEEDS_CUDA = CAPTURED + ("compile_reduce_overhead",)
WARMUP_CALLS = 3  # calls before a capture (cuDNN algorithm choice, lazy initialisation, compilation)


class RungSkipped(Exception):
    """This rung cannot run here; the message says why (recorded as the rung's reason)."""


@dataclass(frozen=True)
class ServeLevers:
    engine: str = "pytorch"  # pytorch | onnxruntime (exported with torch.onnx, CPU execution provider)
    grad_mode: str = "no_grad"  # no_grad | inference_mode (no version counters or view tracking)
    channels_last: bool = False  # NHWC model weights and input
    precision: str = "fp32"  # fp32 | bf16_autocast (fp32 weights, bf16 compute) | bf16_cast (model and input in bf16)
    cpu_threads: int | None = None  # torch / ONNX Runtime intra-op threads (None: as the process has them)
    graph: str = "none"  # none | cuda_graph (forward captured per batch size) | compile (torch.compile) |
    # compile_cuda_graph (compiled forward inside the suite's capture) | compile_reduce_overhead (inductor's graphs)
    # torch.compile mode for compile / compile_cuda_graph (e.g. max-autotune-no-cudagraphs)
    compile_mode: str | None = None
    freezing: bool = False  # inductor freezing: weights as constants, BN folded, oneDNN weight prepacking (CPU)

    def __post_init__(self):
        for name, allowed in (("engine", ENGINES), ("grad_mode", GRAD_MODES), ("precision", PRECISIONS),
                              ("graph", GRAPHS)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} {getattr(self, name)!r} not in {allowed}")
        if self.cpu_threads is not None and self.cpu_threads < 1:
            raise ValueError("cpu_threads must be >= 1")
        if self.engine == "onnxruntime" and (self.graph != "none" or self.precision != "fp32"):
            raise ValueError("the onnxruntime engine runs the exported fp32 graph: graph='none', precision='fp32'")

    def replace(self, **changes) -> "ServeLevers":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def label(self) -> str:
        if self.engine == "onnxruntime":
            parts = ["onnxruntime"]
        else:
            parts = [self.precision, self.grad_mode] + (["channels_last"] if self.channels_last else [])
            if self.graph != "none":
                parts.append(self.graph + (f"({self.compile_mode})" if self.compile_mode else ""))
            if self.freezing:
                parts.append("freezing")
        if self.cpu_threads:
            parts.append(f"t{self.cpu_threads}")
        return " ".join(parts)


@contextlib.contextmanager
def cpu_threads(n: int | None):
    """torch's intra-op threads set to ``n`` inside the block (None: unchanged)."""
    prev = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(prev)


class TorchPredictor:
    """PyTorch eager, torch.compile, or the forward captured in CUDA graphs (one per batch size)."""

    def __init__(self, model: torch.nn.Module, levers: ServeLevers, device: torch.device):
        lv = self.levers = levers
        self.device = device
        if lv.graph in NEEDS_CUDA and device.type != "cuda":
            raise RungSkipped(f"{lv.graph} needs a CUDA device (this one is {device.type})")
        if lv.precision != "fp32":
            from common.workloads.ladder import bf16_ok

            ok, why = bf16_ok(device)
            if not ok:
                raise RungSkipped(why)
        m = copy.deepcopy(model).to(device).eval()
        if lv.channels_last:
            m = m.to(memory_format=torch.channels_last)
        if lv.precision == "bf16_cast":
            m = m.to(torch.bfloat16)
        self.model = m
        self.fn = m
        if lv.graph.startswith("compile"):
            mode = "reduce-overhead" if lv.graph == "compile_reduce_overhead" else lv.compile_mode
            options = {"freezing": True} if lv.freezing else None
            if options and mode:
                raise RungSkipped("torch.compile takes a mode or options, not both (freezing with a mode)")
            self.fn = torch.compile(m, mode=mode, dynamic=False, options=options)
        self._graphs: dict[int, tuple] = {}

    def _grad_ctx(self):
        return torch.inference_mode() if self.levers.grad_mode == "inference_mode" else torch.no_grad()

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        lv = self.levers
        with self._grad_ctx():
            if lv.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            if lv.precision == "bf16_cast":
                return self.fn(x.to(torch.bfloat16))
            if lv.precision == "bf16_autocast":  # no weight-cast cache inside a captured graph (freed on exit)
                with torch.autocast(self.device.type, dtype=torch.bfloat16, cache_enabled=lv.graph not in CAPTURED):
                    return self.fn(x)
            return self.fn(x)

    def prepare(self, batch: int) -> float:
        """Compile / capture / warm for ``batch``; returns the seconds it took (synchronized)."""
        cuda_sync(self.device)
        t0 = time.perf_counter()
        x = torch.zeros(batch, 1, 64, 64, device=self.device)
        if self.levers.graph in CAPTURED:
            if batch not in self._graphs:
                self._graphs[batch] = self._capture(x)
        else:
            for _ in range(WARMUP_CALLS):
                self(x)
        cuda_sync(self.device)
        return time.perf_counter() - t0

    def _capture(self, static_in: torch.Tensor) -> tuple:
        side = torch.cuda.Stream(self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side):
            for _ in range(WARMUP_CALLS):
                self._forward(static_in)
        torch.cuda.current_stream(self.device).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            static_out = self._forward(static_in)
        return graph, static_in, static_out

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.levers.graph in CAPTURED:
            captured = self._graphs.get(int(x.shape[0]))
            if captured is None:
                raise RuntimeError(f"no CUDA graph captured for batch {x.shape[0]}: call prepare({x.shape[0]}) first")
            graph, static_in, static_out = captured
            static_in.copy_(x)
            graph.replay()
            return static_out  # overwritten by the next replay: consume before calling again
        if self.levers.graph == "compile_reduce_overhead":
            torch.compiler.cudagraph_mark_step_begin()
        return self._forward(x)


class OnnxRuntimePredictor:
    """The model exported with torch.onnx (TorchScript exporter, dynamic batch) and run by ONNX
    Runtime's CPU execution provider with all graph optimisations."""

    def __init__(self, model: torch.nn.Module, levers: ServeLevers, device: torch.device):
        if device.type != "cpu":
            raise RungSkipped("ONNX Runtime rung serves on the CPU (the onnxruntime package's CPU execution "
                              f"provider); this ladder runs on {device.type}")
        try:
            import onnxruntime as ort
        except ImportError:
            raise RungSkipped("onnxruntime is not installed (pip install onnxruntime onnx)") from None
        try:
            import onnx  # noqa: F401  (torch.onnx.export writes the model through it)
        except ImportError:
            raise RungSkipped("torch.onnx.export needs the onnx package (pip install onnx)") from None
        self.levers, self.device = levers, device
        t0 = time.perf_counter()
        m = copy.deepcopy(model).cpu().float().eval()
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "model.onnx")
            try:
                export_onnx(m, path)
            except Exception as exc:  # an exporter failure is this rung's result, not the run's end
                first = str(exc).splitlines()[0] if str(exc) else ""
                raise RungSkipped(f"torch.onnx.export failed: {type(exc).__name__}: {first}") from exc
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = levers.cpu_threads or torch.get_num_threads()
            opts.inter_op_num_threads = 1
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            self.session = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
        self.export_s = time.perf_counter() - t0
        self.version = ort.__version__

    def prepare(self, batch: int) -> float:
        t0 = time.perf_counter()
        x = torch.zeros(batch, 1, 64, 64)
        for _ in range(WARMUP_CALLS):
            self(x)
        return time.perf_counter() - t0

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self.session.run(None, {"x": x.numpy()})[0])


def export_onnx(model: torch.nn.Module, path: str) -> None:
    import warnings

    x = torch.zeros(1, 1, 64, 64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(model, (x,), path, dynamo=False, input_names=["x"], output_names=["logits"],
                          dynamic_axes={"x": {0: "batch"}, "logits": {0: "batch"}}, opset_version=17)


def build_predictor(model: torch.nn.Module, levers: ServeLevers, device: torch.device):
    """The predictor for ``levers`` (raises RungSkipped where this machine cannot run it)."""
    if levers.engine == "onnxruntime":
        return OnnxRuntimePredictor(model, levers, device)
    return TorchPredictor(model, levers, device)
