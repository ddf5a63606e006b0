"""Run the export's per-file jobs on a Dask distributed cluster (``--scheduler``).

Workers need ustui installed and the same paths to the inputs and to the output's
folder (a shared file system): a job reads its input and writes its part file there,
exactly as a local worker process does, so the export is byte-identical to a local one.
The parent keeps naming, the manifest and the ZIP. A worker lost mid-file has its jobs
run again elsewhere by Dask; a job writes its part through a rename, so a repeat is
harmless. ``distributed`` is imported only here, and this module only for
``--scheduler``: without it nothing opens a network connection.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import importlib
import uuid
from collections.abc import Callable, Iterator, Sequence
from types import ModuleType
from typing import Any, TypeVar

from ustui.core.export import ExportFailed

J = TypeVar("J")
R = TypeVar("R")

CONNECT_TIMEOUT = "20s"
POLL_SECONDS = 0.2
DRAIN_SECONDS = 60.0
"""How long a stopped export waits for the files its workers are writing."""


def run(
    process: Callable[[J], R],
    jobs: Sequence[J],
    address: str,
    cancelled: Callable[[], bool] | None = None,
) -> Iterator[R]:
    """``process(job)`` for every job on the cluster at ``address``, as each finishes.

    At most two jobs per worker thread are in flight, so part files on the shared
    folder stay bounded, as they do locally.

    Raises
    ------
    ExportFailed
        Dask is not installed, the scheduler cannot be reached or is lost, one file
        kept killing workers, or ``cancelled`` says so.
    """
    try:
        dask = importlib.import_module("distributed")  # untyped: its objects are Any here
    except ImportError:
        raise ExportFailed(
            "--scheduler needs Dask: pip install 'ustui[dask]'", source=address
        ) from None
    try:
        client = dask.Client(address, timeout=CONNECT_TIMEOUT, set_as_default=False)
    except (OSError, ValueError) as exc:  # refused, unreachable, timed out, bad address
        raise ExportFailed(
            f"cannot reach the Dask scheduler ({type(exc).__name__})", source=address
        ) from None
    with client:
        yield from _submit_all(dask, client, process, jobs, address, cancelled)


def _submit_all(
    dask: ModuleType,
    client: Any,
    process: Callable[[J], R],
    jobs: Sequence[J],
    address: str,
    cancelled: Callable[[], bool] | None,
) -> Iterator[R]:
    # Keys unique to this export: two exports on one cluster never share results.
    prefix = f"ustui-export-{uuid.uuid4().hex}"
    queue = iter(enumerate(jobs))
    pending: set[Any] = set()

    def submit_up_to_limit() -> None:
        limit = 2 * max(1, sum(client.nthreads().values()))
        while len(pending) < limit:
            item = next(queue, None)
            if item is None:
                return
            n, job = item
            pending.add(client.submit(process, job, key=f"{prefix}-{n}", pure=False))

    try:
        try:
            submit_up_to_limit()
            while pending:
                if cancelled and cancelled():
                    raise ExportFailed("export cancelled; nothing was written")
                try:
                    finished, pending = _wait_first(dask, client, pending)
                except TimeoutError:
                    continue
                for future in finished:
                    yield future.result()
                submit_up_to_limit()
        except BaseException:
            # Stopped or failed: start no more files, and let the running ones finish
            # writing their parts before the caller removes the parts folder.
            _drain(dask, client, pending)
            raise
    except dask.KilledWorker:
        raise ExportFailed(
            "Dask workers kept stopping on one file; nothing was written", source=address
        ) from None
    except concurrent.futures.CancelledError:
        raise ExportFailed("lost the Dask scheduler; nothing was written", source=address) from None


def _wait_first(dask: ModuleType, client: Any, pending: set[Any]) -> tuple[set[Any], set[Any]]:
    with client.as_current():  # wait() uses the current client; this one is not the default
        done = dask.wait(pending, timeout=POLL_SECONDS, return_when="FIRST_COMPLETED")
    return set(done.done), set(done.not_done)


def _drain(dask: ModuleType, client: Any, pending: set[Any]) -> None:
    with contextlib.suppress(BaseException), client.as_current():  # timed out, interrupted
        dask.wait(pending, timeout=DRAIN_SECONDS)
    client.cancel(list(pending))
