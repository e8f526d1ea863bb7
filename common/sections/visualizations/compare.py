"""visualizations (the 3D volume pipeline): 3D augmentation, the 3D UNet step and sliding-window inference."""

from __future__ import annotations

from common.comparison import LIKE_FOR_LIKE
from common.comparison.load import Run
from common.comparison.speedups import Side, key_id, speedup_entry


def speedups(g: Run, c: Run, out: list, skipped: list) -> None:
    gv, cv = g.ok("visualizations"), c.ok("visualizations")
    if not (gv and cv):
        return
    gd, cd = gv.data, cv.data
    lev = {k: gd.get(k) for k in ("precision",)}
    lev_c = {k: cd.get(k) for k in ("precision",)}
    ga, ca = gd.get("augmentation_3d") or {}, cd.get("augmentation_3d") or {}
    for part, how in (("device_batched_ms_per_patch", "batched on the device"),
                      ("cpu_monai_ms_per_patch", "MONAI on each run's host CPU")):
        gp, cp = ga.get(part) or {}, ca.get(part) or {}
        for t in cp:
            if t in gp:
                e = speedup_entry(f"volume3d.augmentation.{key_id(part)}.{key_id(t)}", "volume3d",
                                  f"3D {t}, time per patch ({how})", LIKE_FOR_LIKE,
                                  Side(g, "visualizations", [["data", "augmentation_3d", part, t, "values"]],
                                       f"patch {ga.get('patch')}", {"patch": ga.get("patch")}, unit="ms/patch"),
                                  Side(c, "visualizations", [["data", "augmentation_3d", part, t, "values"]],
                                       f"patch {ca.get('patch')}", {"patch": ca.get("patch")}, unit="ms/patch"),
                                  False, skipped=skipped,
                                  note=None if part.startswith("device") else "both sides run on their host's CPU")
                if e:
                    out.append(e)
    gt, ct = gd.get("training") or {}, cd.get("training") or {}
    if gt.get("step_s") and ct.get("step_s"):
        lg = dict(lev, batch=gt.get("batch"), patch=gt.get("patch"))
        lc = dict(lev_c, batch=ct.get("batch"), patch=ct.get("patch"))
        e = speedup_entry("volume3d.unet_train_step", "volume3d", "3D UNet training step time", LIKE_FOR_LIKE,
                          Side(g, "visualizations", [["data", "training", "step_s", "values"]],
                               f"{gd.get('precision')} batch {gt.get('batch')} patch {gt.get('patch')}", lg, 1e3, "ms"),
                          Side(c, "visualizations", [["data", "training", "step_s", "values"]],
                               f"{cd.get('precision')} batch {ct.get('batch')} patch {ct.get('patch')}", lc, 1e3, "ms"),
                          False, headline=True, note="each device's analysis precision", skipped=skipped)
        if e:
            out.append(e)
        for stage in ct.get("stage_s") or {}:
            if stage in (gt.get("stage_s") or {}):
                e = speedup_entry(f"volume3d.unet_stage.{stage}", "volume3d", f"3D UNet step, stage {stage}",
                                  LIKE_FOR_LIKE,
                                  Side(g, "visualizations", [["data", "training", "stage_s", stage, "values"]],
                                       f"{gd.get('precision')}", lg, 1e3, "ms"),
                                  Side(c, "visualizations", [["data", "training", "stage_s", stage, "values"]],
                                       f"{cd.get('precision')}", lc, 1e3, "ms"), False, skipped=skipped)
                if e:
                    out.append(e)
    gs, cs = gd.get("sliding_window") or {}, cd.get("sliding_window") or {}
    if gs.get("voxels_per_s") and cs.get("voxels_per_s"):
        e = speedup_entry("volume3d.sliding_window", "volume3d", "3D sliding-window inference throughput",
                          LIKE_FOR_LIKE,
                          Side(g, "visualizations", [["data", "sliding_window", "voxels_per_s"]],
                               f"roi {gs.get('roi')}, {gd.get('precision')}", dict(lev, roi=gs.get("roi")),
                               unit="voxels/s"),
                          Side(c, "visualizations", [["data", "sliding_window", "voxels_per_s"]],
                               f"roi {cs.get('roi')}, {cd.get('precision')}", dict(lev_c, roi=cs.get("roi")),
                               unit="voxels/s"), True, note="one timed call per device", skipped=skipped)
        if e:
            out.append(e)
