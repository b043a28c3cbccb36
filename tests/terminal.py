"""Run the real CLI on a pseudo-terminal, as an operator at a keyboard would."""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
import time

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class Terminal:
    def __init__(self, *args: str, env: dict | None = None, cwd=None) -> None:
        self.master, slave = pty.openpty()
        full_env = {**os.environ, "COLUMNS": "200", "LINES": "50", "TERM": "xterm", **(env or {})}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ecomsend_cli", *args],
            stdin=slave, stdout=slave, stderr=slave, env=full_env, cwd=cwd, close_fds=True,
        )
        os.close(slave)
        self.seen = ""

    def expect(self, text: str, timeout: float = 15.0) -> str:
        deadline = time.monotonic() + timeout
        while text not in ANSI.sub("", self.seen):
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"did not see {text!r}; screen so far:\n{self.screen}")
            ready, _, _ = select.select([self.master], [], [], left)
            if ready:
                try:
                    chunk = os.read(self.master, 65536)
                except OSError:
                    chunk = b""
                if not chunk:
                    if self.proc.poll() is not None:
                        raise AssertionError(f"exited before {text!r}:\n{self.screen}")
                    continue
                self.seen += chunk.decode("utf-8", "replace")
        return self.screen

    def send(self, line: str) -> None:
        os.write(self.master, (line + "\n").encode())

    @property
    def screen(self) -> str:
        return ANSI.sub("", self.seen)

    def wait(self, timeout: float = 15.0) -> int:
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None and time.monotonic() < deadline:
            ready, _, _ = select.select([self.master], [], [], 0.1)
            if ready:
                try:
                    self.seen += os.read(self.master, 65536).decode("utf-8", "replace")
                except OSError:
                    break
        code = self.proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
        os.close(self.master)
        return code
