"""Progress reporting that library code can use without knowing about the terminal.

Long operations take ``progress: Progress | None``; ``None`` is silent (tests, notebooks that don't care).
The CLI passes :class:`RichProgress`, which draws rich bars unless ``--quiet``.
"""

from __future__ import annotations

import contextlib
from typing import Iterable, Iterator, TypeVar

T = TypeVar("T")


class Task:
    """One bar. ``update(advance, info)`` moves it; ``info`` is short text such as the current loss."""

    def update(self, advance: float = 1, info: str = "") -> None:  # noqa: D401 - silent by default
        pass


class Progress:
    """Silent progress: every method is a no-op."""

    @contextlib.contextmanager
    def task(self, description: str, total: float | None) -> Iterator[Task]:
        yield Task()

    def track(self, items: Iterable[T], description: str, total: float | None = None) -> Iterator[T]:
        if total is None and hasattr(items, "__len__"):
            total = len(items)  # type: ignore[arg-type]
        with self.task(description, total) as task:
            for item in items:
                yield item
                task.update(1)


class _RichTask(Task):
    def __init__(self, bar, task_id) -> None:
        self._bar, self._id = bar, task_id

    def update(self, advance: float = 1, info: str = "") -> None:
        self._bar.update(self._id, advance=advance, info=info)


class RichProgress(Progress):
    """Rich progress bars on stderr; pass ``quiet=True`` to draw nothing."""

    def __init__(self, quiet: bool = False) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
        from rich.progress import Progress as _Bar

        from phenoseq.console import err_console

        self._bar = _Bar(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=err_console,
            disable=quiet,
        )

    @contextlib.contextmanager
    def task(self, description: str, total: float | None) -> Iterator[Task]:
        with self._bar:
            task_id = self._bar.add_task(description, total=total, info="")
            yield _RichTask(self._bar, task_id)
            if total is None:  # an open-ended step: show it as done (a counted bar stays where it stopped)
                self._bar.update(task_id, total=1, completed=1)


def get(progress: Progress | None) -> Progress:
    """``progress`` or a silent one."""
    return progress if progress is not None else Progress()
