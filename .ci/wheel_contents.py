"""Check a built wheel ships exactly the package: ``python .ci/wheel_contents.py WHEEL REPO_ROOT``.

The wheel must hold, besides its ``gatera_lab-<version>.dist-info/``, only files under ``gatera_lab/``;
every module of the repository's ``gatera_lab/`` folder and its subpackages (a subpackage missing from
``[tool.setuptools] packages`` would not ship); the shipped configs (``configs/*.yaml`` and
``configs/sweeps/*.yaml``), methods (``methods/*.py``) and datamodules (``datamodules/*.py``) of the
repository, each at its installed place; no ``tests`` or ``benchmarks`` folder; no symbolic link. Exits 1
naming every problem.
"""

from __future__ import annotations

import stat
import sys
import zipfile
from pathlib import Path

SHIPPED = {  # repository glob -> its folder in the wheel
    "configs/*.yaml": "gatera_lab/configs",
    "configs/sweeps/*.yaml": "gatera_lab/configs/sweeps",
    "methods/*.py": "gatera_lab/methods",
    "datamodules/*.py": "gatera_lab/datamodules",
}
FORBIDDEN_FOLDERS = {"tests", "benchmarks", "scripts", "results"}


def problems(wheel: Path, root: Path) -> list[str]:
    """Every way ``wheel`` differs from what the repository at ``root`` should ship."""
    found: list[str] = []
    with zipfile.ZipFile(wheel) as archive:
        infos = archive.infolist()
    names = {info.filename for info in infos}
    for info in infos:
        top = info.filename.split("/", 1)[0]
        if top != "gatera_lab" and not (top.startswith("gatera_lab-") and top.endswith(".dist-info")):
            found.append(f"{info.filename}: outside gatera_lab/")
        if FORBIDDEN_FOLDERS & set(info.filename.split("/")[:-1]):
            found.append(f"{info.filename}: a {'/'.join(FORBIDDEN_FOLDERS)} file")
        if stat.S_ISLNK(info.external_attr >> 16):
            found.append(f"{info.filename}: a symbolic link")
    package = {path.relative_to(root).as_posix() for path in root.glob("gatera_lab/**/*.py")}
    found += [f"{name}: missing (a module of gatera_lab/)" for name in sorted(package - names)]
    for pattern, folder in SHIPPED.items():
        expected = {f"{folder}/{path.name}" for path in root.glob(pattern)}
        suffix = Path(pattern).suffix
        shipped = {name for name in names if name.rsplit("/", 1)[0] == folder and name.endswith(suffix)}
        if not expected:
            found.append(f"{pattern}: no such files in {root}")
        found += [f"{name}: missing (from {pattern})" for name in sorted(expected - shipped)]
        found += [f"{name}: shipped but not in {pattern}" for name in sorted(shipped - expected)]
    return found


def main(argv: list[str]) -> int:
    wheel, root = Path(argv[0]), Path(argv[1])
    found = problems(wheel, root)
    for problem in found:
        print(f"check-wheel: {problem}", file=sys.stderr)
    if not found:
        counts = ", ".join(f"{len(list(root.glob(pattern)))} {pattern}" for pattern in SHIPPED)
        print(f"check-wheel: {wheel.name} holds gatera_lab only, with {counts}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
