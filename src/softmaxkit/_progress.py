"""A progress bar for long loops (training epochs, CLI batches), built on rich.

One helper serves every caller: :func:`progress` returns a context manager
whose tracker is advanced once per step with optional named statistics
(``loss=0.123``) that are shown next to the bar. When ``enabled`` is false the
tracker is a no-op, so loops call ``tracker.advance(...)`` unconditionally
instead of branching on ``verbose`` everywhere.

rich is imported only when a bar is actually shown, so a silent fit costs no
import. Output goes to stderr (rich resolves ``sys.stderr`` at write time,
so pytest's ``capsys`` sees it); on a non-terminal stream rich prints the
final state of the bar once, when the loop ends.
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator


def _format_stat(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


class ProgressTracker:
    """Handle yielded by :func:`progress`; ``advance`` once per step."""

    def __init__(self, bar: Any = None, task: Any = None) -> None:
        self._bar = bar
        self._task = task

    def advance(self, steps: int = 1, **stats: Any) -> None:
        """Move ``steps`` forward and show ``stats`` (name -> value) beside the bar."""
        if self._bar is None:
            return
        text = "  ".join(f"{k} {_format_stat(v)}" for k, v in stats.items())
        self._bar.update(self._task, advance=steps, stats=text)

    def finish(self, **stats: Any) -> None:
        """Mark the task complete (a loop that stops early still shows a full bar)."""
        if self._bar is None:
            return
        total = self._bar.tasks[0].total
        text = "  ".join(f"{k} {_format_stat(v)}" for k, v in stats.items())
        update = {"stats": text} if stats else {}
        self._bar.update(self._task, completed=total, **update)


@contextlib.contextmanager
def progress(
    total: int | None, *, description: str = "", enabled: bool = True, transient: bool = False
) -> Iterator[ProgressTracker]:
    """Show a rich progress bar for ``total`` steps while the block runs.

    Parameters
    ----------
    total : int or None
        Number of steps (None: unknown, the bar pulses).
    description : str, keyword-only
        Label on the left of the bar.
    enabled : bool, keyword-only
        False gives a tracker that does nothing (and imports nothing).
    transient : bool, keyword-only
        Remove the bar from a terminal when done.

    Yields
    ------
    ProgressTracker

    Examples
    --------
    >>> with progress(3, description="demo", enabled=False) as bar:
    ...     for i in range(3):
    ...         bar.advance(loss=1.0 / (i + 1))
    """
    if not enabled:
        yield ProgressTracker()
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    bar = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[stats]}"),
        console=Console(stderr=True),
        transient=transient,
    )
    with bar:
        task = bar.add_task(description, total=total, stats="")
        yield ProgressTracker(bar, task)
