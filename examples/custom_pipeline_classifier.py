#!/usr/bin/env python3
"""Your own pipeline, analyzed: a small 2D CNN classifier (plain torch, no torchvision) trained on
your own folder of images, one sub-folder per class (DIR/<class>/*.png|jpg|jpeg). By default it
uses the real MedNIST subset shipped in embedded/ (360 images, 6 classes), extracted to a
temporary folder. The suite measures the pipeline (stage breakdown, data stall, batch sweep,
inference latency, levers, transforms one by one, utilization and energy) and writes its tree under
<results-dir>/custom_pipelines/<name>/<gpu|cpu>_results/ with Markdown and HTML reports, a
Perfetto trace and CSVs.

    python examples/custom_pipeline_classifier.py --images path/to/my_images --size 64
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from common.errors import UserError, run_main  # noqa: E402
from common.pipeline_protocol import CustomPipeline  # noqa: E402

EXTENSIONS = (".png", ".jpg", ".jpeg")


def decode(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("L"))


def make_resize(size: int):
    def resize(a: np.ndarray) -> np.ndarray:
        from PIL import Image

        return np.asarray(Image.fromarray(a).resize((size, size), Image.BILINEAR))
    return resize


def to_tensor(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(a.astype(np.float32) / 255.0)[None]


def normalize(t: torch.Tensor) -> torch.Tensor:
    return (t - t.mean()) / (t.std() + 1e-6)


class FolderDataset(torch.utils.data.Dataset):
    """(image tensor, class index) for every image under DIR/<class>/."""

    def __init__(self, root: Path, size: int, max_per_class: int | None = None):
        classes = sorted(d.name for d in root.iterdir() if d.is_dir())
        self.items = []
        for i, c in enumerate(classes):
            files = sorted(p for p in (root / c).iterdir() if p.suffix.lower() in EXTENSIONS)[:max_per_class]
            self.items += [(p, i) for p in files]
        if len(classes) < 2 or not self.items:
            raise UserError(f"{root}: expected one folder of images per class (at least two classes, "
                            f"*.png/*.jpg inside); found {len(classes)} class folder(s), {len(self.items)} image(s)")
        self.classes = classes
        self.chain = [("decode", decode), ("resize", make_resize(size)), ("to_tensor", to_tensor),
                      ("normalize", normalize)]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int):
        path, label = self.items[i]
        x = path
        for _, fn in self.chain:
            x = fn(x)
        return x, label


def small_cnn(n_classes: int, width: int = 16) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(width, 2 * width, 3, padding=1), nn.BatchNorm2d(2 * width), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(2 * width, 4 * width, 3, padding=1), nn.BatchNorm2d(4 * width), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4 * width, n_classes))


def build_pipeline(images: Path, size: int = 64, batch_size: int = 32, max_per_class: int | None = None,
                   width: int = 16, name: str | None = None) -> CustomPipeline:
    ds = FolderDataset(Path(images), size, max_per_class)
    model = small_cnn(len(ds.classes), width)
    return CustomPipeline(
        name=name or f"{Path(images).name} CNN classifier",
        description=f"a 3-block CNN (width {width}) classifying {len(ds)} images of {len(ds.classes)} classes "
                    f"({', '.join(ds.classes)}) from {images}, {size}x{size} grey, cross-entropy, SGD",
        model=model, loss_fn=nn.CrossEntropyLoss(),
        optimizer=torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9),
        dataset=ds, batch_size=batch_size,
        transforms=ds.chain, transform_inputs=[p for p, _ in ds.items[:16]],
        stages={"data_wait": "decode+resize+normalize (DataLoader)"})


def embedded_images(tmp: Path) -> Path:
    """The embedded MedNIST subset extracted into ``tmp``: tmp/MedNIST/<class>/*.jpeg."""
    import config
    from common.data.extract import extract_mednist

    archive = Path(__file__).resolve().parents[1] / config.EMBEDDED_MEDNIST_ARCHIVE
    return extract_mednist(archive, tmp, source="embedded subset", expected_md5=config.EMBEDDED_MEDNIST_MD5,
                           progress=False)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", default=None, help="your folder of images, one sub-folder per class "
                                                   "(default: the embedded MedNIST subset)")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--results-dir", default=None, help="results root (default: config.RESULTS_DIR)")
    p.add_argument("--size", type=int, default=64, help="image edge after resizing (default 64)")
    p.add_argument("--batch-size", type=int, default=32, help="training batch (default 32)")
    p.add_argument("--max-per-class", type=int, default=None, help="use at most this many images per class")
    p.add_argument("--width", type=int, default=16, help="channels of the first convolution (default 16)")
    p.add_argument("--set", dest="SET", action="append", default=[], metavar="NAME=VALUE",
                   help="a config.py constant for the measurement, e.g. --set MEASURE_STEPS=5")
    return p


@run_main
def main(argv: list[str] | None = None) -> int:
    from common.api import ComprehensiveCPUAnalyzer, ComprehensiveGPUAnalyzer
    from common.cli import parse_set

    args = build_parser().parse_args(argv)
    cls = ComprehensiveGPUAnalyzer if args.device == "cuda" else ComprehensiveCPUAnalyzer
    analyzer = cls(results_dir=args.results_dir, **parse_set(args.SET))
    with tempfile.TemporaryDirectory(prefix="embedded_mednist_") as tmp:
        images = Path(args.images) if args.images else embedded_images(Path(tmp))
        if not images.is_dir():
            raise UserError(f"--images {images}: not a folder; give a folder with one sub-folder of images per class")
        name = None if args.images else "embedded MedNIST subset CNN classifier"
        pipeline = build_pipeline(images, args.size, args.batch_size, args.max_per_class, args.width, name)
        records = analyzer.analyze_custom_pipeline(pipeline)
    return 0 if all(r.status != "error" for r in records.values()) else 3


if __name__ == "__main__":
    sys.exit(main())
