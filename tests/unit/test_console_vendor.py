"""The console's committed browser libraries are the pinned npm files, byte for byte, with their licence
(re-created by `python -m processors.operations.npm_assets`, which checks the registry's integrity)."""

from __future__ import annotations

import json

from processors.operations.npm_assets import CONSOLE_PACKAGES, MANIFEST, VENDOR_DIR, sha256


def test_every_vendored_file_matches_the_manifest_and_the_pins() -> None:
    manifest = json.loads(MANIFEST.read_text())
    assert set(manifest) == {package.name for package in CONSOLE_PACKAGES}
    for package, files in CONSOLE_PACKAGES.items():
        entry = manifest[package.name]
        assert (entry["version"], entry["integrity"]) == (package.version, package.integrity)
        assert set(entry["files"]) == set(files.values())
        assert "LICENSE" in entry["files"]
        for name, digest in entry["files"].items():
            assert sha256(VENDOR_DIR / package.name / name) == digest, f"{package.name}/{name} was changed"
