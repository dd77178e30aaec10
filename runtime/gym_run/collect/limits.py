"""The job's concurrency and the process's open-file limit in, the concurrency that fits out.

Every rollout in flight holds a socket to its endpoint (two when the endpoint is the stand-in in
this process); past `ulimit -n` connections would fail one by one as "cannot reach" errors. The
soft limit is raised towards the hard one when that is enough; otherwise fewer rollouts run at
once, said in one line.
"""

from __future__ import annotations

from collections.abc import Callable

_FILES_BESIDES = 64  # the rollouts file, the cache, the metrics, Python's own


def fit_concurrency(wanted: int, notice: Callable[[str], None]) -> int:
    try:
        import resource
    except ImportError:  # Windows: no such limit to read
        return wanted
    need = 2 * wanted + _FILES_BESIDES
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= need:
        return wanted
    target = need if hard == resource.RLIM_INFINITY else min(need, hard)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    except (ValueError, OSError):
        pass
    if soft >= need:
        return wanted
    fitted = max(1, (soft - _FILES_BESIDES) // 2)
    notice(
        f"gym-run: num_samples_in_parallel={wanted} needs about {need} open files but this "
        f"process may open {soft} (ulimit -n); running {fitted} rollouts at a time"
    )
    return fitted
