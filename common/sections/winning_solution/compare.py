"""winning_solution: the ladder's rungs present in both runs (like-for-like) and each device's winner (best-vs-best)."""

from __future__ import annotations

from common.comparison import BEST_VS_BEST, LIKE_FOR_LIKE
from common.comparison.load import Run
from common.comparison.speedups import WINNER_ID, Side, rung_id, speedup_entry


def speedups(g: Run, c: Run, out: list, skipped: list) -> None:
    gw, cw = g.ok("winning_solution"), c.ok("winning_solution")
    if not (gw and cw):
        return
    g_rungs = {rung_id(r, i): i for i, r in enumerate(gw.data["rungs"])}
    for ci, rung in enumerate(cw.data["rungs"]):
        rid = rung_id(rung, ci)
        gi = g_rungs.get(rid)
        if gi is None:
            continue
        gr = gw.data["rungs"][gi]
        for part, metric, head in (("images_per_s", "end to end", gi == 0 and ci == 0),
                                   ("model_only_images_per_s", "model only (batch fixed on the device)", False)):
            e = speedup_entry(
                f"training.ladder.{rid}.{'end_to_end' if part == 'images_per_s' else 'model_only'}",
                "training", f"training throughput, {metric}: {rung['name']}", LIKE_FOR_LIKE,
                Side(g, "winning_solution", [["data", "rungs", gi, part, "values"]], gr["label"], gr["levers"],
                     unit="img/s"),
                Side(c, "winning_solution", [["data", "rungs", ci, part, "values"]], rung["label"], rung["levers"],
                     unit="img/s"),
                True, headline=head, skipped=skipped)
            if e:
                out.append(e)
    gi, ci = gw.data["summary"]["winner_index"], cw.data["summary"]["winner_index"]
    gr, cr = gw.data["rungs"][gi], cw.data["rungs"][ci]
    e = speedup_entry(
        WINNER_ID, "training", "training throughput, end to end: each device's winning "
        "configuration (accuracy-gated ladder)", BEST_VS_BEST,
        Side(g, "winning_solution", [["data", "rungs", gi, "images_per_s", "values"]], f"{gr['name']}: {gr['label']}",
             gr["levers"], unit="img/s"),
        Side(c, "winning_solution", [["data", "rungs", ci, "images_per_s", "values"]], f"{cr['name']}: {cr['label']}",
             cr["levers"], unit="img/s"),
        True, headline=True, skipped=skipped)
    if e:
        out.append(e)
