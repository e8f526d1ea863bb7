"""benchmarks/: the step breakdown's kernel families and variant parsing, its CPU run, and
the winning-solution benchmark's CPU settings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import step_breakdown as sb
from benchmarks import winning_solution as ws
from common.errors import UserError
from common.workloads.levers import Levers

# kernel names as torch.profiler reports them on an H100/H200 (cuDNN 9, cuBLAS 13, inductor, ATen)
KERNELS = {
    "sm90_xmma_fprop_implicit_gemm_bf16bf16_bf16f32_f32_nhwckrsc_nhwc_tilesize128x64x64_warpgroupsize1x1x1":
        "convolution (cuDNN)",
    "void cudnn::cnn::wgrad_alg0_engine<__nv_bfloat16, 128, 6, 8, 3, 3, 5, false, 512>(int, int, int)":
        "convolution (cuDNN)",
    "void cudnn::bn_fw_tr_1C11_kernel_NCHW<float, float, int, 512, true, 1, true>(cudnnTensorStruct)":
        "batch norm (cuDNN/ATen)",
    "nvjet_tst_128x64_64x8_2x1_v_bz_TNN": "matrix product (cuBLAS)",
    "triton_poi_fused__native_batch_norm_legit_functional_relu_12": "inductor pointwise",
    "triton_red_fused__native_batch_norm_legit_functional_3": "inductor reduction",
    "triton_per_fused_cat_native_batch_norm_backward_40": "inductor reduction",
    "triton_tem_fused_mm_0": "matrix product (inductor template)",
    "void at::native::(anonymous namespace)::multi_tensor_apply_kernel<FusedAdamMathFunctor<float, 4>>":
        "optimizer (Adam)",
    "void at::native::vectorized_elementwise_kernel<4, at::native::FillFunctor<float>, std::array<char*, 1ul> >":
        "elementwise (ATen)",
    "void at::native::reduce_kernel<512, 1, at::native::ReduceOp<float, at::native::MeanOps<float, float>>>":
        "reduction (ATen)",
    "Memcpy DtoD (Device -> Device)": "memcpy/memset",
    "Memset (Device)": "memcpy/memset",
    "some_unknown_kernel": "other",
}


@pytest.mark.parametrize("name", list(KERNELS))
def test_kernel_family(name):
    assert sb.kernel_family(name) == KERNELS[name]


def test_group_kernels_totals_shares_and_top():
    g = sb.group_kernels([("triton_poi_fused_relu_0", 30.0), ("nvjet_tst_x", 60.0), ("triton_poi_fused_relu_0", 10.0)])
    assert g["total_us"] == 100.0
    assert g["families"]["inductor pointwise"] == {"us": 40.0, "kernels": 2, "share": 0.4}
    assert abs(sum(d["share"] for d in g["families"].values()) - 1) < 1e-12
    assert [k["name"] for k in g["top_kernels"]] == ["nvjet_tst_x", "triton_poi_fused_relu_0"]
    assert sb.group_kernels([])["total_us"] == 0


def test_variant_parsing_and_levers():
    base = Levers("device_resident", "bf16", True, graph="compile_cuda_graph")
    name, spec = sb.parse_variant("mm:batch=4096,fused=1,opt.conv_1x1_as_mm=1,opt.max_autotune=0")
    lv = sb.variant_levers(base, spec)
    assert name == "mm" and lv.batch_size == 4096 and lv.fused_optimizer
    assert dict(lv.compile_options) == {"conv_1x1_as_mm": True, "max_autotune": False}
    assert "conv_1x1_as_mm=True" in lv.label() and "fused_adam" in lv.label()
    for bad in (":batch=2", "x:batch", "x y:batch=2"):
        with pytest.raises(UserError):
            sb.variant_levers(base, sb.parse_variant(bad)[1])
    with pytest.raises(UserError, match="unknown"):
        sb.variant_levers(base, {"bogus": "1"})
    with pytest.raises(UserError, match="compiled graph"):  # inductor options without compilation
        sb.variant_levers(Levers("device_resident"), {"opt.max_autotune": "1"})


def test_step_breakdown_without_variants_is_a_one_line_error(capsys):
    assert sb.main(["--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--variant" in err[0]


def test_step_breakdown_runs_on_the_cpu(synthetic_data_dir, tmp_path, capsys):
    out = tmp_path / "sb.json"
    rc = sb.main(["--device", "cpu", "--data-dir", str(synthetic_data_dir), "--base", "device_resident,fp32",
                  "--variant", "small:batch=4", "--variant", "fused:batch=4,fused=1", "--repeats", "2",
                  "--min-window-s", "0.05", "--profile-steps", "1", "--out", str(out)])
    assert rc == 0
    res = json.loads(out.read_text())
    assert [v["name"] for v in res["variants"]] == ["small", "fused"]
    for v in res["variants"]:
        assert v["images_per_s"]["median"] > 0 and len(v["windows"]["images_per_s"]) == 2
        assert v["gpu_j_per_image"] is None and v["profile"]["reason"] == "no device kernels on a CPU run"
    assert res["variants"][1]["levers"]["fused_optimizer"] is True
    assert "fused" in capsys.readouterr().out
    assert out.with_suffix(".png").stat().st_size > 10_000  # the figure beside the JSON


def test_step_breakdown_keeps_going_past_a_failed_variant(synthetic_data_dir, tmp_path, monkeypatch, capsys):
    real = sb.measure_variant

    def flaky(name, *a, **k):
        if name == "bad":
            raise RuntimeError("option 'no_such_option' is not known to this torch\nsecond line")
        return real(name, *a, **k)

    monkeypatch.setattr(sb, "measure_variant", flaky)
    out = tmp_path / "sb.json"
    common = ["--device", "cpu", "--data-dir", str(synthetic_data_dir), "--base", "device_resident,fp32",
              "--repeats", "2", "--min-window-s", "0.05", "--profile-steps", "1"]
    rc = sb.main(common + ["--variant", "bad:batch=4", "--variant", "good:batch=4", "--out", str(out)])
    assert rc == 0
    res = json.loads(out.read_text())
    assert [v["name"] for v in res["variants"]] == ["good"]
    assert res["failed"] == [{"name": "bad", "label": res["failed"][0]["label"],
                              "error": "RuntimeError: option 'no_such_option' is not known to this torch"}]
    assert "bad            failed: RuntimeError" in capsys.readouterr().out  # in the printed table too
    assert sb.main(common + ["--variant", "bad:batch=4"]) == 2  # nothing measured: an error, not an empty table
    assert "every variant failed: bad: RuntimeError" in capsys.readouterr().err


def test_winning_solution_uses_the_cpu_sizes_unless_told(monkeypatch):
    import config

    p = ws.argparse.Namespace(epochs=None, batch_size=None, repeats=None, quick=False)
    s = ws.settings_for(p, "cpu")
    assert s.epochs == config.CPU_EPOCHS and s.max_train_images == config.CPU_MAX_TRAIN_IMAGES
    assert s.measure_steps == config.CPU_MEASURE_STEPS
    g = ws.settings_for(p, "cuda")
    assert g.epochs == config.EPOCHS and g.max_train_images is None
    told = ws.settings_for(ws.argparse.Namespace(epochs=7, batch_size=64, repeats=2, quick=False, seeds="3,4",
                                                 measure_s=5.0, target=0.9), "cpu")
    assert (told.epochs, told.batch_size, told.repeats) == (7, 64, 2)
    assert told.ladder_seeds == (3, 4) and told.energy_window_s == 5.0 and told.accuracy_target == 0.9


def test_winning_solution_runs_the_quick_cpu_ladder(synthetic_data_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the per-run cache folders go under ./cache
    out = tmp_path / "ladder.json"
    rc = ws.main(["--device", "cpu", "--quick", "--data-dir", str(synthetic_data_dir), "--epochs", "1",
                  "--batch-size", "4", "--max-train", "24", "--repeats", "2", "--measure-s", "0.1", "--seeds", "0",
                  "--rungs", "device_resident", "--target", "0.01", "--no-warm", "--out", str(out)])
    assert rc == 0
    res = json.loads(out.read_text())
    assert [r["id"] for r in res["rungs"]] == ["recipe", "device_resident"]
    assert "partial" not in res and res["environment"]["git"] and res["environment"]["config"]["quick"] is True
    text = capsys.readouterr().out
    assert "winner (*):" in text and "cold s" in text
    assert ws.main(["--from-record", str(out)]) == 0
    assert "MONAI tutorial recipe" in capsys.readouterr().out
    assert ws.main(["--headline", str(out)]) == 0
    assert "reaches the target in" in capsys.readouterr().out
    # a run cut short leaves the rungs so far without a summary: still printable, and it says so
    cut = tmp_path / "cut.json"
    cut.write_text(json.dumps({**{k: v for k, v in res.items() if k != "summary"}, "rungs": res["rungs"][:1],
                               "partial": True}))
    assert ws.main(["--from-record", str(cut)]) == 0
    captured = capsys.readouterr()
    assert "partial record: the run stopped after 1 rung(s)" in captured.err and "winner (*):" in captured.out
    cut.write_text(json.dumps({**{k: v for k, v in res.items() if k != "summary"}, "rungs": []}))
    assert ws.main(["--from-record", str(cut)]) == 2
    assert "no rung was measured" in capsys.readouterr().err
    assert ws.main(["--device", "cpu", "--rungs", "no_such_rung", "--data-dir", str(synthetic_data_dir)]) == 2
    assert "unknown rung id(s) no_such_rung" in capsys.readouterr().err


@pytest.mark.parametrize("run", ["S"])
def test_performance_doc_table_is_what_its_record_prints(capsys, run):
    """The run-S table in docs/PERFORMANCE.md (the throughput ladder before issue 15) is the
    benchmark's own printout of the record committed beside it, not numbers typed by hand.
    (Run P's record was cut short; its table was printed by the script of commit 91de472.)"""
    root = Path(__file__).resolve().parents[2]
    record = root / "docs" / "records" / f"winning_solution_run_{run}.json"
    assert ws.main(["--from-record", str(record)]) == 0
    printed = [line for line in capsys.readouterr().out.splitlines() if line[:3].strip().isdigit()]
    assert len(printed) == 2
    doc = (root / "docs" / "PERFORMANCE.md").read_text()
    for line in printed:
        assert line in doc, line
