"""Independent jobs side by side on CPU threads, sharing out the machine's torch threads (the
teacher's shards, the demo's learning beside its reference). A small network spreads poorly
over intra-op threads, so on a few cores jobs side by side at one thread each get through more
work than one job on all of them; PyTorch's kernels release the GIL, so Python threads are enough.
"""

from __future__ import annotations

import logging
import threading
from typing import Callable, Sequence, TypeVar

import torch

__all__ = ["run_jobs"]

log = logging.getLogger("s4s")

T = TypeVar("T")


def run_jobs(jobs: Sequence[Callable[[], T]], side_by_side: bool = True,
             stop: threading.Event | None = None) -> list[T]:
    """The results of ``jobs``, in order: run side by side on threads (``side_by_side``), or in
    turn in the calling thread.

    Side by side, at most ``torch.get_num_threads()`` threads take the jobs in order, each with
    an equal share of the torch threads (at least one), restored afterwards. With fewer than
    two jobs or two torch threads, the jobs run in turn in the calling thread (so a job that
    itself calls this runs its own jobs in turn). The jobs must not share mutable state. When
    one raises, or the caller is interrupted, no job starts any more and ``stop`` is set so the
    running ones can end early; the first error to happen is raised once all have ended.
    """
    threads = torch.get_num_threads()
    if not side_by_side or len(jobs) < 2 or threads < 2:
        return [job() for job in jobs]
    count = min(len(jobs), threads)
    each = max(1, threads // count)
    results: list[T | None] = [None] * len(jobs)
    errors: list[BaseException] = []  # in the order they happened: the first is the cause
    pending = list(range(len(jobs)))
    halt = threading.Event()
    lock = threading.Lock()

    def work() -> None:
        torch.set_num_threads(each)  # for this thread's own pool, where the backend keeps one per thread
        while True:
            with lock:
                if not pending or halt.is_set():
                    return
                i = pending.pop(0)
            try:
                results[i] = jobs[i]()
            except BaseException as e:  # noqa: BLE001 - handed to the caller below
                with lock:
                    errors.append(e)
                halt.set()
                if stop is not None:
                    stop.set()
                return

    workers = [threading.Thread(target=work, name=f"s4s-job{k}", daemon=True) for k in range(count)]
    torch.set_num_threads(each)
    try:
        for w in workers:
            w.start()
        for w in workers:
            while w.is_alive():
                w.join(0.2)  # a timed wait, so Ctrl-C reaches this thread
    except BaseException:
        halt.set()
        if stop is not None:
            stop.set()
        if any(w.is_alive() for w in workers):
            log.warning("interrupted: waiting for the jobs running side by side to end (interrupt again to stop now)")
        for w in workers:
            while w.ident is not None and w.is_alive():  # started (an interrupt can come between two starts)
                w.join(0.2)  # timed: a second Ctrl-C still reaches this thread, and ends the wait
        raise
    finally:
        torch.set_num_threads(threads)
    if errors:
        raise errors[0]
    return results  # type: ignore[return-value]
