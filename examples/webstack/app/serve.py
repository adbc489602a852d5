"""Run the app under uvicorn on the socket the supervisor hands over (fd 3), draining cleanly.

On SIGTERM, uvicorn stops accepting and at once closes every connection that has no request in
progress. A connection it accepted a moment before, whose request is still unread in the kernel,
counts as idle: the client gets a reset. With ``restart.order = "start-first"`` that is the only
way a handover can fail a request, so this server stops accepting, gives such connections a
moment to be read, and only then lets uvicorn's own graceful shutdown run.
"""

from __future__ import annotations

import asyncio
import os
import socket

import uvicorn

# Long enough for a just-accepted connection's request to be read (one loop turn or two).
ACCEPTED_GRACE_S = 0.05
# The bound on waiting for a connection accepted before the close whose request is still unread:
# on a loaded machine (or with many instances on one socket, each starting and stopping in turn)
# one loop turn can take longer than ACCEPTED_GRACE_S.
UNREAD_BOUND_S = 1.0


class DrainingServer(uvicorn.Server):
    """uvicorn's server, with a shutdown that lets just-accepted connections be read first."""

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """Stop accepting; let requests already accepted be read; then shut down as uvicorn does."""
        for server in self.servers:
            server.close()  # the next incarnation accepts from the same socket meanwhile
        await asyncio.sleep(ACCEPTED_GRACE_S)
        # uvicorn closes a connection with no request yet (``cycle`` None) as idle: wait, bounded,
        # until every connection accepted has its request, so that none is closed unanswered.
        loop = asyncio.get_running_loop()
        until = loop.time() + UNREAD_BOUND_S
        while loop.time() < until and any(getattr(c, "cycle", 0) is None for c in self.server_state.connections):
            await asyncio.sleep(0.01)
        await super().shutdown(sockets)


def main() -> None:
    """Serve ``app.main:app`` on fd 3 (``listen`` in the supervisor's configuration)."""
    config = uvicorn.Config(
        "app.main:app",
        fd=int(os.environ.get("APP_FD", "3")),
        log_level=os.environ.get("APP_LOG_LEVEL", "info"),
        access_log=False,
        # Below the program's stop_timeout, so in-flight requests finish before any SIGKILL.
        timeout_graceful_shutdown=int(os.environ.get("APP_GRACEFUL_S", "15")),
    )
    DrainingServer(config).run()


if __name__ == "__main__":
    main()
