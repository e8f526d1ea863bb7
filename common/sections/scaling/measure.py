"""Section ``scaling``: the device-resident training configuration (batched device augmentation,
bf16 + channels_last on a GPU, Adam) trained data-parallel through torchrun and
DistributedDataParallel on 1, 2, 4, ... GPUs (NCCL), or on the CPU in 1, 2, ... gloo processes
that share the cores. Per count: global throughput, weak-scaling efficiency (the per-GPU batch
stays, the global batch grows; Adam's learning rate grows with its square root) and
strong-scaling efficiency (the global batch stays, split over the GPUs), time from the worker's
start to the target validation accuracy with the test accuracy, per-device utilization, power and
J/image (each rank samples its own device), and the communication share of the step.

On GPUs each rank runs the best single-GPU step: by default (``SCALING_GRAPH = "cuda_graph"``) the
whole step, DDP's all-reduce included, captured in a CUDA graph and replayed
(``common.workloads.distributed_graph``), without cuDNN autotuning (``SCALING_CUDNN_BENCHMARK``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from common.errors import UserError
from common.measure.stats import ratio
from common.workloads.distributed_launch import RankFailure, Rendezvous, launch

DDP_OPTIONS = {"bucket_cap_mb": 25, "gradient_as_bucket_view": True, "static_graph": False}
COMM_STEPS = 10  # steps whose all-reduces the communication hook times, per batch size


def counts_for(n: int) -> list[int]:
    """1, 2, 4, ... below ``n``, then ``n``."""
    out, c = [], 1
    while c < n:
        out.append(c)
        c *= 2
    return out + [n]


def plan(settings, kind: str, n_train: int) -> dict[str, Any]:
    """What to launch: [(workers per machine, rendezvous)] and the per-worker batch."""
    sc = settings.scaling
    notes: list[str] = []
    rdzv = Rendezvous(sc["nnodes"], sc["node_rank"], sc["master_addr"], sc["master_port"])
    if kind == "cuda":
        import torch

        visible = torch.cuda.device_count()
        per_node = sc["scaling_gpus"] or visible
        if per_node > visible:
            raise UserError(f"--gpus {per_node} (config.SCALING_GPUS): only {visible} GPU(s) visible on this machine")
        local = counts_for(per_node) if rdzv.node_rank == 0 else []
        counts = [(c, Rendezvous()) for c in local] + ([(per_node, rdzv)] if rdzv.nnodes > 1 else [])
        batch, unit = sc["scaling_batch_per_gpu"], "GPU"
    else:
        cores = settings.cpu_threads
        procs = [p for p in sc["scaling_cpu_procs"] if p <= cores]
        if len(procs) < len(sc["scaling_cpu_procs"]):
            notes.append(f"process counts above the {cores} threads of this run skipped")
        counts = [(p, Rendezvous()) for p in procs or [1]] + ([(max(procs or [1]), rdzv)] if rdzv.nnodes > 1 else [])
        batch = min(sc["scaling_cpu_batch_per_proc"], settings.batch_size)
        unit = "process"
    widest = max(c * r.nnodes for c, r in counts) if counts else 1
    if n_train < 2 * widest:
        raise UserError(f"{n_train} training images cannot feed {widest} workers; use more images (DATA_DIR) or "
                        "fewer workers (--gpus / SCALING_CPU_PROCS)")
    fit = max(1, n_train // (2 * widest))  # at least two steps per epoch at the widest count
    if batch > fit:
        notes.append(f"per-{unit} batch {fit} instead of {batch}: {n_train} training images must give the "
                     f"{widest}-{unit} run two steps per epoch")
        batch = fit
    return {"counts": counts, "batch": batch, "unit": unit, "notes": notes,
            "cores": settings.cpu_threads}


def step_for(settings, kind: str) -> str:
    """The ranks' training step: SCALING_GRAPH on GPUs ("cuda_graph", the single-GPU winner's captured
    step, unless set to "none"); eager on CPUs, which have no CUDA graphs."""
    return settings.scaling_graph if kind == "cuda" else "none"


def spec_for(settings, kind: str, batch: int, n: int, threads: int) -> dict[str, Any]:
    s = settings
    cuda = kind == "cuda"
    return {"device": kind, "threads": threads, "seed": s.seed,
            "data": {"data_dir": s.data_dir, "val_fraction": s.val_fraction, "test_fraction": s.test_fraction,
                     "split_seed": s.seed, "max_train": s.max_train_images, "max_eval": s.max_eval_images},
            "per_rank_batch": batch, "strong_per_rank_batch": batch // n if n > 1 and batch // n >= 1 else None,
            "base_lr": s.lr, "base_batch": s.base_batch, "epochs": s.epochs, "target": s.accuracy_target,
            "precision": "bf16" if cuda else "fp32", "channels_last": True,
            "cudnn_benchmark": s.scaling_cudnn_benchmark if cuda else False, "graph": step_for(s, kind),
            "ddp": dict(DDP_OPTIONS),
            "warmup_steps": max(1, s.warmup_steps), "steps": s.measure_steps, "repeats": max(2, s.repeats),
            "comm_steps": min(COMM_STEPS, max(2, s.measure_steps)), "sample_hz": s.sample_hz,
            "collective_timeout_s": s.scaling["scaling_timeout_s"]}


def run_scaling(settings, kind: str, n_train: int, log_dir: Path, say=print) -> dict[str, Any]:
    """Launch every count, one after the other; the rows and efficiencies from their results."""
    p = plan(settings, kind, n_train)
    runs: dict[str, Any] = {}
    for n, rdzv in p["counts"]:
        world = n * rdzv.nnodes
        threads = max(1, p["cores"] // n)  # the cores shared out: no rank oversubscribes them
        spec = spec_for(settings, kind, p["batch"], world, threads)
        say(f"[scaling] {world} {p['unit']}(es) on {rdzv.nnodes} machine(s): per-{p['unit']} batch {p['batch']}, "
            f"{threads} thread(s) each")
        log = log_dir / f"{'gpu' if kind == 'cuda' else 'cpu'}_scaling_{world}.log"
        try:
            res = launch(spec, n, log, settings.scaling["scaling_timeout_s"], rdzv)
        except RankFailure as exc:
            raise RankFailure(f"scaling at {world} {p['unit']}(es): {exc}") from None
        if res is not None:
            runs[str(world)] = res
    return summarise(kind, runs, p, settings)


def _eff(values: list[float], base: list[float], n: int) -> dict[str, Any]:
    r = ratio(values, base)  # timed windows of one process: a window range, not a confidence interval
    return {"value": r.value / n, "ci95": [r.ci95[0] / n, r.ci95[1] / n], "interval_kind": r.interval_kind}


def summarise(kind: str, runs: dict[str, Any], p: dict[str, Any], settings) -> dict[str, Any]:
    unit = p["unit"]
    counts = sorted(int(k) for k in runs)
    out: dict[str, Any] = {"device": kind, "unit": unit, "units": "GPUs" if unit == "GPU" else "processes",
                           "counts": counts, "notes": p["notes"],
                           "per_worker_batch": p["batch"], "ddp": DDP_OPTIONS, "nnodes": settings.scaling["nnodes"],
                           "node_rank": settings.scaling["node_rank"], "runs": runs, "rows": []}
    if not runs:
        out.update(available=False, reason=f"node rank {settings.scaling['node_rank']} only lends its ranks; "
                                           "node rank 0 writes the record")
        return out
    base = runs[str(counts[0])]["throughput"]["weak"]["images_per_s"]["values"]
    for n in counts:
        res = runs[str(n)]
        tp, tr = res["throughput"], res["training"]
        strong = tp.get("strong") or (tp["weak"] if n == counts[0] else None)
        comm = (res.get("comm") or {}).get("weak") or {}
        st = tr.get("step") or {}  # the training step: the one time to target ran
        out["rows"].append({
            "workers": n, "images_per_s": tp["weak"]["images_per_s"], "global_batch": res["global_batch"],
            "weak_efficiency": _eff(tp["weak"]["images_per_s"]["values"], base, n / counts[0]),
            "strong_images_per_s": strong and strong["images_per_s"],
            "strong_efficiency": strong and _eff(strong["images_per_s"]["values"], base, n / counts[0]),
            "strong_per_worker_batch": strong and strong["per_rank_batch"], "lr": res["lr"],
            "time_to_target_s": tr["time_to_target_s"], "time_to_target_from_launch_s":
                tr["time_to_target_from_launch_s"], "epochs_to_target": tr["epochs_to_target"],
            "train_s_to_target": tr["train_s_to_target"],
            "target_reason": tr["target_reason"], "test_accuracy": tr["test_accuracy"],
            "final_val_accuracy": tr["final_val_accuracy"], "startup_s": res["startup_s"],
            "comm_in_flight_share": comm.get("allreduce_in_flight_share"),
            "comm_exposed_share": comm.get("exposed_share"), "allreduce_bytes_per_step": comm.get("bytes_per_step"),
            "comm_method": comm.get("method"),
            "step": st.get("graph", "none"), "graph_reason": st.get("graph_reason"),
            "graph_warmup_steps": st.get("warmup_steps"), "graph_warmup_s": st.get("warmup_s"),
            "graph_capture_s": st.get("capture_s"),
            "graph_captured_since_process_start_s": st.get("captured_since_process_start_s"),
            "window_step": tp["weak"].get("step"),
            "j_per_image": tp["weak"]["j_per_image"], "energy_reason": tp["weak"]["energy_reason"],
            "per_device": tp["weak"]["per_device"]})
    if len(counts) < 2:
        what = (f"{counts[0]} GPU visible (torch.cuda.device_count()); scaling needs at least 2 GPUs (or several "
                "machines: --nnodes)" if kind == "cuda" else
                f"one process count measured (SCALING_CPU_PROCS = {tuple(settings.scaling['scaling_cpu_procs'])}, "
                f"{p['cores']} thread(s) in this run); scaling needs at least two")
        out.update(available=False, reason=f"scaling not measurable: {what}")
    else:
        out.update(available=True, reason=None)
    if kind == "cuda":  # the comparison's reader (common.comparison.compute.scalability)
        out["scaling"] = [{"gpus": r["workers"], "images_per_s": r["images_per_s"]} for r in out["rows"]]
    return out


def measure(ctx) -> dict[str, Any]:
    import torch

    if ctx.device.type == "cuda":
        torch.cuda.empty_cache()  # the workers share this process's GPU
    n_train = len(ctx.data.split.train_paths)
    return run_scaling(ctx.settings, ctx.kind, n_train, ctx.root / "metrics")


def _f(v, fmt: str) -> str:
    return "n/a" if v is None else fmt.format(v)


def _rate(v: float) -> str:
    return f"{v:.0f}" if v >= 100 else f"{v:.3g}"


def table(data: dict[str, Any]) -> str:
    """The scaling rows as a text table (``benchmarks/scaling.py --from-record``)."""
    units = data.get("units", data["unit"] + "s")
    kind = next((r["images_per_s"].get("interval_kind") for r in data["rows"]), None)
    what = "95% CI" if kind and "CI" in kind else "window range"  # say which interval the brackets hold
    head = (f"{units:>9} | step  | {'global img/s (' + what + ')':<28} | weak eff | strong eff | time to target | "
            "test acc | comm in flight / exposed | J/image")
    lines = [head, "-" * len(head)]
    for r in data["rows"]:
        ips = r["images_per_s"]
        se = r["strong_efficiency"]
        tt = (f"{r['time_to_target_s']:.1f} s (ep {r['epochs_to_target']})" if r["time_to_target_s"] is not None
              else "not reached")
        ci = f"{_rate(ips['median'])} ({_rate(ips['ci95'][0])}-{_rate(ips['ci95'][1])})"
        step = "graph" if r.get("step") == "cuda_graph" else "eager"
        lines.append(f"{r['workers']:>9} | {step:<5} | {ci:<28} | {r['weak_efficiency']['value']:>8.3f} | "
                     f"{_f(se and se['value'], '{:.3f}'):>10} | "
                     f"{tt:>14} | {100 * r['test_accuracy']:>7.2f}% | "
                     f"{_f(r['comm_in_flight_share'], '{:.1%}'):>11} / {_f(r['comm_exposed_share'], '{:.1%}'):<10} | "
                     f"{_f(r['j_per_image'], '{:.4f}')}")
    if not data.get("available"):
        lines.append(data.get("reason") or "")
    lines += [f"note: {n}" for n in data.get("notes", [])]
    if data.get("device") == "cuda":  # a GPU count that did not replay the captured step, and why
        lines += [f"note: {r['workers']} {units}: eager step ({r['graph_reason']})" for r in data["rows"]
                  if r.get("step") != "cuda_graph" and r.get("graph_reason")]
    return "\n".join(lines)
