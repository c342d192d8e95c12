"""Where the blocks run: in this process, on a local dask cluster, or on a dask.distributed cluster.

:func:`open_runner` gives a :class:`Runner` whose :meth:`~Runner.map` runs one function per block
and yields the (small) results as they complete:

- ``synchronous=True``: one after the other in this process (tests, debugging, profiling);
- default: a :class:`distributed.LocalCluster` of ``workers`` processes with one thread each and
  ``memory_limit`` each, so at most ``workers`` blocks are in memory at once;
- ``scheduler="tcp://host:8786"``: a :class:`distributed.Client` on an existing cluster -- the way
  beyond one machine. The workers must have tomlib installed, and a market store they read or
  write must be on storage every worker sees (a shared file system).

Workers run one task at a time (``threads_per_worker=1``): the smart data service keeps per-process
caches that are not meant to be shared between threads.

:class:`PeakMemory` samples the resident memory of this process and all its descendants (the local
cluster's nanny and worker processes), which :mod:`tracemalloc` cannot see; :class:`StageClock`
times the stages of one task (wall, CPU, peak RSS of the worker).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Self

__all__ = ["DEFAULT_MEMORY_LIMIT", "DEFAULT_WORKERS", "LOCAL_CLUSTER_CONFIG", "WORKER_MALLOC", "PeakMemory", "Runner",
           "StageClock", "open_runner"]

#: Worker processes of the default local cluster (the machine's 2 cores).
DEFAULT_WORKERS = 2
#: Memory limit of each local worker; dask pauses a worker at 80 % and restarts it at 95 %.
DEFAULT_MEMORY_LIMIT = "10GiB"

#: glibc malloc settings of the local workers, set before they start (dask's
#: ``distributed.nanny.pre-spawn-environ``). dask's own default, MALLOC_TRIM_THRESHOLD_=65536, hands
#: freed memory back to the system at once; a block allocates and frees gigabytes of arrays, which
#: then fault in again page by page: measured on the GB day, 128 million page faults and 746 s of
#: system time in 2,536 CPU s. Arrays up to 32 MiB come from the heap and the heap is kept (at most
#: the peak of a block; a worker's RSS stays near it); larger arrays are mapped, with huge pages
#: (NumPy asks for them).
WORKER_MALLOC = {"MALLOC_MMAP_THRESHOLD_": 32 * 2**20, "MALLOC_TRIM_THRESHOLD_": 4 * 2**30,
                 "MALLOC_TOP_PAD_": 2**30}

#: dask settings of the local cluster: its scheduler and nannies in this process, its workers. On two
#: cores, with a block running on each, every bit of dask's housekeeping is taken from a block. By
#: default the workers' statistical profiler samples the running task's stack every 10 ms, holding
#: the GIL, for a dashboard the local cluster does not start; each of the five servers (scheduler,
#: two nannies, two workers) checks its event loop every 20 ms and reads the host's CPU, memory,
#: network and disk counters every 0.5 s; the nannies and workers read the worker's RSS every
#: 0.1 s. Measured on ten 240k-MPAN blocks: this process used 4-5 CPU s beside the blocks' 90, each
#: worker's event loop 1.3-1.6 s, and the blocks were off the CPU for 7 % of their wall time; with
#: these settings 1.1 s, 0.25 s and 3 %, and the ten blocks settled in 44-47 s instead of 50-56 s. A
#: block peaks far below the memory limit (under 4 of 10 GiB), so a 1 s memory check still pauses
#: or restarts a runaway worker in time.
LOCAL_CLUSTER_CONFIG = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "1s",
    "distributed.admin.tick.cycle": "5s",
    "distributed.admin.system-monitor.interval": "5s",
    "distributed.admin.system-monitor.disk": False,
    "distributed.worker.memory.monitor-interval": "1s",
    "distributed.deploy.cluster-repr-interval": "60s",
}


class Runner:
    """Runs a function over items, here or on a dask cluster.

    Attributes
    ----------
    client : distributed.Client or None
        None when running synchronously in this process.
    description : str
        Where the tasks run (for provenance and logs).
    """

    def __init__(self, client=None, description: str = "synchronous (this process)"):
        self.client = client
        self.description = description

    @property
    def n_workers(self) -> int:
        """Workers that run tasks at the same time."""
        if self.client is None:
            return 1
        return max(len(self.client.scheduler_info(n_workers=-1).get("workers", {})), 1)

    def on_every_worker(self, fn: Callable, *args: Any) -> None:
        """Run ``fn(*args)`` once in every worker process (here: once in this process)."""
        if self.client is None:
            fn(*args)
        else:
            self.client.run(fn, *args)

    def map(self, fn: Callable, items: Iterable, *args: Any, **kwargs: Any) -> Iterator[Any]:
        """``fn(item, *args, **kwargs)`` for every item; results in completion order.

        Tasks start in the order of ``items``. Each result is released on the cluster as soon as it
        is yielded, so only results not yet consumed are held anywhere.
        """
        items = list(items)
        if self.client is None:
            for item in items:  # one block after the other
                yield fn(item, *args, **kwargs)
            return
        from distributed import as_completed

        name = getattr(fn, "__name__", "task")
        futures = [self.client.submit(_one_task_at_a_time, fn, item, *args, priority=len(items) - i,
                                      key=f"{name}-{i}-{os.getpid()}-{uuid.uuid4().hex[:8]}", **kwargs)
                   for i, item in enumerate(items)]
        try:
            for future in as_completed(futures):
                result = future.result()
                future.release()
                yield result
        finally:
            for future in futures:
                future.cancel()


def _one_task_at_a_time(fn: Callable, *args: Any, **kwargs: Any) -> Any:
    """Run a block task with dask's synchronous scheduler for any dask computation inside it.

    Otherwise a dask computation within a task -- xarray loading a chunked file, as the LCL library
    is loaded on a worker's first block -- goes to the cluster, whose worker *secedes* the task's
    thread while it waits and starts its next task beside it: two blocks at once on a one-thread
    worker, for the rest of both. Measured on the GB day's first blocks: 14 s instead of 4 s of CPU
    for the second block's generation, and each worker's memory doubled.
    """
    import dask

    with dask.config.set(scheduler="synchronous"):
        return fn(*args, **kwargs)


@contextlib.contextmanager
def open_runner(*, scheduler: str | None = None, workers: int = DEFAULT_WORKERS,
                memory_limit: str | int = DEFAULT_MEMORY_LIMIT, synchronous: bool = False,
                processes: bool = True) -> Iterator[Runner]:
    """A :class:`Runner` for the duration of a ``with`` block.

    Parameters
    ----------
    scheduler : str, optional
        Address of a running dask scheduler (``tcp://host:8786``); its workers run the blocks.
    workers : int
        Worker processes of the local cluster (ignored with ``scheduler``).
    memory_limit : str or int
        Memory limit per local worker (dask notation, e.g. ``"10GiB"``).
    synchronous : bool
        Run in this process, one block after the other.
    processes : bool
        Local workers as processes (default) or threads of this process (tests).

    Yields
    ------
    Runner
    """
    if synchronous:
        yield Runner()
        return
    from distributed import Client, LocalCluster

    if scheduler:
        client = Client(scheduler)
        try:
            yield Runner(client, f"dask cluster at {scheduler}")
        finally:
            client.close()
        return
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    import dask

    with dask.config.set({**{f"distributed.nanny.pre-spawn-environ.{k}": v for k, v in WORKER_MALLOC.items()},
                          **LOCAL_CLUSTER_CONFIG}):
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=processes,
                               memory_limit=memory_limit, dashboard_address=None, silence_logs=logging.ERROR)
        client = Client(cluster)
    try:
        yield Runner(client, f"local dask cluster: {workers} worker {'processes' if processes else 'threads'} x 1 "
                             f"thread, {memory_limit} each")
    finally:
        client.close()
        cluster.close()


class PeakMemory:
    """Peak resident memory of this process and its descendants, sampled in a background thread.

    Use as a context manager; ``peak_bytes`` holds the largest sum of RSS seen [bytes]. RSS counts
    shared pages (libraries) once per process, so the sum is an upper bound of the memory used.

    Parameters
    ----------
    interval : float
        Seconds between samples.
    """

    def __init__(self, interval: float = 0.2):
        self.interval = interval
        self.peak_bytes = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sample(self) -> int:
        """Current RSS of this process and all its descendants [bytes]."""
        import psutil

        me = psutil.Process()
        total = 0
        for proc in [me, *me.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                total += proc.memory_info().rss
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_bytes = max(self.peak_bytes, self.sample())
            self._stop.wait(self.interval)

    def __enter__(self) -> Self:
        self.peak_bytes = self.sample()
        self._thread = threading.Thread(target=self._run, name="peak-memory", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.peak_bytes = max(self.peak_bytes, self.sample())


class StageClock:
    """Wall time, CPU time and peak RSS of this process per stage of a task.

    ``with clock.stage(name):`` adds the wall seconds spent to ``seconds[name]`` and the CPU seconds
    of this process to ``cpu_seconds[name]`` (on a shared machine the CPU time is the steadier
    measure of a stage's cost), and raises ``peak_rss[name]`` to the largest resident set size
    sampled (every 50 ms) while inside [bytes].
    """

    def __init__(self, interval: float = 0.05):
        import psutil

        self._proc = psutil.Process()
        self.interval = interval
        self.seconds: dict[str, float] = {}
        self.cpu_seconds: dict[str, float] = {}
        self.peak_rss: dict[str, int] = {}

    def stage(self, name: str):
        clock = self

        class _Stage:
            def __enter__(self):
                self.peak = clock._proc.memory_info().rss
                self.stop = threading.Event()
                self.thread = threading.Thread(target=self._sample, daemon=True)
                self.thread.start()
                self.started, self.cpu = time.perf_counter(), time.process_time()
                return self

            def _sample(self):
                while not self.stop.wait(clock.interval):
                    self.peak = max(self.peak, clock._proc.memory_info().rss)

            def __exit__(self, *exc):
                elapsed, cpu = time.perf_counter() - self.started, time.process_time() - self.cpu
                self.stop.set()
                self.thread.join()
                self.peak = max(self.peak, clock._proc.memory_info().rss)
                clock.seconds[name] = clock.seconds.get(name, 0.0) + elapsed
                clock.cpu_seconds[name] = clock.cpu_seconds.get(name, 0.0) + cpu
                clock.peak_rss[name] = max(clock.peak_rss.get(name, 0), self.peak)

        return _Stage()
