"""The app's side of the notify protocol, at the import path apps use: ``from supervisor.notify import ready``."""

from supervisor.host.notify import ready

__all__ = ["ready"]
