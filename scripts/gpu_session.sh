#!/usr/bin/env bash
# One device session on a lent GPU machine (this workplace's `device` tool): install the
# carried wheels, extract the carried MedNIST sample, run the GPU tests, the winning-solution
# benchmark and the GPU analysis, and leave logs + results under $OUT.
# Usage (from the repo root there): bash scripts/gpu_session.sh [importtime|tests|measuregpu|quick|default|bench|pair|breakdown|cpuladder|overhead|warmup|ttprobe|segexample|inference|scaling]...
# BENCH_ARGS, BREAKDOWN_ARGS, CPU_BENCH_ARGS and INFERENCE_ARGS pass arguments to the benchmarks; SEG_ARGS to the
# ttprobe: WARMUP_LEVERS and SCHED_CANDIDATES (empty: none), TTT_RUNGS, TTT_SET; tests: GPU_TESTS_K (pytest -k);
# segmentation example (segexample: its tree lands in $OUT/segexample.tar.gz).
# pair: the ladder split over 2 GPUs at once, each half on its own GPU and half the cores: PAIRZERO_RUNGS (with the
# recipe; default: the recipe alone) on GPU 0, PAIRONE_RUNGS (--no-recipe) on GPU 1, PAIRZERO_ARGS/PAIRONE_ARGS/PAIR_ARGS
# to the halves, TIMEOUT_PAIR (s) caps each; ranked as one by --merge into $OUT/ladder.json.
# measuregpu: the device-side checks (window vs CUDA events, NVML vs nvidia-smi, sampler read time,
# graph vs eager) with their figures in $OUT/measure_gpu.json; overhead: $OUT/overhead.json (~3 min).
# SCALING_ARGS passes arguments to benchmarks/scaling.py; TIMEOUT_SCALING and TIMEOUT_INFERENCE (seconds) cap
# those steps so that the steps after them still run within one device call.
set -uo pipefail
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
  || { echo "wheel install failed"; exit 1; }
# byte-compile the carried packages once (installed with --no-compile): every child process imports monai
python3 -m compileall -q -j 0 /tmp/site > /dev/null 2>&1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 MEDNIST_SAMPLE_ARCHIVE=$PWD/.gpu_carry/MedNIST-sample.tar.gz
# the copy on the device has no .git: the records take the commit from here (written by the caller)
SUITE_COMMIT=${SUITE_COMMIT:-$(cat .gpu_carry/commit 2>/dev/null)}
export SUITE_COMMIT
{ date -u; nvidia-smi; python3 -c "import torch, monai; print(torch.__version__, torch.version.cuda, monai.__version__)"; } \
  > "$OUT/machine.txt" 2>&1
python3 download_mednist.py --from-archive .gpu_carry/MedNIST-sample.tar.gz --data-dir data > /dev/null || exit 1
for what in "$@"; do
  case $what in
    importtime) # where a child's process start goes (it is recorded beside the clock, not on it)
             python3 -X importtime -c "import monai.networks.nets" 2> "$OUT/importtime.txt" ;;
    tests) python3 -m pytest -q -rs -s tests/workloads/test_gpu.py ${GPU_TESTS_K:+-k "$GPU_TESTS_K"} 2>&1 \
             | tee "$OUT/gpu_tests.log" | tail -25 ;;
    measuregpu) rm -f "$OUT/measure_gpu.json"
             MEASURE_GPU_JSON="$OUT/measure_gpu.json" python3 -m pytest -q -rs -s tests/workloads/test_gpu.py \
             -k "window_agrees or power_samples or sampler_reads or matches_eager or sampler_sees" 2>&1 \
             | tee "$OUT/measure_gpu.log" | tail -25 ;;
    bench) python3 benchmarks/winning_solution.py --data-dir data --out "$OUT/ladder.json" --runs-dir "$OUT/ladder_runs" ${BENCH_ARGS:-} 2>&1 \
             | grep --line-buffered -v -i warn | tee "$OUT/ladder.log" | tail -16 ;;
    pair) n=$(nproc); h=$((n / 2)); mkdir -p /tmp/pair
          CUDA_VISIBLE_DEVICES=0 timeout "${TIMEOUT_PAIR:-3000}" taskset -c 0-$((h - 1)) python3 benchmarks/winning_solution.py \
            --data-dir data --rungs "${PAIRZERO_RUNGS:-recipe}" --out "$OUT/ladder_gpu0.json" --runs-dir /tmp/pair/runs0 \
            ${PAIR_ARGS:-} ${PAIRZERO_ARGS:-} > /tmp/pair/gpu0.log 2>&1 &
          CUDA_VISIBLE_DEVICES=1 timeout "${TIMEOUT_PAIR:-3000}" taskset -c $h-$((n - 1)) python3 benchmarks/winning_solution.py \
            --data-dir data --no-recipe --rungs "${PAIRONE_RUNGS:?set PAIRONE_RUNGS to the rungs of GPU 1}" \
            --out "$OUT/ladder_gpu1.json" --runs-dir /tmp/pair/runs1 ${PAIR_ARGS:-} ${PAIRONE_ARGS:-} > /tmp/pair/gpu1.log 2>&1 &
          wait
          for g in 0 1; do echo "== GPU $g"; grep -v -i warn /tmp/pair/gpu$g.log | tail -12; done
          python3 benchmarks/winning_solution.py --merge "$OUT/ladder_gpu0.json" "$OUT/ladder_gpu1.json" \
            --out "$OUT/ladder.json" 2>&1 | tee "$OUT/ladder.log" | tail -16
          tar czf "$OUT/pair_logs.tar.gz" -C /tmp pair ;;
    breakdown) python3 benchmarks/step_breakdown.py --data-dir data --out "$OUT/breakdown.json" ${BREAKDOWN_ARGS:-} 2>&1 \
             | grep --line-buffered -v -i -E "warn|profiler_st|USDT" | tee "$OUT/breakdown.log" | tail -16 ;;
    cpuladder) python3 benchmarks/winning_solution.py --device cpu --data-dir data --out "$OUT/cpu_ladder.json" \
             ${CPU_BENCH_ARGS:-} 2>&1 | grep --line-buffered -v -i warn | tee "$OUT/cpu_ladder.log" | tail -16 ;;
    warmup) for lv in device_resident,bf16,channels_last,b300,cuda_graph device_resident,bf16,channels_last,b300,cuda_graph,no_autotune \
                       device_resident,bf16,channels_last,b300; do
               python3 benchmarks/warmup_probe.py --levers $lv --profile --out "$OUT/warmup_${lv//,/_}.json" 2>&1 \
                 | grep -v -i warn | tee -a "$OUT/warmup.log" | tail -30
             done ;;
    ttprobe) # issue 15's probes: the first step's one-time costs with and without gemm_1x1 (fresh processes,
             # profiled), the schedule chosen on the validation split (benchmarks/schedule_probe.py, one JSON per
             # batch size), and two rungs' time to target without the recipe (benchmarks/ttt_probe.py)
             mkdir -p /tmp/probe15
             for lv in ${WARMUP_LEVERS-device_resident,bf16,channels_last,b300,cuda_graph,no_autotune \
                       device_resident,bf16,channels_last,b300,cuda_graph,no_autotune,gemm_1x1}; do
               python3 benchmarks/warmup_probe.py --levers $lv --profile --out "/tmp/probe15/warmup_${lv//,/_}.json" 2>&1 \
                 | grep -v -i warn | tee -a "$OUT/probe15.log" | tail -40
             done
             for cand in ${SCHED_CANDIDATES-300:1,1.5,2:1,2 150:1,1.5:1,2 1024:3,4:1,2}; do
               IFS=: read -r b sc lm <<< "$cand"
               python3 benchmarks/schedule_probe.py --data-dir data --batches "$b" --schedules "$sc" --lr-mults "$lm" \
                 --out "/tmp/probe15/schedule_probe_b$b.json" 2>&1 | grep -v -i warn | tee -a "$OUT/probe15.log" | tail -14
             done
             python3 benchmarks/ttt_probe.py --data-dir data --rungs ${TTT_RUNGS:-cuda_graph_prewarm,gemm_1x1} --seeds 0 \
               --out /tmp/probe15/ttt_probe.json 2>&1 | grep -v -i warn | tee -a "$OUT/probe15.log" | tail -12
             [ -n "${TTT_SET:-}" ] && python3 benchmarks/ttt_probe.py --data-dir data --rungs gemm_1x1 --seeds 0 \
               --set "$TTT_SET" --out /tmp/probe15/ttt_probe_set.json 2>&1 | grep -v -i warn | tee -a "$OUT/probe15.log" | tail -8
             tar czf "$OUT/probe15.tar.gz" -C /tmp probe15 ;;
    segexample) rm -rf /tmp/segexample
             python3 examples/custom_pipeline_segmentation.py --device cuda --results-dir /tmp/segexample \
             ${SEG_ARGS:---patch 64 --patches 32 --batch-size 4 --channels 16,32,64,128 --set BATCH_SIZES=1,2,4,8,16} \
             2>&1 | grep --line-buffered -v -i warn | tee "$OUT/segexample.log" | tail -20
             # one archive: the tree is deeper and holds more files than a device call brings back
             tar czf "$OUT/segexample.tar.gz" -C /tmp segexample ;;
    inference) timeout "${TIMEOUT_INFERENCE:-3000}" python3 benchmarks/inference_ladder.py --device cuda --data-dir data --out "$OUT/inference_ladder.json" \
             ${INFERENCE_ARGS:-} 2>&1 | grep --line-buffered -v -i warn | tee "$OUT/inference_ladder.log" | tail -24 ;;
    scaling) # data-parallel DenseNet121 on 1, 2, ... visible GPUs (torchrun + DDP, NCCL, NVLink multicast off);
             # per-count torchrun logs in $OUT/scaling_logs/; about 2-4 min on 2 H200s with the 9,600 training images
             timeout "${TIMEOUT_SCALING:-3000}" python3 benchmarks/scaling.py --data-dir data --out "$OUT/scaling.json" ${SCALING_ARGS:-} 2>&1 \
             | grep --line-buffered -v -i warn | tee "$OUT/scaling.log" | tail -14 ;;
    overhead) python3 benchmarks/sampler_overhead.py --device cuda --warmup-s 30 --seconds 5 --budget-s 120 \
             --out "$OUT/overhead.json" 2>&1 | grep --line-buffered -v -i warn | tee "$OUT/overhead.log" | tail -8 ;;
    quick|default)
      flag=$([ "$what" = quick ] && echo --quick || echo "")
      rm -rf comprehensive_gpu_cpu_analysis_results/gpu_results
      /usr/bin/time -v python3 comprehensive_gpu_analysis.py $flag --no-progress 2>&1 | grep --line-buffered -v -i warn \
        | tee "$OUT/gpu_$what.log" | grep -E "^\[|done|error|Elapsed|Maximum resident" | tail -20
      tar czf "$OUT/gpu_results_$what.tar.gz" comprehensive_gpu_cpu_analysis_results/gpu_results ;;
  esac
done
ls -la "$OUT"
