"""The ledger directory: its config file (the trust anchor for local verification) and keys.

    DIR/calm-ledger.toml   origin, store URL, the log's public key
    DIR/ledger.db          the default SQLite store
    DIR/keys/NAME.key      passphrase-encrypted keystores (log.key is the organisation's)

The log public key is read from this file, never from the database, so someone who can edit
the database cannot also replace the key that `verify` trusts.
"""

from __future__ import annotations

import base64
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

import tomli_w

from ledger.errors import NotFound, ValidationError

LOG_ACTOR = "log"  # the log key signs as this actor, and its keystore has this name

CONFIG_NAME = "calm-ledger.toml"
DEFAULT_DB = "sqlite:///ledger.db"
# A C2SP log origin: a schema-less URL such as "example.org/restraint-ledger".
_ORIGIN = re.compile(
    r"^(?=.{1,200}$)[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+"
    r"(/[A-Za-z0-9._~-]+)*$"
)


def check_origin(origin: str) -> None:
    if not _ORIGIN.match(origin):
        raise ValidationError(
            f"malformed origin {origin!r}: use a schema-less URL such as"
            " 'example.org/restraint-ledger' (lowercase host with a dot, optional path)"
        )


@dataclass(frozen=True)
class LedgerConfig:
    directory: Path
    origin: str
    db: str
    log_public_key: bytes

    @property
    def keys_dir(self) -> Path:
        return self.directory / "keys"

    def keystore(self, actor: str) -> Path:
        return self.keys_dir / f"{actor}.key"

    def save(self) -> None:
        path = self.directory / CONFIG_NAME
        content = {
            "origin": self.origin,
            "db": self.db,
            "log_public_key": base64.b64encode(self.log_public_key).decode(),
        }
        path.write_text(
            "# calm-ledger configuration. log_public_key is the trust anchor of `verify`.\n"
            + tomli_w.dumps(content)
        )


def load_config(directory: Path) -> LedgerConfig:
    path = directory / CONFIG_NAME
    if not path.exists():
        raise NotFound(
            f"no ledger in {directory} (no {CONFIG_NAME}); run 'calm-ledger init' or pass --dir"
        )
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
        origin, db = str(raw["origin"]), str(raw["db"])
        key = base64.b64decode(str(raw["log_public_key"]), validate=True)
    except (tomllib.TOMLDecodeError, KeyError, ValueError, RecursionError) as e:
        raise ValidationError(f"{path} is not a valid calm-ledger config: {e}") from None
    except OSError as e:
        raise ValidationError(f"cannot read {path}: {e.strerror or e}") from None
    if len(key) != 32:
        raise ValidationError(f"{path}: log_public_key must be a 32-byte Ed25519 key")
    check_origin(origin)
    return LedgerConfig(directory=directory, origin=origin, db=db, log_public_key=key)
