"""The plan cache: a hit only for the same bytes, instance, kernel and code; anything else a miss."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from netlab.model.loader import load
from netlab.plan import cache
from netlab.plan.planner import plan

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "plans"
    monkeypatch.setenv("NETLAB_PLAN_CACHE", str(directory))
    return directory


def entry_of(file: Path, name: str) -> cache.Entry:
    topo, _ = load(file)
    return cache.Entry(name, topo.description, topo.model_dump(mode="json"), plan(topo, name), topo.addressed())


@pytest.fixture
def bridge3(tmp_path: Path) -> Path:
    copy = tmp_path / "bridge3.yaml"
    copy.write_bytes((ROOT / "topologies" / "bridge3.yaml").read_bytes())
    return copy


def test_what_is_put_comes_back_equal(store: Path, bridge3: Path) -> None:
    entry = entry_of(bridge3, "bridge3")
    assert cache.get(bridge3, None) is None
    cache.put(bridge3, None, entry)
    assert cache.get(bridge3, None) == entry
    assert oct(store.stat().st_mode & 0o777) == "0o700"


def test_another_instance_or_an_edited_file_is_a_miss(store: Path, bridge3: Path) -> None:
    cache.put(bridge3, None, entry_of(bridge3, "bridge3"))
    assert cache.get(bridge3, "b") is None
    bridge3.write_text(bridge3.read_text().replace("198.51.100.2/24", "198.51.100.3/24"))
    assert cache.get(bridge3, None) is None


def test_a_corrupt_entry_is_a_miss(store: Path, bridge3: Path) -> None:
    cache.put(bridge3, None, entry_of(bridge3, "bridge3"))
    (only,) = store.iterdir()
    only.write_bytes(only.read_bytes()[:100])
    assert cache.get(bridge3, None) is None


def test_a_directory_others_can_write_is_not_trusted(store: Path, bridge3: Path) -> None:
    cache.put(bridge3, None, entry_of(bridge3, "bridge3"))
    os.chmod(store, 0o777)
    assert cache.get(bridge3, None) is None


def test_off_stores_nothing(tmp_path: Path, bridge3: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NETLAB_PLAN_CACHE", "off")
    cache.put(bridge3, None, entry_of(bridge3, "bridge3"))
    assert cache.get(bridge3, None) is None
    assert not list(tmp_path.glob("**/plans"))


def test_only_the_most_recent_entries_are_kept(store: Path, bridge3: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cache, "KEEP", 3)
    entry = entry_of(bridge3, "bridge3")
    for instance in ("a", "b", "c", "d", "e"):
        cache.put(bridge3, instance, entry)
    assert len(list(store.iterdir())) == 3
    assert cache.get(bridge3, "a") is None and cache.get(bridge3, "e") == entry
