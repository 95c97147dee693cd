"""Batches handed to the local engine's worker processes through shared memory.

This process writes a batch, as an Arrow IPC stream, into a block of shared memory and
sends the worker the block's name and the stream's size; the worker maps the block and
reads the batch in place. Through a pipe, a 16 MB batch was copied six times on its way
(to IPC bytes, to Python bytes, pickled, through the kernel, received, unpickled), each
copy into fresh memory; here it is written once, and the worker's first copy is the
model's features.

>>> blocks = Blocks("modelyard-1f3a-")      # per job
>>> ref = blocks.put(batch)                 # a free block (or a new one) holds it
>>> read(ref)                               # in a worker: the batch, in the block
>>> blocks.release(ref)                     # its answer is back: the block is free again
>>> blocks.close()                          # unlinks every block, after a failure too

A block is reused once its batch's answer is back, so a job holds about as many blocks
as batches in flight, whatever its size. Shared memory may be short (a container's
``/dev/shm`` is 64 MB by default, and writing past it kills the writer with SIGBUS): a
batch that would not fit in what is free is not put (``put`` returns None) and goes
through the pipe as bytes instead. A batch read from a block keeps the block
mapped as long as any of its columns lives (the worker's answer may hold kept input
columns until it is pickled). A worker that dies leaves nothing behind: the blocks are
this process's, unlinked when the job ends; if this process dies, multiprocessing's
resource tracker unlinks them.
"""

from __future__ import annotations

import ctypes
import itertools
import os
from collections.abc import Callable
from multiprocessing.shared_memory import SharedMemory
from typing import TypeAlias

import pyarrow as pa

BlockRef: TypeAlias = "tuple[str, int]"
"""A batch in shared memory: the block's name and the IPC stream's bytes."""

_SHM = "/dev/shm"
_SPARE_BYTES = 64 * 2**20  # left free for the others using shared memory


class Blocks:
    """The shared-memory blocks of one job's batches in flight, named ``prefix`` and a
    count (so they are recognisable in ``/dev/shm``)."""

    def __init__(self, prefix: str, free_bytes: Callable[[], int | None] | None = None) -> None:
        self.prefix = prefix
        self._free_bytes = free_bytes or shared_free_bytes
        self._count = itertools.count()
        self._free: list[SharedMemory] = []
        self._used: dict[str, SharedMemory] = {}

    def put(self, batch: pa.RecordBatch) -> BlockRef | None:
        """Write ``batch`` into a free block large enough (else a new one); None when a
        new one would not fit in the shared memory left."""
        size = _stream_size(batch)
        block = self._take(size)
        if block is None:
            return None
        sink = pa.FixedSizeBufferWriter(pa.py_buffer(block.buf))
        with pa.ipc.new_stream(sink, batch.schema) as writer:
            writer.write_batch(batch)
        self._used[block.name] = block
        return block.name, size

    def release(self, ref: BlockRef) -> None:
        """The batch in ``ref`` has been answered: its block may hold the next one."""
        self._free.append(self._used.pop(ref[0]))

    def close(self) -> None:
        for block in [*self._free, *self._used.values()]:
            block.close()
            block.unlink()
        self._free.clear()
        self._used.clear()

    def _take(self, size: int) -> SharedMemory | None:
        while self._free:
            block = self._free.pop()
            if block.size >= size:
                return block
            block.close()  # batches are about equal: a smaller block is not kept
            block.unlink()
        free = self._free_bytes()
        if free is not None and free < size + _SPARE_BYTES:
            return None
        return SharedMemory(f"{self.prefix}{next(self._count)}", create=True, size=size)


def shared_free_bytes() -> int | None:
    """The bytes free in ``/dev/shm``; None where it is not a folder (no limit known)."""
    try:
        stats = os.statvfs(_SHM)
    except OSError:
        return None
    return stats.f_bavail * stats.f_frsize


def read(ref: BlockRef) -> pa.RecordBatch:
    """The batch in ``ref``, read in place: its buffers point into the block."""
    name, size = ref
    block = SharedMemory(name)
    return pa.ipc.open_stream(
        pa.foreign_buffer(_address(block), size, base=block)
    ).read_next_batch()


def _address(block: SharedMemory) -> int:
    """Where ``block`` is mapped. The buffer built on it keeps ``block`` (so the mapping)
    alive, and holds no export of its memoryview, which would keep it from closing."""
    view = block.buf
    assert view is not None  # None only once closed
    start = ctypes.c_char.from_buffer(view)
    try:
        return ctypes.addressof(start)
    finally:
        del start


def _stream_size(batch: pa.RecordBatch) -> int:
    sink = pa.MockOutputStream()
    with pa.ipc.new_stream(sink, batch.schema) as writer:
        writer.write_batch(batch)
    return int(sink.size())
