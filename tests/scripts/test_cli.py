"""The scripts' command lines: --help shows config.py's values as defaults; invalid values are
refused before any work with one line naming the constant or file; missing data is named."""

from __future__ import annotations

import importlib

import pytest
import torch

import config

SCRIPTS = ["download_mednist", "comprehensive_gpu_analysis", "comprehensive_cpu_analysis",
           "enhanced_gpu_cpu_comparison"]
ANALYSIS = ["comprehensive_cpu_analysis", "comprehensive_gpu_analysis"]


def _main(script: str):
    return importlib.import_module(script).main


@pytest.fixture(autouse=True)
def restore_torch_threads():
    prev = torch.get_num_threads()
    yield
    torch.set_num_threads(prev)


def _help(script: str, capsys, monkeypatch) -> str:
    monkeypatch.setenv("COLUMNS", "1000")  # no wrapping (argparse breaks long words at hyphens)
    with pytest.raises(SystemExit) as exc:
        _main(script)(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    return " ".join(out.split())  # argparse wraps lines where it likes


@pytest.mark.parametrize("script", SCRIPTS)
def test_help_exits_0_and_shows_config_defaults(script, capsys, monkeypatch):
    text = _help(script, capsys, monkeypatch)
    assert text.startswith("usage:")
    if script in ANALYSIS:
        for name in ("BATCH_SIZE", "SAMPLE_HZ", "REPEATS", "DATA_DIR", "RESULTS_DIR", "SEED"):
            assert f"config.{name} = {getattr(config, name)!r}" in text, name
        for flag in ("--quick", "--replot", "--set", "--batch-size", "--sample-hz", "--volume", "--data-dir"):
            assert flag in text
    elif script == "download_mednist":
        assert f"config.DATA_DIR = {config.DATA_DIR!r}" in text
        assert config.MEDNIST_MD5 in text and config.MEDNIST_URL in text
        assert f"config.SYNTHETIC_PER_CLASS = {config.SYNTHETIC_PER_CLASS}" in text
        for flag in ("--from-archive", "--synthetic", "--data-dir"):
            assert flag in text
    else:
        assert f"config.RESULTS_DIR = {config.RESULTS_DIR!r}" in text
        for flag in ("--gpu", "--cpu", "--replot", "--results-dir"):
            assert flag in text


def test_help_defaults_follow_config(monkeypatch, capsys):
    """The defaults are read from config.py when the parser is built, not copied."""
    monkeypatch.setattr(config, "BATCH_SIZE", 123)
    text = _help("comprehensive_cpu_analysis", capsys, monkeypatch)
    assert "config.BATCH_SIZE = 123" in text


INVALID = [
    (["--batch-size", "0"], "BATCH_SIZE"),
    (["--batch-size", "-5"], "BATCH_SIZE"),
    (["--sample-hz", "-1"], "SAMPLE_HZ"),
    (["--sample-hz", "1000"], "SAMPLE_HZ"),
    (["--set", "REPEATS=0"], "REPEATS"),
    (["--repeats", "0"], "REPEATS"),
    (["--set", "NOSUCH=1"], "NOSUCH"),
    (["--set", "QUICK_CPU_BATCH_SIZE=0"], "QUICK_CPU_BATCH_SIZE"),
    (["--set", "BATCH_SIZES=()"], "BATCH_SIZES"),
    (["--set", "TARGET_VAL_ACCURACY=1.5"], "TARGET_VAL_ACCURACY"),
    (["--lr", "0"], "LEARNING_RATE"),
    (["--volume", "/nonexistent.nii.gz"], "/nonexistent.nii.gz"),
]


def _check_refused(rc: int, err: str, name: str, results) -> None:
    assert rc != 0
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith("error:") and name in lines[0], lines[0]
    assert not results.exists(), "refused before any work: nothing may be written"


@pytest.mark.parametrize("argv, name", INVALID, ids=[" ".join(a) for a, _ in INVALID])
def test_cpu_analysis_refuses_invalid_values(argv, name, tmp_path, synthetic_data_dir, capsys):
    results = tmp_path / "results"
    rc = _main("comprehensive_cpu_analysis")(
        ["--quick", "--no-progress", "--data-dir", str(synthetic_data_dir), "--results-dir", str(results), *argv])
    captured = capsys.readouterr()
    _check_refused(rc, captured.err, name, results)
    assert "measuring" not in captured.out


@pytest.mark.parametrize("argv, name", [(["--batch-size", "0"], "BATCH_SIZE"), (["--sample-hz", "1000"], "SAMPLE_HZ"),
                                        (["--set", "NOSUCH=1"], "NOSUCH"),
                                        (["--volume", "/nonexistent.nii.gz"], "VOLUME_PATH")])
def test_gpu_analysis_refuses_invalid_values_before_the_cuda_check(argv, name, tmp_path, synthetic_data_dir, capsys):
    results = tmp_path / "results"
    rc = _main("comprehensive_gpu_analysis")(
        ["--data-dir", str(synthetic_data_dir), "--results-dir", str(results), *argv])
    _check_refused(rc, capsys.readouterr().err, name, results)


def test_volume_error_names_the_constant_and_flag(tmp_path, synthetic_data_dir, capsys):
    results = tmp_path / "results"
    rc = _main("comprehensive_cpu_analysis")(["--data-dir", str(synthetic_data_dir), "--results-dir", str(results),
                                              "--volume", "/nonexistent.nii.gz"])
    err = capsys.readouterr().err
    assert rc != 0 and "VOLUME_PATH" in err and "--volume" in err and "/nonexistent.nii.gz" in err


def test_label_without_volume_is_refused(tmp_path, synthetic_data_dir, capsys):
    label = tmp_path / "lab.nii.gz"
    label.write_bytes(b"x")
    results = tmp_path / "results"
    rc = _main("comprehensive_cpu_analysis")(["--data-dir", str(synthetic_data_dir), "--results-dir", str(results),
                                              "--label", str(label)])
    _check_refused(rc, capsys.readouterr().err, "--volume", results)


def test_comparison_refuses_invalid_price(tmp_path, capsys):
    results = tmp_path / "results"
    rc = _main("enhanced_gpu_cpu_comparison")(["--results-dir", str(results), "--gpu-price-per-hour", "-1"])
    _check_refused(rc, capsys.readouterr().err, "GPU_PRICE_PER_HOUR", results)


def test_missing_data_dir_is_named_with_the_fix(tmp_path, capsys):
    missing = tmp_path / "no_data_here"
    results = tmp_path / "results"
    rc = _main("comprehensive_cpu_analysis")(["--quick", "--no-progress", "--data-dir", str(missing),
                                              "--results-dir", str(results)])
    captured = capsys.readouterr()
    assert rc != 0
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), lines
    assert str(missing) in lines[0] and "download_mednist.py" in lines[0]
    assert "measuring" not in captured.out
    assert not (results / "cpu_results" / "metrics").exists()


def _config_values(**changes) -> dict:
    values = {k: getattr(config, k) for k in dir(config) if k.isupper()}
    values.update(changes)
    return values


def test_the_shipped_config_is_valid():
    from common.cli import validate_config

    validate_config(_config_values())


UNCHECKED = [
    ("QUICK_CPU_BATCH_SIZES", (0,)),
    ("QUICK_CPU_BATCH_SIZES", ()),
    ("QUICK_CPU_EPOCHS", 0),
    ("QUICK_CPU_MAX_TRAIN_IMAGES", 0),
    ("QUICK_MAX_EVAL_IMAGES", 0),
    ("UNET_CHANNELS", ()),
    ("ACCURACY_TOLERANCE", -1.0),
    ("SEED", -1),
]


@pytest.mark.parametrize("name, value", UNCHECKED, ids=[f"{n}={v!r}" for n, v in UNCHECKED])
def test_validate_config_refuses_every_invalid_constant(name, value):
    from common.cli import validate_config
    from common.errors import UserError

    with pytest.raises(UserError, match=name):
        validate_config(_config_values(**{name: value}))


def test_negative_seed_is_refused_with_one_line(tmp_path, synthetic_data_dir, capsys):
    results = tmp_path / "results"
    rc = _main("comprehensive_cpu_analysis")(["--quick", "--no-progress", "--data-dir", str(synthetic_data_dir),
                                              "--results-dir", str(results), "--seed", "-1"])
    _check_refused(rc, capsys.readouterr().err, "SEED", results)


def test_zero_cpu_train_images_names_the_constant(tmp_path, synthetic_data_dir, capsys):
    results = tmp_path / "results"
    rc = _main("comprehensive_cpu_analysis")(["--quick", "--no-progress", "--data-dir", str(synthetic_data_dir),
                                              "--results-dir", str(results), "--set", "QUICK_CPU_MAX_TRAIN_IMAGES=0"])
    _check_refused(rc, capsys.readouterr().err, "QUICK_CPU_MAX_TRAIN_IMAGES", results)
