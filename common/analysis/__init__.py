"""Analysis sections: each ``measure(ctx) -> data`` (a record) and a plotter in
``common.plots`` that draws the record's figures. ``engine`` runs them."""
