"""The repository stands on its own: a user who clones it has nothing beside it."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: Spelled in two pieces so that this file does not find itself.
OUTSIDE = "../" + "shared"
BUILD_MACHINE = "/" + "work/"


def tracked_files() -> list[Path]:
    out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return [ROOT / line for line in out.splitlines() if line]


def test_no_file_refers_outside_the_repository() -> None:
    offenders = []
    for path in tracked_files():
        if not path.is_file():
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        for needle in (OUTSIDE, BUILD_MACHINE):
            if needle in text:
                offenders.append(f"{path.relative_to(ROOT)}: {needle!r}")
    assert not offenders, "files that point outside the repository:\n" + "\n".join(offenders)


def test_conformance_set_is_in_the_repository() -> None:
    conformance = ROOT / "tests" / "data" / "conformance"
    assert (conformance / "model.yaml").is_file()
    assert (conformance / "expected.json").is_file()
    assert sorted(p.stem for p in (conformance / "segments").glob("*.json"))
    assert sorted(p.stem for p in (conformance / "data").glob("*.csv"))
