"""One error tree for the whole ledger; the CLI maps it to messages and exit codes once.

Exit codes: 1 verification failed, 2 usage or invalid input, 3 environment.
"""

from __future__ import annotations

from domain.errors import DomainError, PermissionDenied, RuleViolated

__all__ = [
    "Conflict",
    "DomainError",
    "EnvironmentProblem",
    "KeyLocked",
    "KeysOutdated",
    "LedgerError",
    "MalformedNote",
    "NotFound",
    "PermissionDenied",
    "ProofError",
    "RuleViolated",
    "SignatureInvalid",
    "SignerChanged",
    "StorageUnavailable",
    "ValidationError",
    "VerificationError",
]


class LedgerError(DomainError):
    """Base of the ledger's errors. `diagnostics()` is the human message."""


class ValidationError(LedgerError):
    """Input that is malformed or breaks a rule: exit 2, nothing written."""


class NotFound(ValidationError):
    """A referenced ledger, actor, stream or file does not exist."""


class Conflict(LedgerError):
    """Someone else wrote to the same stream first; reload and try again."""


class SignerChanged(Conflict):
    """The signer's actor was re-keyed or revoked by another writer mid-append."""


class KeysOutdated(Conflict):
    """Another writer gave a subject a data key (or erased it) while we sealed under a new one."""

    def __init__(self, message: str, subjects: frozenset[str] = frozenset()) -> None:
        super().__init__(message)
        self.subjects = subjects


class EnvironmentProblem(LedgerError):
    """Something outside the user's input is wrong: exit 3."""

    exit_code = 3


class StorageUnavailable(EnvironmentProblem):
    """The database cannot be reached, is locked, or is full."""


class KeyLocked(EnvironmentProblem):
    """A keystore could not be unlocked (wrong passphrase, missing, unsafe mode)."""


class VerificationError(LedgerError):
    """Evidence does not verify: exit 1. `step` names the failed check."""

    exit_code = 1

    def __init__(self, message: str, *, step: str = "", where: str = "") -> None:
        super().__init__(message)
        self.step = step
        self.where = where

    def diagnostics(self) -> str:
        prefix = f"{self.where}: " if self.where else ""
        step = f"[{self.step}] " if self.step else ""
        return f"{step}{prefix}{self}"


class SignatureInvalid(VerificationError):
    """An Ed25519 signature does not verify."""


class ProofError(VerificationError):
    """A Merkle inclusion or consistency proof does not verify.

    Deliberately uninformative (as in Go's tlog): a proof is either right or wrong.
    """


class MalformedNote(ValidationError):
    """A signed note, checkpoint, cosignature or proof file is not well formed."""
