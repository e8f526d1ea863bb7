"""pipeline_deep_dive: each configuration's throughput, step time and stages, per image."""

from __future__ import annotations

from common.comparison import LIKE_FOR_LIKE
from common.comparison.amdahl import CONFIG_TITLES, DATA_STAGES, MODEL_STAGES
from common.comparison.load import Run
from common.comparison.speedups import Side, speedup_entry


def speedups(g: Run, c: Run, out: list, skipped: list) -> None:
    gp, cp = g.ok("pipeline_deep_dive"), c.ok("pipeline_deep_dive")
    if not (gp and cp):
        return
    for key, cc in cp.data["configs"].items():
        gc = gp.data["configs"].get(key)
        if gc is None:
            continue
        title = CONFIG_TITLES.get(key, key)
        bg, bc = gc["levers"].get("batch_size") or 1, cc["levers"].get("batch_size") or 1
        base = ["data", "configs", key]

        def side(run, cfg, paths, scale=1.0, unit="img/s", key=key):
            return Side(run, "pipeline_deep_dive", paths, cfg.get("label", key), cfg["levers"], scale, unit)

        for part, metric, head in (("end_to_end_images_per_s", "training throughput, end to end",
                                    key == "device_resident"),
                                   ("model_only_images_per_s", "training throughput, model only", False)):
            e = speedup_entry(f"pipeline.{key}.{part.replace('_images_per_s', '')}", "pipeline",
                              f"{metric}: {title}", LIKE_FOR_LIKE, side(g, gc, [base + [part, "values"]]),
                              side(c, cc, [base + [part, "values"]]), True, headline=head, skipped=skipped)
            if e:
                out.append(e)
        e = speedup_entry(f"pipeline.{key}.step_time", "pipeline", f"training step time per image: {title}",
                          LIKE_FOR_LIKE, side(g, gc, [base + ["step_wall_s", "values"]], 1e3 / bg, "ms/image"),
                          side(c, cc, [base + ["step_wall_s", "values"]], 1e3 / bc, "ms/image"), False,
                          note="one synchronized step, per image", skipped=skipped)
        if e:
            out.append(e)
        common = [s for s in cc["stages_s"] if s in gc["stages_s"]]
        for stage in common:
            e = speedup_entry(f"pipeline.{key}.stage.{stage}", "pipeline_stage", f"stage {stage} per image: {title}",
                              LIKE_FOR_LIKE, side(g, gc, [base + ["stages_s", stage, "values"]], 1e3 / bg, "ms/image"),
                              side(c, cc, [base + ["stages_s", stage, "values"]], 1e3 / bc, "ms/image"), False,
                              skipped=skipped)
            if e:
                out.append(e)
        for group, names in (("model_stages", MODEL_STAGES), ("data_stages", DATA_STAGES)):
            gs = [s for s in gc["stages_s"] if s in names]
            cs = [s for s in cc["stages_s"] if s in names]
            if not gs or not cs:
                continue
            e = speedup_entry(f"pipeline.{key}.{group}", "pipeline",
                              f"{group.replace('_', ' ')} ({', '.join(sorted(set(gs) | set(cs)))}) per image: {title}",
                              LIKE_FOR_LIKE, side(g, gc, [base + ["stages_s", s, "values"] for s in gs], 1e3 / bg,
                                                  "ms/image"),
                              side(c, cc, [base + ["stages_s", s, "values"] for s in cs], 1e3 / bc, "ms/image"),
                              False, note="per-step sum of the stages" + (
                                  "" if gs == cs else f" (GPU: {', '.join(gs)}; CPU: {', '.join(cs)})"),
                              skipped=skipped)
            if e:
                out.append(e)
