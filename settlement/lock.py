"""One writer at a time: an advisory lock beside the store (`<store>.lock`).

`settle run`, `seal`, `statement` and `verify` take it; a second one waits (saying so on
stderr) and is refused with a clear message after the timeout. The lock dies with its process,
so a `kill -9` never leaves it stuck.
"""

from __future__ import annotations

import fcntl
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from .clock import local_text, now_utc
from .errors import RefusedError

DEFAULT_TIMEOUT = float(os.environ.get("SETTLE_LOCK_TIMEOUT", "600"))


@contextmanager
def store_lock(
    store: Path, timeout: float | None = None, say: Callable[[str], None] | None = None
) -> Iterator[None]:
    """Hold the store's lock for the duration of the block."""
    timeout = DEFAULT_TIMEOUT if timeout is None else timeout
    path = store.with_name(store.name + ".lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + timeout
    told = False
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = os.pread(fd, 500, 0).decode(errors="replace").strip() or "未知进程"
                if time.monotonic() >= deadline:
                    raise RefusedError(
                        f"另一个任务正在使用结算库 {store}（{holder}），等待 {timeout:g} 秒后仍未结束；"
                        "请稍后再试"
                    ) from None
                if not told and say:
                    say(f"另一个任务正在使用结算库（{holder}），等待它结束…")
                    told = True
                time.sleep(0.1)
        os.ftruncate(fd, 0)
        command = " ".join(os.path.basename(a) for a in sys.argv[:3])
        os.pwrite(fd, f"进程 {os.getpid()} {command} 自 {local_text(now_utc())}".encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
