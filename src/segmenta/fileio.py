"""Files segmenta writes for users and for itself, created safely.

Output files (``--out``, exports, not-found lists) are written to a temporary file that is
*created* exclusively, with a random name, in the target's own directory, and never
followed through a symlink; it replaces the target only once it is complete. So a planted
``members.csv.partial`` symlink cannot redirect the write, a crash never leaves half a file
under the target's name, and nobody else can read the file while it is written.

Workspace files and directories are private to their owner (0600 / 0700): the store holds
password hashes and tokens, the data holds customer records.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

#: Mode of files segmenta creates in a workspace, and of its directories.
FILE_MODE = 0o600
DIR_MODE = 0o700


@contextlib.contextmanager
def atomic_output(target: str | Path, *, binary: bool = False, newline: str | None = "") -> Iterator[IO[Any]]:
    """Write ``target`` through an exclusively created temporary file beside it.

    >>> with atomic_output("keys.csv") as fh:  # doctest: +SKIP
    ...     fh.write("contactid\\n1\\n")

    On success the temporary file atomically replaces ``target``; on any error it is removed and
    ``target`` is left as it was.
    """
    target = Path(target)
    directory = target.parent if str(target.parent) else Path(".")
    # mkstemp opens with O_CREAT | O_EXCL (mode 0600) under a random name: no symlink is followed.
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=directory)
    tmp = Path(tmp_name)
    try:
        opened: IO[Any] = os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", encoding="utf-8", newline=newline)
        with opened as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def private_dir(path: str | Path) -> Path:
    """Create ``path`` (and parents) if missing, and make it 0700."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, DIR_MODE)
    return path


def make_private(path: str | Path) -> None:
    """Restrict an existing file to its owner (0600), or a directory (0700)."""
    path = Path(path)
    if path.exists():
        os.chmod(path, DIR_MODE if path.is_dir() else FILE_MODE)
