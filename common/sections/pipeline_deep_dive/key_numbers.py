"""Key numbers of the pipeline deep dive for the report: each configuration's bottleneck and data stall."""

from __future__ import annotations

from common.analysis.interpret import interpret
from common.key_numbers import fmt_value
from common.records import Record


def key_numbers(p: Record) -> list[tuple[str, str]]:
    rows = []
    for k, c in p.data["configs"].items():
        it = interpret(c)
        rows.append((f"Pipeline ({k.replace('_', ' ')})", f"bottleneck {it['bottleneck']} ({it['why']}), "
                     f"data stall {100 * it['data_stall_fraction']:.0f}%; if data cost nothing the step would "
                     f"be {fmt_value(it['speedup_if_data_free'], '{:.2f}x')} faster"))
    return rows
