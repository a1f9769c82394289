"""Creating a ledger: its store, the organisation's log key and the first admin."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path

from domain.roles import Role
from ledger.actors import LOG_ACTOR, check_actor_name
from ledger.app import LedgerApp, open_app, storage_errors
from ledger.config import CONFIG_NAME, LedgerConfig, check_origin
from ledger.errors import ValidationError
from ledger.keys import DEFAULT_ARGON2_COST, Argon2Cost, SigningKey, write_keystore
from ledger.mapper import Signer
from ledger.note import format_verifier_key
from ledger.service import LedgerService
from ledger.store import parse_store_url

FORMAT = "calm-ledger/v1"


@dataclass(frozen=True)
class NewLedger:
    config: LedgerConfig
    log_key: SigningKey
    admin_key: SigningKey


def init_ledger(
    directory: Path,
    *,
    origin: str,
    db: str,
    admin: str,
    log_passphrase: str,
    admin_passphrase: str,
    cost: Argon2Cost = DEFAULT_ARGON2_COST,
    keys: tuple[SigningKey, SigningKey] | None = None,
) -> NewLedger:
    """Validate everything, then create the store, keys, config and the admin's enrolment."""
    check_origin(origin)
    check_actor_name(admin)
    if admin == LOG_ACTOR:
        raise ValidationError(f"the name {LOG_ACTOR!r} is reserved for the log key")
    if (directory / CONFIG_NAME).exists():
        raise ValidationError(f"{directory} already holds a ledger ({CONFIG_NAME} exists)")
    for passphrase in (log_passphrase, admin_passphrase):
        if not passphrase:
            raise ValidationError("an empty passphrase is not allowed")
    store_url = parse_store_url(db, base=directory)
    log_key, admin_key = keys or (SigningKey.generate(), SigningKey.generate())
    config = LedgerConfig(directory, origin, db, log_key.public_key)
    for path in (config.keystore(LOG_ACTOR), config.keystore(admin)):
        if path.exists():
            raise ValidationError(f"keystore {path} already exists")

    new_file = store_url.sqlite_path is not None and not store_url.sqlite_path.exists()
    try:
        app = open_app(store_url, create=True)
        try:
            _write_store(app, config, log_key, admin, admin_key)
        finally:
            app.close()
    except BaseException:
        if new_file and store_url.sqlite_path is not None:
            _remove_sqlite(store_url.sqlite_path)  # leave nothing behind
        raise
    if store_url.sqlite_path is not None:
        store_url.sqlite_path.chmod(0o600)  # it holds every subject's data key
    config.keys_dir.mkdir(parents=True, exist_ok=True)
    write_keystore(config.keystore(LOG_ACTOR), LOG_ACTOR, log_key, log_passphrase, cost=cost)
    write_keystore(config.keystore(admin), admin, admin_key, admin_passphrase, cost=cost)
    config.save()
    return NewLedger(config, log_key, admin_key)


def _write_store(
    app: LedgerApp, config: LedgerConfig, log_key: SigningKey, admin: str, admin_key: SigningKey
) -> None:
    with storage_errors(app.store_url):
        if app.store.meta() or app.store.head().size:
            raise ValidationError(f"the database {app.store_url.describe()} already holds a ledger")
    app.envelope_mapper.origin = config.origin
    service = LedgerService(app, Signer(LOG_ACTOR, log_key), log_key.public_key)
    service.enrol_actor(admin, (Role.ADMIN,), admin_key.public_key)
    with storage_errors(app.store_url):
        app.store.write_meta(
            {
                "format": FORMAT,
                "origin": config.origin,
                "log_public_key": base64.b64encode(log_key.public_key).decode(),
                "log_verifier_key": format_verifier_key(config.origin, log_key.public_key),
            }
        )


def _remove_sqlite(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
