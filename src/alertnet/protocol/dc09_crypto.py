"""AES-CBC of SIA DC-09 (DESIGN §9.1): zero IV, 128/192/256-bit keys, the ``<pad>|`` rule.

An encrypted message carries, after ``[``, the uppercase hex of AES-CBC(key, IV = 16 zero
bytes) over ``<pad>|<rest>``: the pad bytes bring the plaintext to a multiple of 16 bytes, are
never ``|``, ``[`` or ``]``, and the first ``|`` ends them. There is no cipher padding scheme
(PKCS#7 etc.) on top: the plaintext is already block-aligned.

Pure functions, no I/O. Every failure is a ``CryptoError`` (a ``ValueError``).
"""

from __future__ import annotations

import random
import re
from typing import Final

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

__all__ = [
    "BLOCK_BYTES",
    "KEY_BYTES",
    "PAD_ALPHABET",
    "CryptoError",
    "add_pad",
    "decrypt",
    "encrypt",
    "make_pad",
    "parse_key",
    "strip_pad",
]

BLOCK_BYTES: Final = 16
#: AES-128, AES-192, AES-256.
KEY_BYTES: Final = (16, 24, 32)
_ZERO_IV: Final = bytes(BLOCK_BYTES)
_FORBIDDEN_IN_PAD: Final = frozenset(b"|[]")
#: What ``make_pad`` draws from: printable ASCII except ``|``, ``[`` and ``]`` (a receiver
#: must accept any byte but those three; printable pad keeps strict third-party parsers happy).
PAD_ALPHABET: Final = bytes(b for b in range(0x21, 0x7F) if b not in _FORBIDDEN_IN_PAD)
_HEX_KEY: Final = re.compile(r"[0-9A-Fa-f]+")


class CryptoError(ValueError):
    """A key, ciphertext or pad that DC-09's AES layer cannot accept."""


def parse_key(text: str) -> bytes:
    """``--dc09-key HEX``: 32, 48 or 64 hex digits → the 16/24/32-byte AES key."""
    cleaned = text.strip()
    if not _HEX_KEY.fullmatch(cleaned) or len(cleaned) // 2 not in KEY_BYTES or len(cleaned) % 2:
        raise CryptoError("a DC-09 key is 32, 48 or 64 hex digits (AES-128, -192 or -256)")
    return bytes.fromhex(cleaned)


def _cipher(key: bytes) -> Cipher[modes.CBC]:
    if len(key) not in KEY_BYTES:
        raise CryptoError(f"an AES key is 16, 24 or 32 bytes, not {len(key)}")
    return Cipher(algorithms.AES(key), modes.CBC(_ZERO_IV))


def encrypt(key: bytes, plaintext: bytes) -> bytes:
    """AES-CBC with a zero IV over a plaintext that is already a multiple of 16 bytes."""
    if not plaintext or len(plaintext) % BLOCK_BYTES:
        raise CryptoError("the plaintext must be a non-empty multiple of 16 bytes")
    encryptor = _cipher(key).encryptor()
    return encryptor.update(plaintext) + encryptor.finalize()


def decrypt(key: bytes, ciphertext: bytes) -> bytes:
    """The inverse of ``encrypt``; a wrong key gives garbage, which ``strip_pad`` and the frame
    parser then refuse."""
    if not ciphertext or len(ciphertext) % BLOCK_BYTES:
        raise CryptoError("the ciphertext must be a non-empty multiple of 16 bytes")
    decryptor = _cipher(key).decryptor()
    return decryptor.update(ciphertext) + decryptor.finalize()


def make_pad(rest_len: int, rng: random.Random | None = None) -> bytes:
    """Fresh pad for ``<pad>|<rest>`` with ``len(rest) == rest_len``: 1 to 16 bytes from
    ``PAD_ALPHABET`` so that the whole is a multiple of 16 (never empty, so a receiver that
    expects at least one pad byte is satisfied too)."""
    source = rng if rng is not None else random.SystemRandom()
    length = (-(rest_len + 1)) % BLOCK_BYTES or BLOCK_BYTES
    return bytes(source.choice(PAD_ALPHABET) for _ in range(length))


def add_pad(rest: bytes, pad: bytes | None = None, rng: random.Random | None = None) -> bytes:
    """``<pad>|<rest>``, block-aligned; ``pad`` given (tests) must fit exactly."""
    if pad is None:
        pad = make_pad(len(rest), rng)
    if _FORBIDDEN_IN_PAD.intersection(pad):
        raise CryptoError("pad bytes may not be '|', '[' or ']'")
    plaintext = pad + b"|" + rest
    if len(plaintext) % BLOCK_BYTES:
        raise CryptoError(
            f"pad of {len(pad)} bytes leaves {len(plaintext)} bytes, not a multiple of 16"
        )
    return plaintext


def strip_pad(plaintext: bytes, *, require_bar: bool = True) -> tuple[bytes, bytes]:
    """``(pad, rest)``: the first ``|`` ends the pad.

    Pad cannot hold ``[`` or ``]``, so one before the first ``|`` means the key was wrong (or
    the sender broke the rule). ``require_bar=False`` also accepts a plaintext with no ``|`` at
    all, the pad then ending at the first ``]``: some receivers (pysiaalarm 3.2.2) answer
    ``*ACK`` that way; alertnet never sends it.
    """
    bar = plaintext.find(b"|")
    bracket = min((i for i in (plaintext.find(b"["), plaintext.find(b"]")) if i >= 0), default=-1)
    if bar >= 0 and (bracket < 0 or bar < bracket):
        return plaintext[:bar], plaintext[bar + 1 :]
    if not require_bar and bar < 0 and bracket >= 0 and plaintext[bracket] == ord("]"):
        return plaintext[:bracket], plaintext[bracket:]
    raise CryptoError("no '|' ends the pad (wrong key?)")
