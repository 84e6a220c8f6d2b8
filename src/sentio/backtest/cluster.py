"""``--backend ray``: independent pieces of work (walk-forward folds, sweep variants' folds) as
Ray tasks, on a local Ray started here or on any Ray cluster by ``--ray-address``.

Ray is the optional extra ``sentio[ray]``: imported only here and only when the Ray backend is
asked for; without it the flag fails with one line naming the extra. A local Ray gets this
machine's cores, no dashboard, quiet logs, no usage report and the loopback address only
(127.0.0.1); what this module started it shuts down.

Results are the same bytes as on the local backend because each task carries everything its
result depends on (a training run holds its own fold seed, thread count and CPU pin, which
``sentio.train`` sets inside the worker before torch starts), and the variables that the
process environment adds are handed to every worker through Ray's ``runtime_env``: the
artifact time stamp (``SOURCE_DATE_EPOCH``), the CPU-kernel pins of
``sentio.train.machine.PINS`` and the BLAS thread count, as this process has them. Workers
import sentio as this process does: on the local Ray they are this interpreter with this
``sys.path`` (an editable install needs no ``working_dir``); on a cluster every node needs the
same sentio installed, and the output folder must be a path every node sees (a shared
filesystem), as the tasks write there.

>>> sorted(ENV_FOR_WORKERS)[:2]
['ATEN_CPU_CAPABILITY', 'CUBLAS_WORKSPACE_CONFIG']
>>> probe_address("not an address")
Traceback (most recent call last):
...
sentio.core.errors.OptionError: --ray-address: give HOST:PORT of a Ray cluster's head (or 'auto'), got 'not an address'
"""  # noqa: E501

from __future__ import annotations

import contextlib
import logging
import os
import re
import socket
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from sentio.core.errors import OptionError, SentioError, excerpt
from sentio.train.machine import PINS

RAY_EXTRA = "pip install 'sentio[ray]'"
LOCALHOST = "127.0.0.1"
OBJECT_STORE_BYTES = 256 * 2**20  # tasks pass configs and folder names, never bars
CONNECT_TIMEOUT_S = 5.0
# The environment a result depends on, handed to every worker as this process has it (see the
# module doc): the artifact stamp, hash seeds, the CPU-kernel pins, cuBLAS's workspace, and
# the BLAS thread counts (the training runs its logistic baseline on one BLAS thread, as the
# split of a large product by thread changes its last bits; any other numpy product then still
# runs as it does here, where Ray would set 1).
BLAS_THREADS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
ENV_FOR_WORKERS = frozenset(
    {
        "SOURCE_DATE_EPOCH",
        "PYTHONHASHSEED",
        "CUBLAS_WORKSPACE_CONFIG",
        "NUMBA_NUM_THREADS",
        *BLAS_THREADS,
    }
    | {name for pin in PINS.values() for name in pin}
)
_ADDRESS = re.compile(r"^(?:ray://)?(\[[0-9a-fA-F:]+\]|[A-Za-z0-9_.-]+):(\d{1,5})$")


def import_ray() -> Any:
    """The ``ray`` module, or one line naming the extra and the flag."""
    try:
        import ray
    except ImportError as exc:
        raise OptionError(
            f"the Ray backend needs the ray extra: {RAY_EXTRA} (or use --backend local); "
            f"{exc.name or 'ray'} is not installed",
            flag="--backend",
        ) from exc
    return ray


def worker_env() -> dict[str, str]:
    """The variables of :data:`ENV_FOR_WORKERS` that this process has set, and
    ``OMP_NUM_THREADS`` always: Ray sets it to 1 in a worker that is not told otherwise,
    while OpenBLAS here, with none of the three set, uses one thread per core.

    >>> worker_env()["OMP_NUM_THREADS"].isdigit()
    True
    """
    env = {name: os.environ[name] for name in sorted(ENV_FOR_WORKERS) if name in os.environ}
    running = _blas_threads()
    if running is not None:  # what this process's BLAS runs, whatever its environment says now
        env.update(dict.fromkeys(BLAS_THREADS, str(running)))
    elif not any(name in env for name in BLAS_THREADS):
        env["OMP_NUM_THREADS"] = str(os.cpu_count() or 1)
    return env


def _blas_threads() -> int | None:
    """The threads numpy's BLAS runs in this process (threadpoolctl, the train extra), or None
    when it cannot be asked. A variable set after the BLAS started (a library, a test) would
    otherwise hand the workers another count than this process computes with."""
    if "numpy" not in sys.modules:
        return None
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return None
    numpy_blas = [  # numpy's own (torch brings other thread pools, set by the trainer)
        pool["num_threads"]
        for pool in threadpool_info()
        if pool["user_api"] == "blas" and "numpy" in Path(pool["filepath"]).parent.name
    ]
    return max(numpy_blas) if numpy_blas else None


def probe_address(address: str) -> None:
    """Fail fast, in one line, when ``address`` (HOST:PORT, optionally ``ray://``) is malformed
    or nothing listens there: Ray itself retries a dead address for minutes. ``auto`` (the
    cluster ``ray start`` left on this machine, or ``RAY_ADDRESS``) is left to Ray."""
    if address == "auto":
        return
    match = _ADDRESS.match(address.strip())
    if not match:
        raise OptionError(
            f"give HOST:PORT of a Ray cluster's head (or 'auto'), got {excerpt(address)}",
            flag="--ray-address",
        )
    host, port = match.group(1).strip("[]"), int(match.group(2))
    try:
        with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as exc:
        raise OptionError(
            f"no Ray cluster answers at {address} ({exc.strerror or exc}); start one with "
            "`ray start --head` or give the head's HOST:PORT",
            flag="--ray-address",
        ) from exc


def _connect(ray: Any, address: str | None, num_cpus: int | None) -> None:
    quiet = {"logging_level": logging.ERROR, "log_to_driver": False}
    env = {"env_vars": worker_env()}
    # Ray reports usage to its makers unless told not to; nothing here leaves the machine.
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if address is None:
        ray.init(
            num_cpus=num_cpus or os.cpu_count() or 1,
            include_dashboard=False,
            object_store_memory=OBJECT_STORE_BYTES,
            runtime_env=env,
            _node_ip_address=LOCALHOST,
            **quiet,
        )
        return
    probe_address(address)
    try:
        ray.init(address=address, runtime_env=env, **quiet)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        first = " ".join(str(exc).split())[:300]
        raise OptionError(
            f"could not join the Ray cluster at {address}: {first}", flag="--ray-address"
        ) from exc


@contextlib.contextmanager
def ray_session(address: str | None = None, num_cpus: int | None = None) -> Iterator[Any]:
    """A connected Ray for the ``with`` block: a running one is reused (and left running);
    otherwise this joins the cluster at ``address``, or starts a local Ray with ``num_cpus``
    (default: this machine's cores), and shuts it down at the end."""
    ray = import_ray()
    if ray.is_initialized():
        yield ray
        return
    _connect(ray, address, num_cpus)
    try:
        yield ray
    finally:
        ray.shutdown()


def run_on_ray(
    fn: Callable[[Any], Any],
    items: Sequence[Any],
    address: str | None = None,
    *,
    num_cpus: int | None = None,
    cpus_per_task: float = 1,
) -> list:
    """``[fn(item) for item in items]`` as Ray tasks, the results in the order of ``items``.

    ``fn`` must be importable by the workers (a module-level function) or a local function
    (Ray ships those by value). A task that raises a :class:`SentioError` raises it here as
    itself (one line at the CLI), the first failing item's in the order of ``items``; any
    other failure in a task keeps Ray's error, with the worker's traceback. A Ray already
    running in this process is used as it is (``address`` and ``num_cpus`` then do nothing).
    """
    if not items:
        return []
    with ray_session(address, num_cpus) as ray:
        task = ray.remote(num_cpus=cpus_per_task)(fn)
        refs = [task.remote(item) for item in items]
        try:  # one by one: the error raised is that of the first failing item, every time
            return [ray.get(ref) for ref in refs]
        except ray.exceptions.RayTaskError as exc:
            cause = getattr(exc, "cause", None)
            if isinstance(cause, SentioError):
                raise cause from None
            raise
        except ray.exceptions.RayError as exc:  # a worker died (killed, out of memory...)
            first = " ".join(str(exc).split())[:300]
            raise SentioError(f"a Ray task failed: {first}") from exc


__all__ = [
    "ENV_FOR_WORKERS",
    "RAY_EXTRA",
    "import_ray",
    "probe_address",
    "ray_session",
    "run_on_ray",
    "worker_env",
]
