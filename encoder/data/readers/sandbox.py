"""Reading untrusted pose bytes (an upload) in a worker process with time and memory limits.

The worker is forked from a forkserver that has the readers imported (so a read starts in
milliseconds), caps its own address space (``RLIMIT_AS``) and CPU time (``RLIMIT_CPU``), and reads
the bytes from an anonymous in-memory file (``memfd``): nothing is written to disk, so a worker
killed for taking too long, or a server killed mid-read, leaves no temporary file. The caller's
process only waits on a pipe, so it stays responsive; a worker over a limit is killed and the read
refused with a one-line ``PoseDataError`` naming the upload and the limit.
"""
from __future__ import annotations

import multiprocessing
import os
import resource
import threading
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from encoder.data.errors import PoseDataError
from encoder.data.readers.limits import DEFAULT_LIMITS, ReaderLimits
from encoder.data.sequence import PoseSequence

MIB = 1024 * 1024


@dataclass(frozen=True)
class SandboxLimits:
    """What one sandboxed read may use beyond what the worker starts with."""

    timeout_s: float = 20.0              # wall-clock time, start-up included
    memory_bytes: int = 1024 * MIB       # extra address space (RLIMIT_AS above the worker's start size)
    cpu_s: int = 30                      # CPU seconds (RLIMIT_CPU), a backstop to the wall-clock limit


DEFAULT_SANDBOX = SandboxLimits()
_context_lock = threading.Lock()
_context: Any = None


def _forkserver() -> Any:
    """The multiprocessing context, a forkserver with the readers preloaded (made once)."""
    global _context
    with _context_lock:
        if _context is None:
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(["encoder.data.readers"])
            _context = context
        return _context


def _address_space() -> int:
    """This process's current virtual memory size in bytes."""
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[0]) * resource.getpagesize()


def _worker(conn: Connection, name: str, data: bytes, person: str, limits: ReaderLimits,
            sandbox: SandboxLimits) -> None:
    """In the worker: cap memory and CPU, put the bytes in a memfd, read them, send the result."""
    from encoder.data.readers import read_pose_file

    cap = _address_space() + len(data) + sandbox.memory_bytes
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    resource.setrlimit(resource.RLIMIT_CPU, (sandbox.cpu_s, sandbox.cpu_s + 1))
    try:
        fd = os.memfd_create("posestyle-upload")
        with os.fdopen(fd, "wb", closefd=False) as handle:
            handle.write(data)
        del data
        read = read_pose_file(f"/proc/self/fd/{fd}", person=person, limits=limits, file_type=Path(name).suffix)
        stem, fd_name = Path(name).stem, str(fd)
        result: tuple[str, Any] = ("ok", [seq.with_(source=name, name=stem + seq.name[len(fd_name):]
                                                    if seq.name.startswith(fd_name) else seq.name) for seq in read])
    except (PoseDataError, MemoryError) as err:
        out_of_memory = isinstance(err, MemoryError) or isinstance(err.__context__, MemoryError)
        result = ("error", f"reading it needs more than the {sandbox.memory_bytes // MIB} MiB memory limit of an "
                           "upload" if out_of_memory else err.problem)  # type: ignore[union-attr]
    conn.send(result)
    conn.close()


def read_pose_bytes(name: str, data: bytes, *, person: str = "main", limits: ReaderLimits = DEFAULT_LIMITS,
                    sandbox: SandboxLimits = DEFAULT_SANDBOX) -> list[PoseSequence]:
    """Read pose-file bytes (``name`` gives the type by its suffix and names the file in errors) in a
    worker process under ``sandbox`` limits; the same sequences ``read_pose_file`` would return."""
    receiver, sender = multiprocessing.Pipe(duplex=False)
    worker = _forkserver().Process(target=_worker, args=(sender, name, data, person, limits, sandbox),
                                   name="posestyle-upload-reader", daemon=True)
    worker.start()
    sender.close()
    try:
        if not receiver.poll(sandbox.timeout_s):
            raise PoseDataError(name, f"reading it took over {sandbox.timeout_s:g} s, the time limit of an upload")
        try:
            status, payload = receiver.recv()
        except EOFError:
            worker.join(1.0)
            raise PoseDataError(name, f"the reader process stopped (exit code {worker.exitcode}) over the "
                                      f"{sandbox.memory_bytes // MIB} MiB memory or {sandbox.cpu_s} s CPU "
                                      "limit of an upload") from None
    finally:
        receiver.close()
        if worker.is_alive():
            worker.kill()
        worker.join(5.0)
    if status == "error":
        raise PoseDataError(name, payload)
    return payload
