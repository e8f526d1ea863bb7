"""Time to target: the ranking, the seed gate, the cold/warm bookkeeping, the decoded-data
cache, and one real ladder run in fresh processes on tiny data."""

from __future__ import annotations

import json
import os
import time

import numpy as np
import pytest

from common.workloads.ladder import Rung
from common.workloads.ladder_run import LadderSpec, pick_winner, run_ladder, rung_record, summarize_runs
from common.workloads.levers import Levers
from tests.workloads.trainer_fake import FakeTrainer

SEEDS = (0, 1, 2)


def _run(seed, kind, t, acc=0.99, reached=True, rate=100.0):
    return {"rung_id": "x", "seed": seed, "kind": kind, "time_to_target_s": t if reached else None,
            "reached": reached, "epochs_to_target": 2 if reached else None, "test_accuracy": acc, "test_n": 100,
            "history": [{"images_per_s": rate / 2, "train_s": 1.0}, {"images_per_s": rate, "train_s": 1.0}],
            "target_reason": None, "lr": 1e-3, "one_time_s": {"decode_s": 0.5}}


def _rung(rid, cold, warm, accs=(0.99, 0.99, 0.99), reached=(True, True, True), seeds=SEEDS, rate=100.0):
    runs = []
    for s, c, w, a, ok in zip(seeds, cold, warm, accs, reached):
        runs += [_run(s, "cold", c, a, ok, rate), _run(s, "warm", w, a, ok, rate)]
    rung = Rung(rid, Levers(), "lever", id=rid, seeds_cap=len(seeds) if len(seeds) < len(SEEDS) else None)
    return rung_record(rung, runs, SEEDS, None, None)


def test_bookkeeping_splits_cold_and_warm_and_keeps_every_seed():
    r = _rung("a", cold=(10, 12, 11), warm=(5, 6, 4))
    t = r["time_to_target"]
    assert t["cold"]["median"] == 11 and (t["cold"]["min"], t["cold"]["max"]) == (10, 12)
    assert t["warm"]["median"] == 5 and t["warm"]["values"] == [5, 6, 4]
    assert t["test_accuracy_per_seed"] == {"0": 0.99, "1": 0.99, "2": 0.99}
    assert t["cold"]["interval_kind"] == "range over seeds"
    missed = _rung("b", cold=(10, 12, 11), warm=(5, 6, 4), reached=(True, False, True))["time_to_target"]
    assert missed["cold"] is None and "1 of 3 cold run(s) did not reach" in missed["cold_reason"]
    assert missed["reached_per_seed"] == {"0": True, "1": False, "2": True}
    errs = summarize_runs([{"seed": 0, "kind": "cold", "error": "boom"}], (0,))
    assert errs["errors"] == ["seed 0 cold: boom"] and errs["cold"] is None


def test_winner_is_the_shortest_cold_time_among_rungs_that_pass_on_every_seed():
    recipe = _rung("recipe", cold=(40, 42, 44), warm=(30, 31, 32), accs=(0.995, 0.996, 0.994))
    fast = _rung("fast", cold=(5, 6, 7), warm=(2, 3, 2.5), accs=(0.995, 0.993, 0.996), rate=3000)
    faster_but_one_seed_low = _rung("risky", cold=(2, 2, 2), warm=(1, 1, 1), accs=(0.995, 0.98, 0.996), rate=9000)
    faster_but_missed = _rung("missed", cold=(3, 3, 3), warm=(1, 1, 1), reached=(True, True, False))
    one_seed = _rung("compiled", cold=(1,), warm=(0.5,), accs=(0.999,), seeds=(0,), rate=20000)
    res = [recipe, fast, faster_but_one_seed_low, faster_but_missed, one_seed]
    s = pick_winner(res, 0.005, SEEDS)
    assert s["winner_id"] == "fast" and s["crowned"]
    assert s["accuracy_gate"] == pytest.approx(0.994 - 0.005)  # the recipe's lowest seed, minus the tolerance
    assert recipe["passes_gate"]  # the recipe always passes its own gate
    assert not faster_but_one_seed_low["passes_gate"] and "seed(s) 1 (98.00%)" in faster_but_one_seed_low["gate_reason"]
    assert not faster_but_missed["passes_gate"] and "did not reach the target on seed(s) 2" in \
        faster_but_missed["gate_reason"]
    assert not one_seed["passes_gate"] and "1 of 3 seeds" in one_seed["gate_reason"]
    assert s["time_to_target_ratio_cold"] == pytest.approx(42 / 6) and s["time_to_target_ratio_warm"] == \
        pytest.approx(31 / 2.5)
    assert s["throughput_leader_index"] == 4  # named, never crowned


def test_nothing_is_crowned_when_no_rung_passes_and_the_energy_bound_is_optional():
    recipe = _rung("recipe", cold=(40, 42, 44), warm=(30, 31, 32), reached=(False, False, False))
    other = _rung("other", cold=(4, 4, 4), warm=(2, 2, 2), reached=(False, True, True))
    s = pick_winner([recipe, other], 0.005, SEEDS)
    assert not s["crowned"] and s["winner_index"] == 0 and "nothing is crowned" in s["winner_rule"]
    recipe = _rung("recipe", cold=(40, 42, 44), warm=(30, 31, 32))
    a, b = _rung("a", cold=(4, 4, 4), warm=(2, 2, 2)), _rung("b", cold=(6, 6, 6), warm=(3, 3, 3))
    a["gpu_j_per_image"], b["gpu_j_per_image"] = 0.02, 0.009
    assert pick_winner([recipe, a, b], 0.005, SEEDS)["winner_id"] == "a"
    bounded = pick_winner([recipe, a, b], 0.005, SEEDS, max_j_per_image=0.01)
    assert bounded["winner_id"] == "b" and "0.01 J/image" in bounded["winner_rule"]


def test_decoded_cache_hits_on_the_same_split_and_misses_on_a_changed_file(synthetic_data_dir, tmp_path):
    import shutil

    from common.workloads.decoded_cache import load_decoded
    from common.workloads.mednist_data import load_mednist

    data_dir = tmp_path / "d"
    shutil.copytree(synthetic_data_dir, data_dir)
    cache = tmp_path / "cache"
    first = load_mednist(data_dir, 0.1, 0.1, 0)
    miss = load_decoded(first, cache, workers=1)
    assert not miss["hit"] and os.path.isfile(miss["path"])
    second = load_mednist(data_dir, 0.1, 0.1, 0)
    hit = load_decoded(second, cache, workers=1)
    assert hit["hit"] and hit["path"] == miss["path"]
    for part in ("train", "val", "test"):
        np.testing.assert_array_equal(first.arrays(part)[0], second.arrays(part)[0])
        np.testing.assert_array_equal(first.arrays(part)[1], second.arrays(part)[1])
    reference = load_mednist(data_dir, 0.1, 0.1, 0)  # decoded the ordinary way, no cache
    for part in ("train", "val", "test"):  # one decode pass over all parts hands each part its own rows
        for got, want, fresh in zip(first.arrays(part), reference.arrays(part), second.arrays(part)):
            np.testing.assert_array_equal(got, want)
            np.testing.assert_array_equal(fresh, want)
    path = second.part("train")[0][0]
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))
    changed = load_decoded(load_mednist(data_dir, 0.1, 0.1, 0), cache, workers=1)
    assert not changed["hit"] and changed["path"] != miss["path"]
    with open(changed["path"], "wb") as fh:
        fh.write(b"damaged")
    rebuilt = load_decoded(load_mednist(data_dir, 0.1, 0.1, 0), cache, workers=1)
    assert not rebuilt["hit"] and "unreadable" in rebuilt["reason"]


def test_a_real_ladder_in_fresh_processes_counts_cold_and_warm(synthetic_data_dir, tmp_path):
    """Two rungs, one seed, cold then warm, each in its own process: the warm run of the
    device-resident rung loads the decoded data its cold run cached; the clock covers the
    whole run; the sustained window gives throughput; records arrive after every rung."""
    base = Levers("tutorial", batch_size=8, num_workers=0)
    rungs = [Rung("recipe", base.replace(lr=1e-5, lr_schedule="constant"), "baseline", id="recipe", min_steps=12),
             Rung("resident", base.replace(data_path="device_resident"), "data_path", id="device_resident")]
    from common.workloads.mednist_data import load_mednist

    refused = load_mednist(synthetic_data_dir, 0.1, 0.1, 0, max_train=48, check=False).part("train")[0][0]
    spec = LadderSpec(device="cpu", data_dir=str(synthetic_data_dir), split_seed=0, val_fraction=0.1,
                      test_fraction=0.1, max_train=48, max_eval=None, lr=1e-3, base_batch=8, epochs=1, target=0.01,
                      tolerance=0.005, seeds=(0,), measure_s=0.2, repeats=2, cache_root=str(tmp_path / "cache"),
                      cpu_threads=1, skipped=((refused, "refused by the parent's image check"),),
                      runs_dir=str(tmp_path / "runs"))
    partial = []
    res = run_ladder(rungs, spec, on_rung=lambda p: partial.append(len(p["rungs"])))
    assert partial == [1, 2]
    recipe, resident = res["rungs"]
    for r in res["rungs"]:
        runs = r["time_to_target"]["runs"]
        assert [x["kind"] for x in runs] == ["cold", "warm"] and not r["time_to_target"]["errors"]
        for x in runs:
            assert x["reached"] and 0 < x["one_time_s"]["decode_s"] < x["time_to_target_s"] <= x["wall_to_stop_s"]
            assert x["history"][-1]["end_s"] == pytest.approx(x["time_to_target_s"])
            assert x["process_start_s"] > 0
        assert r["images_per_s"]["median"] > 0 and r["end_to_end"]["images"]  # the sustained window
    cold, warm = resident["time_to_target"]["runs"]
    assert not cold["decoded_cache"]["hit"] and warm["decoded_cache"]["hit"]
    assert recipe["time_to_target"]["runs"][0]["decoded_cache"]["hit"] is False
    assert any("632" in d for d in recipe["differs_from_tutorial"]) and "differs_from_tutorial" not in resident
    # the recipe's own rate, constant, and a budget grown to hold its min_steps (47 images at batch 8: 6 steps an
    # epoch, so 12 steps are 2 epochs); the other rung keeps the scaled rate and the spec's budget
    assert all(x["lr"] == 1e-5 and x["epoch_budget"] == 2 for x in recipe["time_to_target"]["runs"])
    assert all(x["lr"] == 1e-3 and x["epoch_budget"] == 1 for x in resident["time_to_target"]["runs"])
    assert recipe["min_steps"] == 12 and recipe["label"].endswith("lr1e-05 constant_lr")
    for x in recipe["time_to_target"]["runs"]:  # the file the parent refused is never trained on, nor checked again
        assert x["skipped_images"] == 1 and x["train_images"] == 47 and x["one_time_s"]["list_split_s"] < 1.0
    assert res["summary"]["crowned"] and res["summary"]["winner_id"] in ("recipe", "device_resident")
    assert not os.listdir(tmp_path / "cache")  # per-run cache folders are removed afterwards
    kept = sorted(os.listdir(tmp_path / "runs"))  # every run's whole result, written as it ended
    assert kept == ["device_resident-s0-cold.json", "device_resident-s0-warm.json", "recipe-s0-cold.json",
                    "recipe-s0-warm.json"]
    assert json.loads((tmp_path / "runs" / kept[0]).read_text())["time_to_target_s"] == pytest.approx(
        cold["time_to_target_s"])


def test_a_shorter_schedule_ends_inside_an_epoch_and_is_validated_there():
    from common.workloads.time_to_target import eval_points, train_to_target
    from common.workloads.training import lr_at

    assert eval_points(10, 3, None) == (30, [10, 20, 30])  # the schedule spans the budget
    assert eval_points(10, 3, 1.5) == (15, [10, 15, 20, 30])
    assert eval_points(10, 3, 2) == (20, [10, 20, 30])
    assert eval_points(10, 2, 5) == (20, [10, 20])  # never past the budget

    t = FakeTrainer(Levers(schedule_epochs=1.5), 1e-3, steps_per_epoch=10, accuracy=lambda steps: 0.5 + steps / 30)
    res = train_to_target(t, 4, 0.99, time.perf_counter(), {})
    assert [h["step"] for h in res["history"]] == [10, 15]  # stopped where the schedule ended: 0.5 + 15/30
    assert res["epochs_to_target"] == 1.5 and res["schedule_steps"] == 15 and res["reached"]
    assert t.lrs[:15] == [lr_at(i, 15, 1e-3) for i in range(15)]
    assert t.lrs[14] < 0.1e-3 < t.lrs[7]  # decayed by the schedule's end


def test_the_schedule_probe_chooses_on_validation_by_its_stated_rule():
    from benchmarks.schedule_probe import choose

    def row(vals, steps, step_s, test=(1.0,)):
        return {"val_at_schedule_end": list(vals), "schedule_steps": steps, "step_s": step_s, "test_accuracy": test}

    rows = [row((0.999, 0.992), 32, 0.016),  # short but one seed below target + margin
            row((0.997, 0.996), 48, 0.016),  # eligible, 0.77 s
            row((0.999, 0.998), 64, 0.016),  # eligible, longer
            row((0.9991, 0.9990), 96, 0.008, test=(0.5,))]  # eligible, 0.77 s, a higher lowest seed: wins the tie
    pick = choose(rows, 0.99, 0.005)
    assert pick["chosen"] == 3 and [r["eligible"] for r in rows] == [False, True, True, True]
    assert rows[1]["expected_train_s"] == pytest.approx(0.768)
    assert choose([row((0.99, 0.995), 32, 0.01)], 0.99, 0.005)["chosen"] is None  # test accuracy never counts


@pytest.mark.parametrize("method", ["spawn", None])
def test_the_decode_pool_started_either_way_gives_the_plain_decode(synthetic_data_dir, method):
    """A run starts its decode in spawned workers (a few ms each for the run) before CUDA;
    other callers get a forkserver's. Either way every image lands in its row, as a plain
    decode gives it."""
    from common.data.imagecheck import decode_images
    from common.data.mednist import find_images, mednist_root
    from common.workloads.decoded_cache import _collect, _submit

    paths = find_images(mednist_root(synthetic_data_dir)).paths[:60]
    pool, jobs = _submit(paths + ["/nonexistent/x.jpeg"], 3, method)
    assert pool._mp_context.get_start_method() == (method or "forkserver")
    images, kept, skipped = _collect(pool, jobs)
    ref = decode_images(paths)
    np.testing.assert_array_equal(images, ref.images)
    assert kept == list(range(60)) and [p for p, _ in skipped] == ["/nonexistent/x.jpeg"]


def _half(rungs, **spec_changes):
    spec = {"data_dir": "data", "split_seed": 0, "val_fraction": 0.1, "test_fraction": 0.1, "max_train": None,
            "max_eval": None, "lr": 1e-3, "base_batch": 300, "epochs": 10, "target": 0.99, "tolerance": 0.005,
            "seeds": list(SEEDS), "measure_s": 30.0, "repeats": 5, "winner_max_j_per_image": None, "device": "cuda"}
    spec.update(spec_changes)
    return {"rungs": rungs, "spec": spec, "train_flops_per_image": 1, "environment": {"gpu": {"nvml_index": 0}}}


def test_halves_run_side_by_side_are_ranked_as_one_ladder(tmp_path, capsys):
    """Two halves of a ladder (the recipe on one GPU, the other rungs on another, at the same
    time) give the ranking one ladder would: ratios against the recipe, the gate from its seeds;
    halves that do not belong together are refused with one line, and nothing is written."""
    from benchmarks.winning_solution import main
    from common.workloads.ladder_run import merge_records

    recipe = _rung("recipe", cold=(40, 42, 44), warm=(30, 31, 32), accs=(0.995, 0.996, 0.994))
    fast = _rung("fast", cold=(8, 8.4, 9), warm=(3, 3.1, 3.2), rate=900.0)
    low = _rung("low", cold=(2, 2, 2), warm=(1, 1, 1), accs=(0.99, 0.98, 0.99), rate=2000.0)
    merged = merge_records([_half([recipe]), {**_half([fast, low]), "no_recipe": True, "partial": True}], ["a", "b"])
    s = merged["summary"]
    assert [r["id"] for r in merged["rungs"]] == ["recipe", "fast", "low"]
    assert s["winner_id"] == "fast" and s["time_to_target_ratio_cold"] == pytest.approx(42 / 8.4)
    assert s["accuracy_gate"] == pytest.approx(0.994 - 0.005) and not merged["rungs"][2]["passes_gate"]
    assert s["throughput_leader"] == "low" and merged["merged_from"][1]["rungs"] == ["fast", "low"]
    assert "partial" not in merged and "no_recipe" not in merged
    for parts, msg in (([_half([fast])], "must start with the recipe"),
                       ([_half([recipe]), _half([fast], target=0.98)], "differs .* in target"),
                       ([_half([recipe]), _half([recipe])], "recipe of its own"),
                       ([_half([recipe, fast]), _half([fast])], "fast measured in more than one")):
        with pytest.raises(ValueError, match=msg):
            merge_records(parts, ["a", "b"])
    a, b, out = tmp_path / "a.json", tmp_path / "b.json", tmp_path / "ladder.json"
    a.write_text(json.dumps(_half([recipe])))
    b.write_text(json.dumps({**_half([fast, low]), "no_recipe": True}))
    assert main(["--merge", str(a), str(b), "--out", str(out)]) == 0
    assert json.loads(out.read_text())["summary"]["winner_id"] == "fast" and "* fast" in capsys.readouterr().out
    assert main(["--from-record", str(b)]) != 0  # a half alone has no gate: refused, and told how to rank it
    assert "--merge RECIPE_HALF.json" in capsys.readouterr().err
    b.write_text(json.dumps({**_half([fast], seeds=[0, 1]), "no_recipe": True}))
    out.unlink()
    assert main(["--merge", str(a), str(b), "--out", str(out)]) != 0
    assert "differs" in capsys.readouterr().err and not out.exists()


def test_the_headline_states_the_tuned_baseline_and_another_runs_leader():
    """The headline of a merged ladder says it ran on two GPUs, gives the recipe's optimizer,
    the winner's ratio against the tuned-rate rung as well as against the recipe, and the
    throughput leader of another record with its own time to target."""
    import dataclasses

    from common.ladder_text import headline
    from common.workloads.ladder_run import merge_records

    recipe = _rung("recipe", cold=(40, 48, 44), warm=(41, 49, 45), accs=(0.985, 0.99, 0.988))
    recipe["levers"] = dataclasses.asdict(Levers("tutorial", lr=1e-5, lr_schedule="constant"))
    tuned = _rung("lr_schedule", cold=(9, 10, 11), warm=(8, 9, 10))
    fast = _rung("fast", cold=(2, 2.5, 3), warm=(1.5, 2, 2.5), rate=900.0)
    merged = merge_records([_half([recipe]), {**_half([tuned, fast]), "no_recipe": True}], ["a", "b"])
    leader = merge_records([_half([recipe]), _half([_rung("compiled", cold=(200,), warm=(70,), seeds=(0,),
                                                          rate=5000.0)])], ["c", "d"])
    text = headline(merged, "cuda", [("docs/records/other.json", leader)]).splitlines()
    assert text[0].startswith("On 2 ") and "side by side" in text[0]
    assert "Adam at 1e-5, constant" in text[1] and "44.0 [40.0-48.0] s cold" in text[1]
    assert "fast" in text[2] and "(17.6x sooner)" in text[2]  # 44 / 2.5
    assert "Adam at 1e-3 with warm-up + cosine decay" in text[3] and "4.0x sooner cold and 4.5x warm" in text[3]
    assert text[4].startswith("- in docs/records/other.json") and "200.0 [200.0-200.0] s cold" in text[4]
    assert "70.0 [70.0-70.0] s warm" in text[4] and text[4].endswith("measured on 1 of 3 seeds.")
    assert all(line.endswith(";") for line in text[1:4])


@pytest.mark.parametrize("argv, says", [(["--no-recipe"], "needs --rungs"),
                                        (["--no-recipe", "--rungs", "recipe,device_resident"], "names the recipe")])
def test_a_half_without_the_recipe_is_refused_before_any_work(argv, says, capsys, tmp_path):
    from benchmarks.winning_solution import main

    assert main(["--device", "cpu", "--data-dir", str(tmp_path / "none"), *argv]) != 0
    err = capsys.readouterr().err
    assert says in err and len(err.strip().splitlines()) == 1
