"""Pure plotters: a record in, figure files out. They never measure. What the sections' plotters
share (``common``), the comparison's figures and the custom pipeline's; each section's own plotter
is its ``plot`` module in ``common.sections``."""
