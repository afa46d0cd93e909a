"""Polling a condition: how often, how long, and what comes back when time runs out."""

from __future__ import annotations

import time

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
