"""Ed25519 sign/verify rates: cryptography (OpenSSL) vs PyNaCl (libsodium), side by side.

Why: `ledger.keys` signs every append and verifies every event of an export, so it uses
whichever library is faster here. Also measures what caching loaded public keys saves and
whether `verify_many` (threads; libsodium releases the GIL) beats a loop.

Run: python -m bench.bench_ed25519 [--seconds 0.5] [--message-bytes 512]
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

import nacl.bindings
import nacl.signing
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from ledger import keys


def rate(operation: Callable[[], object], seconds: float) -> float:
    """Best-of-three operations per second, each run lasting about `seconds`."""
    count = 1
    while True:  # calibrate a batch size that takes ~seconds / 10
        start = time.perf_counter()
        for _ in range(count):
            operation()
        if time.perf_counter() - start > seconds / 10:
            break
        count *= 2
    best = 0.0
    for _ in range(3):
        runs, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            for _ in range(count):
                operation()
            runs += count
        best = max(best, runs / (time.perf_counter() - start))
    return best


def batch_rate(operation: Callable[[], object], items: int) -> float:
    best = 0.0
    for _ in range(3):
        start = time.perf_counter()
        operation()
        best = max(best, items / (time.perf_counter() - start))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=0.5, help="length of each timed run")
    parser.add_argument("--message-bytes", type=int, default=512, help="signed header size")
    parser.add_argument("--batch", type=int, default=20000, help="items for verify_many")
    args = parser.parse_args()

    seed, message = os.urandom(32), os.urandom(args.message_bytes)
    openssl_key = Ed25519PrivateKey.from_private_bytes(seed)
    nacl_key = nacl.signing.SigningKey(seed)
    public_key = bytes(nacl_key.verify_key)
    signature = nacl_key.sign(message).signature
    if openssl_key.sign(message) != signature:
        raise AssertionError("the two backends disagree on a deterministic signature")
    openssl_public = Ed25519PublicKey.from_public_bytes(public_key)
    nacl_public = nacl.signing.VerifyKey(public_key)

    def sodium_open() -> object:
        return nacl.bindings.crypto_sign_open(signature + message, public_key)

    cases: list[tuple[str, Callable[[], object] | None, Callable[[], object]]] = [
        ("sign", lambda: openssl_key.sign(message), lambda: nacl_key.sign(message)),
        (
            "verify, key loaded once",
            lambda: openssl_public.verify(signature, message),
            lambda: nacl_public.verify(message, signature),
        ),
        (
            "verify, key loaded per call",
            lambda: Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message),
            lambda: nacl.signing.VerifyKey(public_key).verify(message, signature),
        ),
        ("verify, bindings.crypto_sign_open", None, sodium_open),
    ]
    print(f"Ed25519, {args.message_bytes}-byte messages, {os.cpu_count()} CPUs (ops/s)")
    print(f"{'operation':34} {'cryptography':>12} {'pynacl':>12} {'pynacl/crypto':>14}")
    for name, openssl_op, nacl_op in cases:
        nacl_rate = rate(nacl_op, args.seconds)
        if openssl_op is None:
            print(f"{name:34} {'-':>12} {nacl_rate:12,.0f}")
            continue
        openssl_rate = rate(openssl_op, args.seconds)
        ratio = nacl_rate / openssl_rate
        print(f"{name:34} {openssl_rate:12,.0f} {nacl_rate:12,.0f} {ratio:14.2f}")

    print(f"\nledger.keys (backend: {keys.ED25519_BACKEND})")
    key = keys.SigningKey(seed)
    print(f"{'SigningKey.sign':34} {rate(lambda: key.sign(message), args.seconds):12,.0f}")
    cached = rate(lambda: keys.verify_signature(public_key, message, signature), args.seconds)

    def uncached() -> None:
        keys._verifier.cache_clear()
        keys.verify_signature(public_key, message, signature)

    print(f"{'verify_signature, cached key':34} {cached:12,.0f}")
    print(f"{'verify_signature, cache cleared':34} {rate(uncached, args.seconds):12,.0f}")

    signers = [keys.SigningKey.generate() for _ in range(8)]
    items = []
    for index in range(args.batch):
        signer, text = signers[index % len(signers)], os.urandom(args.message_bytes)
        items.append((signer.public_key, text, signer.sign(text)))

    def loop() -> None:
        for item in items:
            keys.verify_signature(*item)

    loop_rate = batch_rate(loop, len(items))
    many_rate = batch_rate(lambda: keys.verify_many(items), len(items))
    print(f"{'verify_signature loop':34} {loop_rate:12,.0f}")
    print(f"{'verify_many':34} {many_rate:12,.0f}   ({many_rate / loop_rate:.2f}x the loop)")


if __name__ == "__main__":
    main()
