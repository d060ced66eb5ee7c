"""A Lambda artifact as Lambda sees it: zipped the way `sam deploy` zips it, unpacked with the zip's times.

SAM zips a built function or layer with ``samcli.lib.package.utils.make_zip``: one ``ZipInfo`` per
file, created without a ``date_time``, so every entry is dated 1980-01-01 00:00 (the ZIP epoch;
SAM leaves it so the archive's hash only changes with its content). Unpacked with those times,
as on Lambda, every source file is older than its build: a ``.pyc`` validated by timestamp no
longer matches and is recompiled at every cold start (and never kept: /var/task and /opt are
read-only). Hash-based ``.pyc`` files (PEP 552) do not depend on times; the Makefile builds those.
Used by the tests and the cold-import benchmark; nothing here ships to Lambda.
"""

from __future__ import annotations

import os
import time
import zipfile
from pathlib import Path

ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
# The .pyc header (PEP 552): magic, then a flags word: bit 0 hash-based, bit 1 check the source.
HASH_BASED, CHECK_SOURCE = 0b01, 0b10


def zip_like_sam(source: Path, archive: Path) -> Path:
    """What samcli's make_zip writes: every file under source, deflated, dated ZIP_EPOCH, mode kept."""
    archive.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
        for root, _, files in os.walk(source, followlinks=True):
            for name in files:
                path = Path(root) / name
                info = zipfile.ZipInfo(str(path.relative_to(source)))  # date_time defaults to ZIP_EPOCH
                info.create_system = 3
                info.external_attr = path.stat().st_mode << 16
                zipped.writestr(info, path.read_bytes(), compress_type=zipfile.ZIP_DEFLATED)
    return archive


def extract_like_lambda(archive: Path, target: Path) -> Path:
    """Unpack keeping each entry's modification time (zipfile.extractall would stamp "now")."""
    with zipfile.ZipFile(archive) as zipped:
        for info in zipped.infolist():
            path = Path(zipped.extract(info, target))
            stamp = time.mktime((*info.date_time, 0, 0, -1))
            os.utime(path, (stamp, stamp))
    return target


def pyc_flags(pyc: Path) -> int:
    """The flags word of a .pyc header: 0 = timestamp-based, HASH_BASED (| CHECK_SOURCE) = PEP 552."""
    with pyc.open("rb") as handle:
        header = handle.read(8)
    return int.from_bytes(header[4:8], "little")
