"""Running ustui on a real pseudo-terminal, as a user's shell does, then signalling it."""

from __future__ import annotations

import contextlib
import fcntl
import os
import pty
import signal
import struct
import sys
import termios
import threading
import time
from collections.abc import Callable
from pathlib import Path


def signal_on_pty(
    code: str, env: dict[str, str], session: Path, signum: int, cursor: Callable[[Path], str]
) -> int:
    """Run ``python -c code`` on a 160x50 pty, wait for the first file, press j, wait for
    the second, send ``signum``; return the wait status."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: the app on the pty
        os.execve(sys.executable, [sys.executable, "-c", code], env)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 160, 0, 0))
    output = bytearray()

    def drain() -> None:  # the app blocks if nobody reads the terminal
        with contextlib.suppress(OSError):
            while chunk := os.read(fd, 65536):
                output.extend(chunk)

    threading.Thread(target=drain, daemon=True).start()
    try:
        wait_for(lambda: b"IMG1.dcm" in output and cursor(session).endswith("IMG1.dcm"))
        os.write(fd, b"j")
        wait_for(lambda: cursor(session).endswith("IMG2.dcm"))
        os.kill(pid, signum)
        _, status = os.waitpid(pid, 0)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        os.close(fd)
    return status


def wait_for(condition: Callable[[], bool], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.05)
