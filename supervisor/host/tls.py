"""Keep OpenSSL out of the daemon until something needs TLS.

``import asyncio`` imports ``ssl``, which maps OpenSSL: about 4.4 MB of resident memory in a
daemon whose probes and checks mostly speak plain TCP. The run path imports asyncio with
``ssl`` hidden (asyncio supports a Python built without it); the first ``https://`` check or
``rediss://`` probe imports ``ssl`` and hands it to the asyncio modules that went without.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType

# Modules that name ``ssl`` only inside functions get it set; sslproto also defines module-level
# names from it (``SSLAgainErrors``), so it is executed again, in place.
_ASYNCIO_MODULES = ("asyncio.base_events", "asyncio.selector_events")
_ASYNCIO_RELOADED = "asyncio.sslproto"


@contextmanager
def hidden() -> Iterator[None]:
    """Import what the block imports as if Python had no ``ssl``; a later import gets the real one."""
    if "ssl" in sys.modules:
        yield
        return
    sys.modules["ssl"] = None  # type: ignore[assignment]  # the import system's "not available"
    try:
        yield
    finally:
        if "ssl" in sys.modules and sys.modules["ssl"] is None:
            del sys.modules["ssl"]


def module() -> ModuleType:
    """Import ``ssl`` and give it to every asyncio module that was imported without it."""
    import importlib
    import ssl

    for name in _ASYNCIO_MODULES:
        mod = sys.modules.get(name)
        if mod is not None and getattr(mod, "ssl", ssl) is None:
            mod.ssl = ssl  # type: ignore[attr-defined]
    sslproto = sys.modules.get(_ASYNCIO_RELOADED)
    if sslproto is not None and getattr(sslproto, "ssl", ssl) is None:
        importlib.reload(sslproto)  # the module object stays: base_events and selector_events see the new names
    return ssl
