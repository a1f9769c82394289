"""One URL selects the store: `sqlite:///relative.db`, `sqlite:////absolute.db` or
`postgresql://user[:password]@host[:port]/dbname[?schema=NAME]`.

Only the selected backend's driver is imported (psycopg costs ~150 ms of start-up).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from ledger.errors import ValidationError

SQLITE_FACTORY = "ledger.store.sqlite:LedgerSQLiteFactory"
POSTGRES_FACTORY = "ledger.store.postgres:LedgerPostgresFactory"


@dataclass(frozen=True)
class StoreURL:
    url: str
    backend: str  # "sqlite" | "postgresql"
    sqlite_path: Path | None = None
    pg_host: str = ""
    pg_port: str = "5432"
    pg_user: str = ""
    pg_password: str = ""
    pg_dbname: str = ""
    pg_schema: str = "public"

    def env(self, *, create_tables: bool) -> dict[str, str]:
        """The eventsourcing environment for this store."""
        common = {"CREATE_TABLE": "y" if create_tables else "n"}
        lock_timeout = lock_timeout_seconds()
        if self.backend == "sqlite":
            return {
                **common,
                "PERSISTENCE_MODULE": SQLITE_FACTORY,
                "SQLITE_DBNAME": str(self.sqlite_path),
                "SQLITE_LOCK_TIMEOUT": str(lock_timeout),
            }
        return {
            **common,
            "PERSISTENCE_MODULE": POSTGRES_FACTORY,
            "POSTGRES_HOST": self.pg_host,
            "POSTGRES_PORT": self.pg_port,
            "POSTGRES_USER": self.pg_user,
            "POSTGRES_PASSWORD": self.pg_password,
            "POSTGRES_DBNAME": self.pg_dbname,
            "POSTGRES_SCHEMA": self.pg_schema,
            "POSTGRES_CONNECT_TIMEOUT": "5",
            # A CLI process needs one connection, not the library's default pool of ~6.
            "POSTGRES_POOL_SIZE": "1",
            "POSTGRES_MAX_OVERFLOW": "2",
            "POSTGRES_LOCK_TIMEOUT": str(lock_timeout),
            "POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT": "60",
            "POSTGRES_ENABLE_DB_FUNCTIONS": "n",  # never: see DESIGN §7
        }

    def describe(self) -> str:
        """The URL without any password, for messages."""
        if self.backend == "sqlite":
            return f"sqlite:///{self.sqlite_path}"
        return f"postgresql://{self.pg_user}@{self.pg_host}:{self.pg_port}/{self.pg_dbname}"


def lock_timeout_seconds() -> int:
    """How long a write waits for another writer's lock before giving up (exit 3):
    CALM_LEDGER_LOCK_TIMEOUT seconds, default 10."""
    raw = os.environ.get("CALM_LEDGER_LOCK_TIMEOUT", "10")
    if not raw.isdigit() or not 1 <= int(raw) <= 3600:
        raise ValidationError(f"CALM_LEDGER_LOCK_TIMEOUT must be 1-3600 seconds, not {raw!r}")
    return int(raw)


def parse_store_url(url: str, *, base: Path | None = None) -> StoreURL:
    """Parse a store URL; a relative SQLite path is taken relative to `base`."""
    if url.startswith("sqlite:///"):
        raw = url[len("sqlite:///") :]
        if not raw:
            raise ValidationError(f"store URL {url!r} names no file")
        path = Path(raw)
        if not path.is_absolute() and base is not None:
            path = base / path
        return StoreURL(url=url, backend="sqlite", sqlite_path=path)
    if url.startswith(("postgresql://", "postgres://")):
        return _parse_postgres(url)
    raise ValidationError(
        f"unsupported store URL {url!r}: use sqlite:///PATH or postgresql://USER@HOST:PORT/DB"
    )


def _parse_postgres(url: str) -> StoreURL:
    try:
        parts = urlsplit(url)
    except ValueError as e:
        raise ValidationError(f"store URL {url!r} is malformed: {e}") from None
    dbname = parts.path.lstrip("/")
    if not parts.hostname or not dbname:
        raise ValidationError(f"store URL {url!r} needs a host and a database name")
    try:
        port = str(parts.port or 5432)
    except ValueError:
        raise ValidationError(f"store URL {url!r} has an invalid port") from None
    query = parse_qs(parts.query)
    unknown = set(query) - {"schema"}
    if unknown:
        raise ValidationError(f"store URL {url!r}: unknown parameter(s) {sorted(unknown)}")
    schema = query.get("schema", ["public"])[0]
    if not schema.replace("_", "").isalnum() or not schema[0].isalpha():
        raise ValidationError(f"invalid schema name {schema!r}")
    return StoreURL(
        url=url,
        backend="postgresql",
        pg_host=parts.hostname,
        pg_port=port,
        pg_user=unquote(parts.username or "postgres"),
        pg_password=unquote(parts.password or os.environ.get("PGPASSWORD", "")),
        pg_dbname=unquote(dbname),
        pg_schema=schema,
    )
