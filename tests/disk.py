"""A small tmpfs mounted over a test's folder, to fill up or make read-only.

>>> with small_disk(tmp_path / "predictions") as disk:
...     filler = disk.fill()  # every byte taken: the next write that needs space fails
...     disk.free(filler)
...     disk.remount(read_only=True)

``mount(2)`` is called directly (no ``mount`` process, no ``unshare``): the tests
run as root, here and in CI. Where mounting is not permitted the test fails and
says so, rather than skipping what it is there to check.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

MS_RDONLY = 1
MS_REMOUNT = 32
MNT_DETACH = 2
_libc = ctypes.CDLL(None, use_errno=True)


class SmallDisk:
    """A tmpfs of ``size`` (``mount -o size=``) at ``path``."""

    def __init__(self, path: Path, size: str) -> None:
        self.path = path
        self.size = size

    def mount(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        if _libc.mount(b"tmpfs", bytes(self.path), b"tmpfs", 0, self._options()) != 0:
            code = ctypes.get_errno()
            pytest.fail(
                f"cannot mount a {self.size} tmpfs at {self.path}: {os.strerror(code)}; "
                "these tests need to run as root (or with CAP_SYS_ADMIN)",
                pytrace=False,
            )

    def remount(self, *, read_only: bool, timeout: float = 10.0) -> None:
        """Make the disk read-only or writable again. Linux refuses to make it read-only
        while a file on it is open for writing (EBUSY): tried until ``timeout``."""
        flags = MS_REMOUNT | (MS_RDONLY if read_only else 0)
        deadline = time.monotonic() + timeout
        while _libc.mount(b"tmpfs", bytes(self.path), b"tmpfs", flags, self._options()) != 0:
            code = ctypes.get_errno()
            if code != errno.EBUSY or time.monotonic() > deadline:
                raise OSError(code, f"remount of {self.path}: {os.strerror(code)}")
            time.sleep(0.05)

    def unmount(self) -> None:
        if _libc.umount2(bytes(self.path), 0) != 0:  # still busy: detach it all the same
            _libc.umount2(bytes(self.path), MNT_DETACH)

    def fill(self) -> Path:
        """Take every free byte with one file; its path (``free`` gives the space back)."""
        filler = self.path / ".filler"
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            for chunk in (1 << 20, 1 << 12, 1):
                block = bytes(chunk)
                with contextlib.suppress(OSError):
                    while True:
                        os.write(fd, block)
        finally:
            os.close(fd)
        return filler

    def free(self, filler: Path) -> None:
        filler.unlink()

    def _options(self) -> bytes:
        return f"size={self.size},mode=0755".encode()


@contextlib.contextmanager
def small_disk(path: Path, size: str = "2m") -> Iterator[SmallDisk]:
    """A ``SmallDisk`` mounted at ``path`` for the block; unmounted after, even on failure."""
    disk = SmallDisk(path, size)
    disk.mount()
    try:
        yield disk
    finally:
        disk.unmount()
