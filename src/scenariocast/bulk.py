"""Building many objects at once: 100,000 readings, observations, rows of an import.

Python's cyclic garbage collector runs every few hundred allocations and now and then walks
every object alive; building a hundred thousand readings, none of them in a reference cycle,
set it off again and again for a third of the time. :func:`collector_paused` holds it off
while such a batch is built.
"""

from __future__ import annotations

import functools
import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector for the block (if it runs), and resume it after.

    Reference counting still frees every object that is not in a cycle, as always; objects
    in cycles wait until the block ends.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def bulk[**P, R](fn: Callable[P, R]) -> Callable[P, R]:
    """Run ``fn`` with the cyclic garbage collector paused (:func:`collector_paused`)."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with collector_paused():
            return fn(*args, **kwargs)

    return wrapper
