"""A child that only trains DenseNet121 leaves out MONAI's unused optional imports, and MONAI
and the network still work there."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_left_out_packages_fail_to_import_and_densenet_still_builds():
    code = """
import sys
from common.models import leave_out_unused_monai_extras, densenet121
left = leave_out_unused_monai_extras(("transformers", "torchvision", "json"))
assert left == ["transformers", "torchvision"], left  # json was imported already: left alone
for name in left:
    try:
        __import__(name)
    except ImportError:
        pass
    else:
        raise SystemExit(f"{name} imported")
import torch
m = densenet121(6)
assert m(torch.zeros(2, 1, 64, 64)).shape == (2, 6)
print("ok")
"""
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and r.stdout.strip().endswith("ok"), r.stderr[-2000:]
