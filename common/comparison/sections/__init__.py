"""Each section's part of the comparison: ``speedups(gpu_run, cpu_run, out, skipped)`` appends the
section's speedup entries (registered in ``common.layout.SECTIONS``)."""
