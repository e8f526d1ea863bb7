"""Get MedNIST into DIR/MedNIST and verify it: download the official archive (resumable,
md5-checked), extract a local copy (--from-archive), or generate a synthetic
MedNIST-shaped set (--synthetic). A run that finds verified data returns at once."""

from __future__ import annotations

import argparse
import re
import sys
import urllib.parse
from pathlib import Path

from common.errors import UserError, load_config, run_main

config = load_config()  # a broken config.py ends here with one line naming the file and line
from common.data.download import digests, download_file  # noqa: E402
from common.data.extract import extract_mednist  # noqa: E402
from common.data.mednist import FOLDER, load_manifest, verify_tree  # noqa: E402
from common.data.synthetic import MAX_PER_CLASS, generate_synthetic  # noqa: E402
from common.runlock import FolderLock, signals_as_interrupt  # noqa: E402

EMBEDDED_SOURCE = "embedded subset"  # manifest source of --from-embedded


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--data-dir",
        default=config.DATA_DIR,
        metavar="DIR",
        help=f"folder that receives MedNIST/ (default: config.DATA_DIR = {config.DATA_DIR!r})",
    )
    source = p.add_mutually_exclusive_group()
    source.add_argument(
        "--url", default=None, help=f"archive to download (default: config.MEDNIST_URL = {config.MEDNIST_URL})"
    )
    source.add_argument(
        "--from-archive",
        metavar="PATH",
        help="extract and verify this local MedNIST .tar.gz/.tar/.zip instead of downloading",
    )
    source.add_argument(
        "--from-embedded",
        action="store_true",
        help=f"extract the real MedNIST subset shipped in the repository ({config.EMBEDDED_MEDNIST_ARCHIVE}: "
        "360 images, 60 per class; labelled 'embedded subset' in the manifest and every record)",
    )
    source.add_argument(
        "--synthetic",
        nargs="?",
        type=int,
        const=config.SYNTHETIC_PER_CLASS,
        metavar="N_PER_CLASS",
        help="generate a synthetic MedNIST-shaped set offline, marked synthetic "
        f"(N_PER_CLASS from 1 to {MAX_PER_CLASS:,}; default: config.SYNTHETIC_PER_CLASS = "
        f"{config.SYNTHETIC_PER_CLASS}); it never replaces real data without --force",
    )
    p.add_argument(
        "--md5",
        default=None,
        help=f"expected md5 of the archive (downloads default to config.MEDNIST_MD5 = {config.MEDNIST_MD5};"
        " with --from-archive it is checked only when given)",
    )
    p.add_argument(
        "--seed", type=int, default=config.SEED, help=f"seed of --synthetic (default: config.SEED = {config.SEED})"
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=config.DOWNLOAD_TIMEOUT_S,
        metavar="SECONDS",
        help=f"socket timeout of the download, seconds (default: config.DOWNLOAD_TIMEOUT_S = "
        f"{config.DOWNLOAD_TIMEOUT_S})",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="extract (or generate) and verify again even if DIR/MedNIST is verified, and allow replacing "
        "verified data by something less verified (synthetic data, an archive other than the official one); "
        "a downloaded archive is re-hashed and fetched again only if it does not match",
    )
    return p


def _archive_name(url: str) -> str:
    name = Path(urllib.parse.urlparse(url).path).name
    return name if re.fullmatch(r"[\w.-]+\.(tar\.gz|tgz|tar|zip)", name) else "MedNIST.tar.gz"


def _summary(manifest: dict, root: Path, reused: bool) -> str:
    counts = ", ".join(f"{c} {n}" for c, n in manifest["class_counts"].items())
    origin = manifest.get("url") or manifest.get("archive_path") or f"seed {manifest.get('seed')}"
    tag = " [SYNTHETIC]" if manifest.get("synthetic") else ""
    tag += " [official archive, md5 verified]" if _trust(manifest) == 2 else ""
    head = "MedNIST already verified" if reused else "MedNIST ready"
    tail = " (--force redoes it)" if reused else ""
    ignored = len(manifest.get("ignored_entries") or [])
    note = f"; {ignored} other entry(ies) ignored (listed in manifest.json)" if ignored else ""
    return f"{head}{tag}: {root}, {manifest['total']} images ({counts}) from {manifest['source']} {origin}{tail}{note}"


TRUST = ("synthetic data", "an unverified archive", "the official archive (md5 verified)")


def _trust(manifest: dict | None) -> int:
    """0 synthetic, 1 real data from an archive that is not the official one, 2 the official archive."""
    if not manifest or manifest.get("synthetic"):
        return 0
    official = manifest.get("verified_official")
    if official is None:  # manifests written before the flag existed
        official = manifest.get("archive_md5") == config.MEDNIST_MD5
    return 2 if official else 1


def _guard(have: dict | None, new_trust: int, root: Path, force: bool) -> None:
    """Refuse to replace data by something less verified without --force."""
    if have is not None and not force and new_trust < _trust(have):
        raise UserError(f"{root} holds {TRUST[_trust(have)]}; replacing it by {TRUST[new_trust]} would lose it: "
                        "add --force to replace it anyway, or pass another --data-dir")


def _get(args, data_dir: Path, root: Path, md5: str | None, have: dict | None) -> bool:
    """Get the data; True if the verified tree already there was kept."""
    real = have is not None and not have.get("synthetic") and not args.force  # --force redoes it
    if args.synthetic is not None:
        if md5:
            raise UserError("--md5 does not apply to --synthetic: drop it")
        wanted = (args.synthetic, args.seed)
        if not args.force and have and have.get("synthetic") and (have.get("n_per_class"), have.get("seed")) == wanted:
            return True
        _guard(have, 0, root, args.force)
        generate_synthetic(data_dir, args.synthetic, seed=args.seed)
    elif args.from_embedded:
        if md5:
            raise UserError("--md5 does not apply to --from-embedded (its md5 is config.EMBEDDED_MEDNIST_MD5): drop it")
        if not args.force and have and have.get("source") == EMBEDDED_SOURCE and \
                have.get("archive_md5") == config.EMBEDDED_MEDNIST_MD5:
            return True
        _guard(have, 1, root, args.force)
        archive = Path(__file__).resolve().parent / config.EMBEDDED_MEDNIST_ARCHIVE
        extract_mednist(archive, data_dir, source=EMBEDDED_SOURCE, expected_md5=config.EMBEDDED_MEDNIST_MD5,
                        official_md5=config.MEDNIST_MD5)
    elif args.from_archive:
        archive = Path(args.from_archive)
        if not archive.is_file():
            raise UserError(f"archive {archive} not found: pass the path of a MedNIST.tar.gz to --from-archive")
        archive_md5, _ = digests(archive)
        if real and have.get("archive_md5") == archive_md5 and not (md5 and md5 != archive_md5):
            return True
        _guard(have, 2 if archive_md5 == config.MEDNIST_MD5 else 1, root, args.force)
        extract_mednist(archive, data_dir, source="archive", expected_md5=md5, official_md5=config.MEDNIST_MD5)
    else:
        url, md5 = args.url or config.MEDNIST_URL, md5 or config.MEDNIST_MD5
        if real and have.get("archive_md5") == md5:
            return True
        _guard(have, 2 if md5 == config.MEDNIST_MD5 else 1, root, args.force)
        archive = download_file(url, data_dir / _archive_name(url), md5=md5, timeout=args.timeout)
        extract_mednist(archive, data_dir, source="url", url=url, expected_md5=md5, official_md5=config.MEDNIST_MD5)
    return False


@run_main
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    data_dir = Path(args.data_dir)
    root = data_dir / FOLDER
    if args.md5 is not None and not re.fullmatch(r"[0-9a-fA-F]{32}", args.md5):
        raise UserError(f"--md5 {args.md5!r} is not an md5 (32 hex digits)")
    if args.synthetic is not None and not 1 <= args.synthetic <= MAX_PER_CLASS:
        raise UserError(f"--synthetic {args.synthetic} is out of range: give 1 to {MAX_PER_CLASS:,} images per class "
                        f"(MedNIST's largest class holds {MAX_PER_CLASS:,})")
    if data_dir.exists() and not data_dir.is_dir():
        raise UserError(f"--data-dir {data_dir} is a file, not a folder: pass a folder")
    md5 = args.md5.lower() if args.md5 else None
    with signals_as_interrupt(), FolderLock(data_dir, "data folder"):
        have = None if verify_tree(root) else load_manifest(data_dir)
        reused = _get(args, data_dir, root, md5, have)
    print(_summary(load_manifest(data_dir), root, reused=reused))
    return 0


if __name__ == "__main__":
    sys.exit(main())
