"""BLAKE2b without OpenSSL.

``import hashlib`` loads OpenSSL's libcrypto (3.6 MB resident here) for algorithms the daemon
never uses; the cache keys and the advisory lock id need only BLAKE2b, which CPython builds in.
"""

from __future__ import annotations

try:
    from _blake2 import blake2b
except ImportError:  # another implementation of Python: the public module has it too
    from hashlib import blake2b

__all__ = ["blake2b"]
