"""augmentation_analysis: each transform and the chain, batched on the device and per sample with MONAI."""

from __future__ import annotations

from common.comparison import BEST_VS_BEST, LIKE_FOR_LIKE
from common.comparison.load import Run
from common.comparison.speedups import Side, key_id, speedup_entry


def speedups(g: Run, c: Run, out: list, skipped: list) -> None:
    ga, ca = g.ok("augmentation_analysis"), c.ok("augmentation_analysis")
    if not (ga and ca):
        return
    gdb, cdb = ga.data["device_batched"], ca.data["device_batched"]
    for part, how, note in (
            ("device_batched", "batched on the device", None),
            ("cpu_per_sample", "MONAI per sample on one CPU thread of each run's host",
             "both sides run on a CPU core of their host: this compares the hosts' CPUs, not the GPU")):
        gpt, cpt = ga.data[part]["per_transform_us"], ca.data[part]["per_transform_us"]
        cfg_g = f"batch {gdb.get('batch_size')} on {gdb.get('device')}" if part == "device_batched" else "1 thread"
        cfg_c = f"batch {cdb.get('batch_size')} on {cdb.get('device')}" if part == "device_batched" else "1 thread"
        lev_g = {"batch_size": gdb.get("batch_size")} if part == "device_batched" else None
        lev_c = {"batch_size": cdb.get("batch_size")} if part == "device_batched" else None
        grp = "augmentation" if part == "device_batched" else "augmentation_host_cpu"
        for t in cpt:
            if t not in gpt:
                continue
            e = speedup_entry(f"augmentation.{part}.{key_id(t)}", grp, f"{t}, time per image ({how})", LIKE_FOR_LIKE,
                              Side(g, "augmentation_analysis", [["data", part, "per_transform_us", t, "values"]], cfg_g,
                                   lev_g, unit="us/image"),
                              Side(c, "augmentation_analysis", [["data", part, "per_transform_us", t, "values"]], cfg_c,
                                   lev_c, unit="us/image"), False, note=note, skipped=skipped)
            if e:
                out.append(e)
        e = speedup_entry(f"augmentation.{part}.chain", grp, f"augmentation chain throughput ({how})", LIKE_FOR_LIKE,
                          Side(g, "augmentation_analysis", [["data", part, "chain_images_per_s", "values"]], cfg_g,
                               lev_g, unit="img/s"),
                          Side(c, "augmentation_analysis", [["data", part, "chain_images_per_s", "values"]], cfg_c,
                               lev_c, unit="img/s"), True, headline=part == "device_batched", note=note,
                          skipped=skipped)
        if e:
            out.append(e)

    def best(data: dict) -> tuple[str, str]:
        per = data["cpu_per_sample"]["chain_images_per_s"]["median"]
        bat = data["device_batched"]["chain_images_per_s"]["median"]
        return ("device_batched", f"batched on {data['device_batched'].get('device')}") if bat >= per \
            else ("cpu_per_sample", "MONAI per sample, 1 CPU thread")

    (gpart, gcfg), (cpart, ccfg) = best(ga.data), best(ca.data)
    e = speedup_entry("augmentation.chain.best", "augmentation", "augmentation chain throughput: each device's "
                      "fastest way (per sample with MONAI or batched)", BEST_VS_BEST,
                      Side(g, "augmentation_analysis", [["data", gpart, "chain_images_per_s", "values"]], gcfg,
                           {"way": gpart}, unit="img/s"),
                      Side(c, "augmentation_analysis", [["data", cpart, "chain_images_per_s", "values"]], ccfg,
                           {"way": cpart}, unit="img/s"), True, headline=True, skipped=skipped)
    if e:
        out.append(e)
