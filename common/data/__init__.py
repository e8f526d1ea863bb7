"""MedNIST (download, safe extraction, verification, loading, synthetic set) and 3D volumes.
Import the submodules directly (``common.data.mednist``, ``common.data.volumes``, ...):
this package imports nothing, so a script pays only for what it uses."""
