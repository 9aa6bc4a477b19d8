"""Steps that run in the background: one way to start them, one way to wait for them.

`in_background(call, *args)` runs `call` in a thread of its own, in the run's context (the Prefect
flow run and the run's record), so the tasks it calls are steps of this run like any other; the
flow gets a `Future` and takes its result (or its error) where it needs it.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


def in_background(call: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> Future[R]:
    """Start `call(*args, **kwargs)` beside the flow; its result or error comes back through the future."""
    context = contextvars.copy_context()
    future: Future[R] = Future()

    def run() -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            future.set_result(context.run(call, *args, **kwargs))
        except BaseException as exc:  # handed to whoever takes the result
            future.set_exception(exc)

    threading.Thread(target=run, name=f"background-{getattr(call, '__name__', 'step')}", daemon=True).start()
    return future
