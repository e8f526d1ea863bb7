"""common.cli.validate_config covers every constant of config.py: an invalid value of each is
refused with one line that names it (a new constant without a check fails here)."""

from __future__ import annotations

import pytest

import config
from common.cli import validate_config
from common.errors import UserError

CONSTANTS = sorted(k for k in dir(config) if k.isupper())
# an invalid value where the one the default's type suggests (-1, "", (), "yes") is not enough
INVALID = {"VOLUME_PATH": "/no/such/volume.nii.gz", "LABEL_PATH": "/no/such/label.nii.gz", "NUM_WORKERS": -1,
           "CPU_THREADS": -1, "GPU_PRICE_PER_HOUR": -1.0, "CPU_PRICE_PER_HOUR": -1.0, "WINNER_MAX_J_PER_IMAGE": -1.0,
           "MEDNIST_URL": "not a url", "MEDNIST_MD5": "xyz", "LADDER_SEEDS": (-1,), "QUICK_LADDER_SEEDS": (-1,),
           "EMBEDDED_MEDNIST_MD5": "xyz", "EMBEDDED_MEDNIST_ARCHIVE": "", "SCALING_GPUS": 0, "MASTER_ADDR": ""}


def _invalid(name: str):
    if name in INVALID:
        return INVALID[name]
    default = getattr(config, name)
    if isinstance(default, bool):
        return "yes"
    if isinstance(default, (int, float)):
        return -1
    if isinstance(default, str):
        return ""
    if isinstance(default, tuple):
        return ()
    raise AssertionError(f"give config.{name} an invalid value in INVALID")


@pytest.mark.parametrize("name", CONSTANTS)
def test_an_invalid_value_of_each_constant_is_refused_naming_it(name):
    values = {k: getattr(config, k) for k in CONSTANTS}
    values[name] = _invalid(name)
    with pytest.raises(UserError, match=name) as err:
        validate_config(values)
    assert "\n" not in str(err.value)
