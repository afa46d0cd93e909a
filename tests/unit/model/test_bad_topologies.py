"""Every bad topology in tests/data/bad gives its one expected message, at its place.

Each case is a file whose first lines say what it must produce:

    # expect: <text the error must contain>
    # at: <line>:<column>        (optional: where the first issue must point)
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from netlab.errors import TopologyError
from netlab.model.loader import load

BAD = Path(__file__).resolve().parents[2] / "data" / "bad"
CASES = sorted(BAD.glob("*.yaml"))


def _expectations(path: Path) -> tuple[str, str | None]:
    text = path.read_text()
    expect = re.search(r"^# expect: (.+)$", text, re.M)
    at = re.search(r"^# at: (\d+:\d+)$", text, re.M)
    assert expect, f"{path.name} has no '# expect:' line"
    return expect.group(1), at.group(1) if at else None


def test_there_are_enough_cases() -> None:
    assert len(CASES) >= 30


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_bad_topology(path: Path) -> None:
    expect, at = _expectations(path)
    with pytest.raises(TopologyError) as info:
        load(path)
    message = str(info.value)
    assert expect in message, f"expected {expect!r} in:\n{message}"
    assert str(path) in message, f"the message does not name the file:\n{message}"
    if at:
        matching = [i for i in info.value.issues if expect in i.message or expect in str(i)]
        first = matching[0] if matching else info.value.issues[0]
        assert first.position is not None
        assert f"{first.position.line}:{first.position.column}" == at, str(first)


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_bad_topology_in_a_fresh_process(path: Path) -> None:
    """As a user meets it: `netlab validate FILE` answers within seconds (an alias bomb or deep
    nesting included), exits 2 with the one message, and never shows a traceback."""
    expect, _at = _expectations(path)
    result = subprocess.run(
        [sys.executable, "-m", "netlab", "validate", str(path)], capture_output=True, text=True, timeout=20, check=False
    )
    assert result.returncode == 2, result.stderr
    assert expect in result.stderr and "Traceback" not in result.stderr, result.stderr


def test_a_directory_is_named_as_a_directory(tmp_path: Path) -> None:
    with pytest.raises(TopologyError, match="is a directory, not a topology file"):
        load(str(tmp_path))
