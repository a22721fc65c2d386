"""Thread counts the benchmark scripts can run, shared by the scripts that set numba's threads.

``numba.set_num_threads(k)`` raises for ``k`` above ``numba.config.NUMBA_NUM_THREADS``, the
pool size fixed when numba starts (``NUMBA_NUM_THREADS=1`` makes it 1, whatever the cores).
The scripts' default thread lists ("1,2") are written for a 2-core machine, so under
``NUMBA_NUM_THREADS=1`` ``bench_ops.py`` failed with "The number of threads must be between
1 and 1" (audit). Each count is capped at that pool size, and the cap is printed, so a table
never claims a thread count it did not run.
"""

from __future__ import annotations

from collections.abc import Iterable


def capped_threads(counts: Iterable[int], *, script: str) -> list[int]:
    """``counts`` with each value capped at numba's pool size, repeats dropped, order kept.

    Parameters
    ----------
    counts : iterable of int
        The thread counts asked for (the script's default or its ``--threads``).
    script : str
        The script's name, for the printed line.

    Returns
    -------
    list of int
        The counts to run, each in ``1..numba.config.NUMBA_NUM_THREADS``. When one was
        capped, a ``#`` line says which, and why, before any table.

    Raises
    ------
    ValueError
        A count below 1, naming it.
    """
    import numba

    limit = int(numba.config.NUMBA_NUM_THREADS)
    asked = [int(k) for k in counts]
    bad = [k for k in asked if k < 1]
    if bad:
        raise ValueError(f"{script}: thread count {bad[0]} is below 1; give counts such as 1,2")
    out = list(dict.fromkeys(min(k, limit) for k in asked))
    over = [k for k in asked if k > limit]
    if over:
        print(f"# {script}: thread count(s) {', '.join(map(str, dict.fromkeys(over)))} capped at {limit}: numba's "
              f"pool has {limit} thread(s) (NUMBA_NUM_THREADS); running {', '.join(map(str, out))}", flush=True)
    return out
