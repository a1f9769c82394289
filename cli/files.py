"""Reading a user's input files: bounded, UTF-8, and a one-line error instead of a traceback."""

from __future__ import annotations

from pathlib import Path

from ledger.errors import ValidationError

SMALL_FILE = 16 * 1024 * 1024  # notes, proofs, keys, mappings, catalogues


def read_text_file(path: Path, *, limit: int = SMALL_FILE, encoding: str = "utf-8") -> str:
    """The file's text; refused (exit 2) if unreadable, larger than `limit` or not UTF-8."""
    try:
        with path.open("rb") as f:
            raw = f.read(limit + 1)
    except OSError as e:
        raise ValidationError(f"cannot read {path}: {e.strerror or e}") from None
    if len(raw) > limit:
        raise ValidationError(f"{path} is larger than {_size(limit)}")
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError:
        raise ValidationError(f"{path} is not UTF-8 text") from None


def _size(limit: int) -> str:
    return f"{limit // (1024 * 1024)} MiB" if limit >= 1024 * 1024 else f"{limit // 1024} KiB"
