"""Workshop check files load like topologies: every shipped one is valid, and a bad one is a
located error. No root: nothing is run."""

from __future__ import annotations

from pathlib import Path

import pytest

from netlab.errors import NetlabError, TopologyError
from netlab.model.files import resolve
from netlab.workshop.checks import KINDS, load

LABS = Path(__file__).resolve().parents[3] / "labs"
SHIPPED = sorted(p.parent for p in LABS.glob("*/check.yaml"))


def test_there_are_shipped_labs() -> None:
    assert len(SHIPPED) >= 5


@pytest.mark.parametrize("lab", SHIPPED, ids=[p.name for p in SHIPPED])
def test_every_shipped_check_file_loads_and_names_a_real_topology(lab: Path) -> None:
    spec = load(lab)
    assert spec.title and spec.checks
    if spec.topology is None:  # a lab that reads evidence (06): answer checks only
        assert all(check.answer is not None for check in spec.checks)
    else:
        assert resolve(spec.topology).is_file()
    for check in spec.checks:
        assert sum(getattr(check, kind) is not None for kind in KINDS) == 1, check.name


def test_a_check_of_two_kinds_is_refused_at_its_line(tmp_path: Path) -> None:
    (tmp_path / "check.yaml").write_text(
        "title: t\ntopology: bridge3\nchecks:\n  - name: both\n    up: true\n"
        "    sysctl: {node: host, key: net.ipv4.ip_forward, value: '0'}\n"
    )
    with pytest.raises(TopologyError) as info:
        load(tmp_path)
    assert f"{tmp_path / 'check.yaml'}:4:5: check 'both' needs exactly one of" in str(info.value)


def test_an_unknown_key_is_located(tmp_path: Path) -> None:
    (tmp_path / "check.yaml").write_text("title: t\ntopology: bridge3\nchecks:\n  - name: x\n    pingg: {}\n")
    with pytest.raises(TopologyError, match=r"check.yaml:5:5"):
        load(tmp_path)


def test_a_directory_without_checks_says_so(tmp_path: Path) -> None:
    with pytest.raises(NetlabError, match=r"no check\.yaml"):
        load(tmp_path)
