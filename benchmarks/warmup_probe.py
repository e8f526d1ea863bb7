#!/usr/bin/env python3
"""Where a rung's one-time costs go, measured in a fresh process: CUDA context, data,
model construction, upload, and each eager step before a CUDA graph is captured (with
torch.profiler's top operators by self CPU time over the first step), then the capture.

    python benchmarks/warmup_probe.py --levers device_resident,bf16,channels_last,b300,cuda_graph --out probe.json
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def parse_levers(spec: str):
    from common.workloads.levers import Levers

    lv = Levers()
    for tok in [t.strip() for t in spec.split(",") if t.strip()]:
        if tok in ("tutorial", "cached", "device_resident"):
            lv = lv.replace(data_path=tok, num_workers=0 if tok == "device_resident" else lv.num_workers)
        elif tok in ("fp32", "bf16", "fp16"):
            lv = lv.replace(precision=tok)
        elif tok == "channels_last":
            lv = lv.replace(channels_last=True)
        elif tok == "gemm_1x1":
            lv = lv.replace(gemm_1x1=True)
        elif tok == "fused_adam":
            lv = lv.replace(fused_optimizer=True)
        elif tok.startswith("sched") and tok[5:].replace(".", "", 1).isdigit():
            lv = lv.replace(schedule_epochs=float(tok[5:]))
        elif tok == "no_autotune":
            lv = lv.replace(cudnn_benchmark=False)
        elif tok.startswith("b") and tok[1:].isdigit():
            lv = lv.replace(batch_size=int(tok[1:]))
        elif tok.startswith("w") and tok[1:].isdigit():
            lv = lv.replace(num_workers=int(tok[1:]))
        else:
            lv = lv.replace(graph=tok)
    return lv


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--levers", required=True, help="comma-separated lever tokens (see parse_levers)")
    p.add_argument("--data-dir", default="data")
    p.add_argument("--profile", action="store_true", help="torch.profiler over the first step")
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    t_import = time.perf_counter()
    import torch

    from common.atomic import write_json
    from common.workloads.decoded_cache import begin_decoded
    from common.workloads.mednist_data import load_mednist
    from common.workloads.training import Trainer

    out = {"levers": args.levers, "import_torch_s": time.perf_counter() - t_import}
    lv = parse_levers(args.levers)
    dev = torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    torch.backends.cudnn.benchmark = lv.cudnn_benchmark
    t0 = time.perf_counter()
    data = load_mednist(args.data_dir, 0.1, 0.1, 0, check=False)
    out["list_split_s"] = time.perf_counter() - t0
    a = time.perf_counter()
    finish = begin_decoded(data, None, 16, start_method="spawn")  # decoding while CUDA starts, as in a run
    out["decode_start_s"] = time.perf_counter() - a
    a = time.perf_counter()
    torch.zeros(1, device=dev)
    if dev.type == "cuda":
        torch.cuda.synchronize()
    out["cuda_init_s"] = time.perf_counter() - a
    a = time.perf_counter()
    out["decode"] = finish()
    out["decode_wait_s"] = time.perf_counter() - a
    out["data_s"] = time.perf_counter() - t0
    a = time.perf_counter()
    tr = Trainer(data, lv, dev, lr=1e-3, base_batch=300, seed=0)
    out["build_s"] = time.perf_counter() - a
    if lv.data_path == "device_resident":
        tr.resident()
    steps = []
    for i in range(4):
        a = time.perf_counter()
        if i == 0 and args.profile:
            from torch.profiler import ProfilerActivity, profile

            with profile(activities=[ProfilerActivity.CPU]) as prof:
                tr.run_steps(1)
                torch.cuda.synchronize()
            out["profile_top"] = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25)
        else:
            tr.run_steps(1)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        steps.append(time.perf_counter() - a)
    out["first_steps_s"] = steps
    out["setup_seconds"] = tr.setup_seconds
    out["total_s"] = time.perf_counter() - t0
    print({k: v for k, v in out.items() if k != "profile_top"})
    if "profile_top" in out:
        print(out["profile_top"])
    if args.out:
        write_json(args.out, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
