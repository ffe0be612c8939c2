"""A folder's manifest: the SHA-256 of every file in it, recorded when the folder is made, checked before use.

``{relative posix path: "sha256:<hex>"}`` for every file under the folder (except the ``exclude`` names,
typically the file that stores the manifest). The check fails on a changed file, a missing one, an extra
one (e.g. a ``model.safetensors.index.json`` that would redirect the loader) or a symbolic link. Digests are
memoised per file state (`gatera_lab.io.file_hashes`), so checking an unchanged folder again in the same
process costs a ``stat`` per file.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping
from pathlib import Path

from gatera_lab.io.file_hashes import file_pin, pin_mismatch


def folder_files(folder: Path, exclude: Collection[str] = ()) -> dict[str, Path]:
    """Every non-folder entry under ``folder`` (links included), by relative posix path, sorted."""
    entries = {}
    for root, folders, files in os.walk(folder):
        for name in files + [name for name in folders if os.path.islink(os.path.join(root, name))]:
            path = Path(root, name)
            relative = path.relative_to(folder).as_posix()
            if relative not in exclude:
                entries[relative] = path
    return dict(sorted(entries.items()))


def folder_manifest(folder: Path, exclude: Collection[str] = ()) -> dict[str, str]:
    """``{relative path: "sha256:<hex>"}`` of every file under ``folder`` but ``exclude``."""
    return {relative: file_pin(path) for relative, path in folder_files(folder, exclude).items()}


def manifest_problem(folder: Path, manifest: Mapping[str, str], exclude: Collection[str] = ()) -> str | None:
    """None if ``folder`` holds exactly the files of ``manifest`` with those hashes, else what differs."""
    present = folder_files(folder, exclude)
    missing = sorted(set(manifest) - set(present))
    extra = sorted(set(present) - set(manifest))
    if missing or extra:
        return f"missing files {missing}, files it did not record {extra}"
    for relative, path in present.items():
        if path.is_symlink():
            return f"{relative} is a symbolic link"
        actual = pin_mismatch(path, manifest[relative])
        if actual is not None:
            return f"{relative} has {actual}, but {manifest[relative]} was recorded"
    return None
