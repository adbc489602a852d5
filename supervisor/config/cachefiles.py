"""Files in the cache directory, read and written so that no other user can steer us through them.

The directory is ``$SUPERVISOR_CACHE_DIR``, else the XDG cache directory. It is trusted only
when it is owned by us and writable by no one else: otherwise another user could plant an
entry (a FIFO to hang us on, a link to redirect a write), so there is no cache and the caller
does the work afresh. Everything goes through the directory's descriptor, so the directory
checked is the directory used. An entry is opened without following a link and without
blocking, and must be a regular file of ours that no one else may write.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Mapping
from pathlib import Path

from supervisor.config.settings import cache_dir

_UNSAFE = stat.S_IWGRP | stat.S_IWOTH


def open_dir(environ: Mapping[str, str], create: bool) -> tuple[Path, int] | None:
    """Open the cache directory: its path and a descriptor; None when there is none we may trust."""
    directory = cache_dir(environ)
    try:
        if create:
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return None
    st = os.fstat(fd)
    if st.st_uid != os.geteuid() or st.st_mode & _UNSAFE:
        os.close(fd)
        return None
    return directory, fd


def unusable(environ: Mapping[str, str] = os.environ) -> str | None:
    """Why there is no cache directory to write to, in words for the operator; None when there is one."""
    directory = cache_dir(environ)
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        st = os.stat(directory)
    except OSError as exc:
        return f"cannot create {directory}: {exc.strerror}"
    if st.st_uid != os.geteuid():
        return f"{directory} belongs to uid {st.st_uid}, not to us"
    if st.st_mode & _UNSAFE:
        return f"{directory} is writable by others (chmod go-w it)"
    return None


def read(name: str, environ: Mapping[str, str] = os.environ) -> bytes | None:
    """Return the bytes of entry ``name``, or None when it is missing or not to be trusted."""
    opened = open_dir(environ, create=False)
    if opened is None:
        return None
    _, dir_fd = opened
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd)
    except OSError:
        return None
    finally:
        os.close(dir_fd)
    try:
        with open(fd, "rb") as fh:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & _UNSAFE:
                return None
            return fh.read()
    except OSError:
        return None


def write(
    name: str, data: bytes, environ: Mapping[str, str] = os.environ, after: Callable[[int], None] | None = None
) -> Path | None:
    """Write entry ``name`` atomically; return its path, or None when there is no cache to write to.

    ``after(dir_fd)`` runs once the entry is in place, on the same directory (to prune it).
    """
    opened = open_dir(environ, create=True)
    if opened is None:
        return None  # a read-only home, or a directory others can write: do the work every time
    directory, dir_fd = opened
    tmp = f".{name}-{os.getpid()}-{os.urandom(6).hex()}"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dir_fd)
        try:
            with open(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        except BaseException:
            # A full disk, a file size limit: leave no partial temporary file behind.
            try:
                os.unlink(tmp, dir_fd=dir_fd)
            except OSError:
                pass
            raise
        if after is not None:
            after(dir_fd)
    except OSError:
        return None
    finally:
        os.close(dir_fd)
    return directory / name
