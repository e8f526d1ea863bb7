"""The comparison's verdicts: one sentence per headline speedup, energy, cost, scaling and
utilization, each naming its kind and the ids of the speedups it rests on."""

from __future__ import annotations

from typing import Any

from common.comparison import BEST_VS_BEST, LIKE_FOR_LIKE
from common.comparison.amdahl import MODEL_STAGES
from common.comparison.speedups import RECIPE_ID, WINNER_ID
from common.comparison.text import diff_text, fmt_num, fmt_x, speedup_phrase


def _kind_tag(e: dict) -> str:
    diff = diff_text(e.get("differences") or {}) if e["kind"] == LIKE_FOR_LIKE else ""
    return (f"[{e['kind']}: GPU {e['gpu']['config']} vs CPU {e['cpu']['config']}"
            f"{'; settings that differ: ' + diff if diff else ''}]")


def verdicts(speedups: list[dict], pipeline: dict, eff: dict, util: dict, scal: dict) -> list[dict[str, Any]]:
    """The verdicts in order: speed (headline speedups), energy and cost, scaling, utilization."""
    out: list[dict[str, Any]] = []

    def add(text: str, kind: str, ids: list[str]):
        out.append({"text": text, "kind": kind, "ids": ids})

    _speed(add, {e["id"]: e for e in speedups}, pipeline)
    _energy_and_cost(add, eff)
    if scal.get("available"):
        top = scal["rows"][-1]
        add(f"Scaling: {top['gpus']} GPUs train {fmt_x(top['speedup_vs_1'])}x faster than {scal['baseline_gpus']} "
            f"({fmt_x(top['ci95'][0])}-{fmt_x(top['ci95'][1])}x), parallel efficiency "
            f"{100 * top['efficiency']:.0f}%.", "scaling", [])
    else:
        add(f"Scalability: {scal.get('reason')}.", "scaling", [])
    for v in util.get("verdicts", [])[:1]:
        add(v, "utilization", [])
    return out


def _speed(add, by: dict[str, dict], pipeline: dict) -> None:
    e = by.get(RECIPE_ID)
    tut = (pipeline.get("configs") or {}).get("tutorial_recipe")
    if e:
        text = f"Training with the MONAI tutorial recipe is {speedup_phrase(e)} end to end"
        gb = (tut or {}).get("gpu_bottleneck") or {}
        if tut and gb.get("bottleneck") == "data loading":
            text += (f"; on the GPU the model waits for data ({gb['why']}), so data loading, not the model, "
                     f"bounds this recipe")
        elif tut and tut.get("model_stages_speedup") and tut.get("bounding_stage") \
                and tut["bounding_stage"] not in MODEL_STAGES:
            text += (f"; its model stages alone are {speedup_phrase(tut['model_stages_speedup'])}, but "
                     f"{tut['bounding_stage']} ({tut['bounding_stage_meaning']}) caps the end-to-end speedup at "
                     f"{fmt_x(tut['amdahl_cap'])}x")
        elif tut and tut.get("bounding_stage"):
            text += (f"; on the GPU its step is compute bound ({tut['bounding_stage']} takes "
                     f"{100 * (tut['bounding_share_of_gpu_step'] or 0):.0f}% of it)")
        add(f"{text} {_kind_tag(e)}.", LIKE_FOR_LIKE, [e["id"]])
    for eid, kind, words in _HEADLINES:
        e = by.get(eid)
        if e:
            add(f"{words(e)} {_kind_tag(e)}.", kind, [e["id"]])


def _img_s(e: dict) -> str:
    return f"{fmt_num(e['gpu']['median'], 'img/s')} vs {fmt_num(e['cpu']['median'], 'img/s')}"


# speedup id, kind, the verdict's words (its kind tag follows)
_HEADLINES = (
    ("pipeline.device_resident.end_to_end", LIKE_FOR_LIKE, lambda e: "With device-resident data and batched device "
     f"augmentation, end-to-end training is {speedup_phrase(e)}"),
    (WINNER_ID, BEST_VS_BEST, lambda e: "Each device at its best (its accuracy-gated winning configuration), training "
     f"is {speedup_phrase(e)}: {_img_s(e)}"),
    ("inference.latency_batch1.fp32", LIKE_FOR_LIKE, lambda e: f"Batch-1 inference (fp32) is {speedup_phrase(e)}: "
     f"p50 {e['gpu']['median']:.3g} ms vs {e['cpu']['median']:.3g} ms"),
    ("inference.throughput.best_batch", BEST_VS_BEST, lambda e: "At each device's best batch size, inference "
     f"throughput is {speedup_phrase(e, 'higher')}: {_img_s(e)}"),
    ("augmentation.device_batched.chain", LIKE_FOR_LIKE,
     lambda e: f"The batched augmentation chain runs {speedup_phrase(e)}"),
    ("augmentation.chain.best", BEST_VS_BEST,
     lambda e: f"Augmenting each device's fastest way, the chain is {speedup_phrase(e)}"),
    ("volume3d.unet_train_step", LIKE_FOR_LIKE, lambda e: f"A 3D UNet training step is {speedup_phrase(e)}"),
)


def _energy_and_cost(add, eff: dict) -> None:
    ge = ((eff.get("energy") or {}).get("gpu") or {}).get("winner") or {}
    ce = ((eff.get("energy") or {}).get("cpu") or {}).get("winner") or {}
    if ge or ce:
        gtxt = (f"the GPU's winner uses {ge['j_per_image']:.3g} J per image ({ge['images_per_j']:.3g} images per "
                f"joule, {ge['energy_counter']})" if ge.get("j_per_image")
                else f"GPU energy not available on that machine ({ge.get('energy_reason')})")
        ctxt = (f"the CPU's winner {ce['j_per_image']:.3g} J per image ({ce['images_per_j']:.3g} images per joule, "
                f"{ce['energy_counter']})" if ce.get("j_per_image")
                else f"CPU energy not available on that machine ({ce.get('energy_reason')})")
        gain = next((x for x in eff.get("gains", []) if x["metric"].startswith("images per joule, winning")), None)
        extra = f"; the GPU does {fmt_x(gain['gain'])}x more images per joule" if gain and gain.get("gain") else ""
        add(f"Energy: {gtxt}; {ctxt}{extra} [{BEST_VS_BEST}: winning configurations].", BEST_VS_BEST, [])
    cost = ((eff.get("cost") or {}).get("configs") or {}).get("winner")
    if cost:
        g, c = cost["gpu"], cost["cpu"]
        if g["cost_per_million_images"] is not None and c["cost_per_million_images"] is not None:
            cheaper = "GPU" if g["cost_per_million_images"] < c["cost_per_million_images"] else "CPU"
            add(f"Cost per million training images: {g['cost_per_million_images']:.3g} on the GPU machine "
                f"(at {g['price_per_hour']}/h) vs {c['cost_per_million_images']:.3g} on the CPU machine (at "
                f"{c['price_per_hour']}/h): the {cheaper} is cheaper by "
                f"{fmt_x(max(cost['cpu_over_gpu'], 1 / cost['cpu_over_gpu']))}x [{BEST_VS_BEST}: winning "
                "configurations].", BEST_VS_BEST, [])
        else:
            parts = [f"{d}: {x['cost_per_million_images']:.3g} per million images at {x['price_per_hour']}/h"
                     if x["cost_per_million_images"] is not None else f"{d}: {x['reason']}"
                     for d, x in (("GPU", g), ("CPU", c))]
            add("Cost: " + "; ".join(parts) + ".", BEST_VS_BEST, [])
