"""Pure plotters: a record in, figure files out. They never measure."""
