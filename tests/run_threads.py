"""Running test bodies on several threads at once (shared by the thread tests)."""

from __future__ import annotations

import threading
from collections.abc import Callable

#: How long a test waits for each thread before it calls the run hung.
JOIN_TIMEOUT = 120.0


def run_threads(targets: list[Callable[[], None]]) -> None:
    """Starts all targets together (a barrier), joins them, and re-raises the first error."""
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(targets))

    def wrap(target: Callable[[], None]) -> Callable[[], None]:
        def body() -> None:
            try:
                barrier.wait()
                target()
            except BaseException as error:
                errors.append(error)

        return body

    threads = [threading.Thread(target=wrap(t)) for t in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(JOIN_TIMEOUT)
    assert not any(thread.is_alive() for thread in threads), "a thread hung (deadlock?)"
    if errors:
        raise errors[0]
