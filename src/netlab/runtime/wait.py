"""Waiting for a condition the kernel will make true: poll it, backing off, for a bounded time.

One loop for every wait of netlab and its tests (links getting carrier, a process starting, a
counter moving), so none sleeps for a fixed time it hopes is enough.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def poll(
    attempt: Callable[[], T], done: Callable[[T], bool], timeout: float, *, first: float = 0.001, most: float = 0.05
) -> T:
    """Call ``attempt`` until ``done`` holds for what it returned, or ``timeout`` seconds have
    passed; return its last answer either way (the caller words a timeout). The pause between
    attempts doubles from ``first`` up to ``most`` seconds."""
    deadline = time.monotonic() + timeout
    pause = first
    while True:
        answer = attempt()
        if done(answer):
            return answer
        left = deadline - time.monotonic()
        if left <= 0:
            return answer
        time.sleep(min(pause, left))
        pause = min(pause * 2, most)


def until(condition: Callable[[], bool], timeout: float, *, most: float = 0.05) -> bool:
    """Poll ``condition`` until it holds (True) or ``timeout`` seconds have passed (False)."""
    return poll(condition, bool, timeout, most=most)
