"""Destination secrets at rest: one Fernet token per destination, never in clear text anywhere.

The key is ``$SEGMENTA_SECRET_KEY`` when set (one or more Fernet keys separated by commas, the
first one encrypting), else the workspace's key file ``destinations.key`` (created on first
use, mode 0600, one key per line, the first encrypting). Older keys still decrypt, so a key is
rotated by putting a new one first and re-encrypting (``segmenta destination rotate-key``), then
dropping the old one. Losing the key loses the secrets, not the destinations: set them again.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from segmenta.errors import Problem, RejectedInput, SegmentaError

KEY_FILE = "destinations.key"
ENV = "SEGMENTA_SECRET_KEY"


def _parse(text: str, where: str) -> list[Fernet]:
    keys = [k.strip() for k in text.replace(",", "\n").splitlines() if k.strip()]
    if not keys:
        raise RejectedInput([Problem(where, "holds no key; a Fernet key is 44 characters of url-safe base64")])
    try:
        return [Fernet(k.encode()) for k in keys]
    except (ValueError, TypeError):
        raise RejectedInput(
            [Problem(where, "is not a Fernet key (44 characters of url-safe base64, e.g. from Fernet.generate_key())")]
        ) from None


def key_file(workspace: Path) -> Path:
    return Path(workspace) / KEY_FILE


def _keys(workspace: Path, *, create: bool) -> list[Fernet] | None:
    env = os.environ.get(ENV)
    if env:
        return _parse(env, f"${ENV}")
    path = key_file(workspace)
    if not path.exists():
        if not create:
            return None
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # never a file others could read first
        with os.fdopen(fd, "w") as fh:
            fh.write(Fernet.generate_key().decode() + "\n")
    return _parse(path.read_text(), str(path))


def encrypt(workspace: Path, secrets: dict[str, str]) -> str:
    """The Fernet token of ``secrets`` (made with the first key; the key file is created if need be)."""
    keys = _keys(workspace, create=True)
    assert keys
    return keys[0].encrypt(json.dumps(secrets, sort_keys=True).encode()).decode()


def decrypt(workspace: Path, token: str | None, *, destination: str) -> dict[str, str]:
    """The secrets of a token; a clear error (never the token) when no key opens it."""
    if not token:
        return {}
    keys = _keys(workspace, create=False)
    if not keys:
        raise SegmentaError(f"destination {destination!r}: its secrets cannot be read: no ${ENV} and no {KEY_FILE}")
    try:
        data = json.loads(MultiFernet(keys).decrypt(token.encode()))
    except InvalidToken:
        raise SegmentaError(
            f"destination {destination!r}: its secrets were encrypted with another key than ${ENV} or {KEY_FILE} hold; "
            "restore that key or set the secrets again"
        ) from None
    return {str(k): str(v) for k, v in data.items()}


def rotate(workspace: Path, tokens: list[str]) -> tuple[list[str], str]:
    """A new first key in the key file and ``tokens`` re-encrypted with it; returns (new tokens, note).

    With ``$SEGMENTA_SECRET_KEY`` set, the tokens are re-encrypted with its first key (rotate by
    putting a new key first in the variable).
    """
    if os.environ.get(ENV):
        keys = _parse(os.environ[ENV], f"${ENV}")
        multi = MultiFernet(keys)
        return [multi.rotate(t.encode()).decode() for t in tokens], f"re-encrypted with the first key of ${ENV}"
    path = key_file(workspace)
    old = _keys(workspace, create=True) or []
    new_key = Fernet.generate_key()
    multi = MultiFernet([Fernet(new_key), *old])
    rotated = [multi.rotate(t.encode()).decode() for t in tokens]
    tmp = path.with_suffix(".key.new")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(new_key.decode() + "\n")  # old keys dropped once every token is re-encrypted
    return rotated, str(tmp)


def commit_rotation(workspace: Path, new_file: str) -> None:
    """Make the new key file the key file (after the re-encrypted tokens are committed)."""
    os.replace(new_file, key_file(workspace))
