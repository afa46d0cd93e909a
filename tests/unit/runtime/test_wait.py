"""Polling a condition: how often, how long, and what comes back when time runs out."""

from __future__ import annotations

import errno
import os
import re
import time
from pathlib import Path

import pytest

from netlab.runtime import wait


def test_poll_returns_the_first_answer_that_is_done() -> None:
    answers = iter([0, 1, 2, 3, 4])
    assert wait.poll(lambda: next(answers), lambda n: n >= 2, 5, first=0.0001) == 2


def test_poll_gives_the_last_answer_when_time_runs_out() -> None:
    started = time.monotonic()
    calls: list[float] = []

    def attempt() -> int:
        calls.append(time.monotonic())
        return len(calls)

    last = wait.poll(attempt, lambda _n: False, 0.2, first=0.01, most=0.04)
    assert last == len(calls) and time.monotonic() - started >= 0.2
    # pauses of 0.01, 0.02, then 0.04 s: at most 8 attempts fit in 0.2 s (fewer on a busy machine)
    assert 2 <= len(calls) <= 8


def test_until_says_whether_the_condition_came_true() -> None:
    deadline = time.monotonic() + 0.05
    assert wait.until(lambda: time.monotonic() >= deadline, 2)
    assert not wait.until(lambda: False, 0.05)


def test_a_transient_errno_is_retried_and_the_last_one_raised_when_time_runs_out() -> None:
    tries: list[int] = []
    between: list[int] = []

    def busy_twice() -> str:
        tries.append(1)
        if len(tries) <= 2:
            raise OSError(errno.EBUSY, "busy")
        return "done"

    assert wait.Patience("x", 1.0).retry(busy_twice, wait.TRANSIENT_BUSY, between=lambda: between.append(1)) == "done"
    assert (len(tries), len(between)) == (3, 2)

    def always(code: int) -> None:
        raise OSError(code, os.strerror(code))

    with pytest.raises(OSError) as busy:
        wait.Patience("x", 0.05, first=0.01, most=0.01).retry(lambda: always(errno.EBUSY), wait.TRANSIENT_BUSY)
    assert busy.value.errno == errno.EBUSY
    started = time.monotonic()
    with pytest.raises(OSError) as other:  # not transient: raised at once
        wait.Patience("x", 5.0).retry(lambda: always(errno.EPERM), wait.TRANSIENT_BUSY)
    assert other.value.errno == errno.EPERM and time.monotonic() - started < 1


def test_every_wait_of_netlab_is_named_with_its_bound_in_one_place() -> None:
    """The policies are module-level Patience values with a what and a finite bound; the code
    outside wait.py neither sleeps in a retry loop of its own nor keeps a timeout constant."""
    named = {k: v for k, v in vars(wait).items() if isinstance(v, wait.Patience)}
    assert len(named) >= 8
    for name, patience in named.items():
        assert patience.what and 0 < patience.timeout < 3600 and patience.first <= patience.most, name
    src = Path(wait.__file__).parents[1]
    for path in src.rglob("*.py"):
        text = path.read_text()
        assert not re.search(r"^(ATTACH|START)_TIMEOUT\s*=", text, re.MULTILINE), path
