"""Library shared by the suite's scripts: data, transforms, models, workloads, measurement,
analysis sections, plots and reports."""
