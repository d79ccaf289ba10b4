"""A FIFO for tests of code that must not open one: if the code under test does open it
to read, a helper thread opens the other end, so the reader sees end-of-file and the
test fails on its assertions instead of hanging forever."""

from __future__ import annotations

import errno
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def fifo(path: Path) -> Iterator[Path]:
    os.mkfifo(path)
    done = threading.Event()

    def unblock_readers() -> None:
        while not done.wait(0.2):
            try:
                descriptor = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
            except OSError as error:
                if error.errno in (errno.ENXIO, errno.ENOENT):  # no reader (yet), or gone
                    continue
                raise
            os.close(descriptor)

    thread = threading.Thread(target=unblock_readers, daemon=True)
    thread.start()
    try:
        yield path
    finally:
        done.set()
        thread.join()
