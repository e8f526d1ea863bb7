"""The analysis machinery: ``engine`` runs the sections (``common.sections``, one package each)
with a ``context`` and the run's ``settings``; ``interpret`` reads a pipeline record; the
``custom_*`` modules analyse a user's pipeline with the same engine and plotters."""
