"""Files from pinned npm packages, checked against the registry's integrity hash.

The console's browser libraries (uPlot) are committed under ``processors/console/static/vendor/``
with a manifest (``vendor.json``: package, version, the tarball's ``sha512-`` integrity, each
file's SHA-256); ``python -m processors.operations.npm_assets`` re-creates them from the registry
and refuses a tarball whose integrity differs. Committed, not fetched at build time, because the
console serves them itself on Lambda and locally: the artifact is built from the tree alone (no
registry at `sam build` or at run time, offline too), and a change of a byte shows in review and
fails ``tests/unit/test_console_vendor.py``. Test-only packages (axe-core) are fetched the same
way into ``~/.cache/dynafold`` (like DynamoDB Local), never committed.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from processors.local.engine import cache_dir

ROOT = Path(__file__).resolve().parents[2]
VENDOR_DIR = ROOT / "processors" / "console" / "static" / "vendor"
MANIFEST = VENDOR_DIR / "vendor.json"


@dataclass(frozen=True)
class NpmPackage:
    name: str
    version: str
    integrity: str  # the registry's dist.integrity of the tarball (`npm view NAME@VERSION dist.integrity`)

    @property
    def spec(self) -> str:
        return f"{self.name}@{self.version}"


# Served by the console (committed, see the module docstring): package -> files kept (tarball path -> name).
CONSOLE_PACKAGES = {
    NpmPackage("uplot", "1.6.32",
               "sha512-KIMVnG68zvu5XXUbC4LQEPnhwOxBuLyW1AHtpm6IKTXImkbLgkMy+jabjLgSLMasNuGGzQm/ep3tOkyTxpiQIw=="): {
        "package/dist/uPlot.iife.min.js": "uPlot.iife.min.js",
        "package/dist/uPlot.min.css": "uPlot.min.css",
        "package/LICENSE": "LICENSE",
    },
}
# Only the browser tests use it (tests/browser): fetched into the cache.
AXE_CORE = NpmPackage("axe-core", "4.14.1",
                      "sha512-FHfa+lmNjQZfJz1q8wKqIDwC6DExcHt/pkjNQb09a3NPjCKg2rhu5qb2S4r76ASyFNNtuFooJpZe37OgudVGtQ==")


class IntegrityMismatch(RuntimeError):
    pass


def integrity_of(tarball: Path) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(tarball.read_bytes()).digest()).decode("ascii")


def fetch_tarball(package: NpmPackage, destination: Path) -> Path:
    """`npm pack NAME@VERSION` into ``destination``, its integrity checked."""
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError(f"npm not found: install Node.js/npm to fetch {package.spec}")
    # S603: a fixed argv: npm from PATH packing one pinned package into a directory of ours
    done = subprocess.run([npm, "pack", package.spec, "--pack-destination", str(destination), "--silent"],  # noqa: S603
                          capture_output=True, text=True, check=False, timeout=300)
    tarballs = sorted(destination.glob("*.tgz"))
    if done.returncode != 0 or not tarballs:
        raise RuntimeError(f"npm pack {package.spec} failed: {done.stderr.strip()[-300:]}")
    found = integrity_of(tarballs[0])
    if found != package.integrity:
        raise IntegrityMismatch(f"{package.spec}: the registry's tarball has {found}, pinned {package.integrity}")
    return tarballs[0]


def cached_package(package: NpmPackage, cache: Path | None = None) -> Path:
    """The unpacked ``package/`` directory of a pinned package, fetched once into the cache."""
    target = (cache or cache_dir()) / f"npm-{package.name}-{package.version}"
    if (target / "package.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / ".npm-assets.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # parallel test workers fetch once
        if not (target / "package.json").is_file():
            with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
                tarball = fetch_tarball(package, Path(scratch))
                with tarfile.open(tarball) as archive:
                    archive.extractall(scratch, filter="data")
                (Path(scratch) / "package").rename(target)
    return target


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def vendor_console(vendor_dir: Path = VENDOR_DIR) -> dict[str, object]:
    """Re-create the committed console vendor files and their manifest from the registry."""
    manifest: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as scratch:
        for package, files in CONSOLE_PACKAGES.items():
            tarball = fetch_tarball(package, Path(scratch))
            target = vendor_dir / package.name
            target.mkdir(parents=True, exist_ok=True)
            with tarfile.open(tarball) as archive:
                for member, name in files.items():
                    source = archive.extractfile(member)
                    if source is None:
                        raise RuntimeError(f"{package.spec} has no file {member}")
                    (target / name).write_bytes(source.read())
            manifest[package.name] = {"version": package.version, "integrity": package.integrity,
                                      "files": {name: sha256(target / name) for name in files.values()}}
    (vendor_dir / "vendor.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


if __name__ == "__main__":
    print(json.dumps(vendor_console(), indent=2), file=sys.stdout)
