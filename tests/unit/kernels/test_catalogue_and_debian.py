"""The kernel catalogue and Debian package-name resolution, on apt output recorded from the archive."""

from __future__ import annotations

from pathlib import Path

import pytest

from netlab.errors import NetlabError
from netlab.kernels.catalogue import CATALOGUE, RUNNING, lookup
from netlab.kernels.debian import (
    AptRoot,
    depends,
    image_package,
    kernel_packages,
    parse_stanzas,
    release_of,
)
from netlab.kernels.runner import resolve_names

APT = Path(__file__).parents[2] / "data" / "apt"


def test_every_series_has_one_suite_and_names_resolve_both_ways() -> None:
    assert [s.series for s in CATALOGUE] == ["5.10", "6.1", "6.12", "7.2"]
    assert lookup("bookworm").series == "6.1"
    assert lookup("6.12").suite == "trixie"


def test_debians_other_flavours_are_named_series_dash_flavour() -> None:
    cloud = lookup("6.12-cloud")
    assert (cloud.series, cloud.suite, cloud.name, cloud.meta_package) == (
        "6.12",
        "trixie",
        "6.12-cloud",
        "linux-image-cloud-amd64",
    )
    assert lookup("bookworm-rt").name == "6.1-rt" and lookup("6.1").meta_package == "linux-image-amd64"
    assert resolve_names(["6.12-rt", "trixie-rt", "6.12"]) == ["6.12-rt", "6.12"]
    with pytest.raises(NetlabError, match=r"unknown flavour 'arm64'.*cloud, rt"):
        lookup("6.12-arm64")


def test_unknown_kernel_lists_the_known_ones() -> None:
    with pytest.raises(NetlabError, match=r"unknown kernel '6\.2'.*5\.10 \(bullseye\).*'running'"):
        lookup("6.2")


def test_resolve_names_keeps_order_drops_duplicates_and_accepts_running() -> None:
    assert resolve_names(["6.1", "running", "bookworm", "5.10"]) == ["6.1", RUNNING, "5.10"]
    with pytest.raises(NetlabError, match="no kernels given"):
        resolve_names([])


def test_stanzas_join_continuation_lines() -> None:
    text = "Package: a\nDescription: one\n two\n\nPackage: b\nVersion: 1\n"
    assert parse_stanzas(text) == [{"Package": "a", "Description": "one\ntwo"}, {"Package": "b", "Version": "1"}]


def test_depends_takes_the_first_alternative_without_versions() -> None:
    stanza = {"Depends": "dracut | initramfs-tools (>= 0.120), linux-base (>= 4.3~), kmod"}
    assert depends(stanza) == ["dracut", "linux-base", "kmod"]


def test_bookworm_kernel_is_one_image_package() -> None:
    meta, image = parse_stanzas((APT / "bookworm.txt").read_text())
    name = image_package(meta)
    assert name == image["Package"] and name.startswith("linux-image-6.1.0-")
    assert kernel_packages(image) == [name]
    assert release_of(name).startswith("6.1.0-") and release_of(name).endswith("-amd64")


def test_sid_kernel_is_split_into_image_binary_and_modules() -> None:
    meta, image = parse_stanzas((APT / "sid.txt").read_text())
    name = image_package(meta)
    parts = kernel_packages(image)
    release = release_of(name)
    assert release.startswith("7.2.")
    assert parts == [name, f"linux-binary-{release}", f"linux-modules-{release}"]  # not linux-base-*


def test_a_metapackage_without_an_image_is_an_error() -> None:
    with pytest.raises(NetlabError, match="depends on no linux-image"):
        image_package({"Version": "1", "Depends": "linux-base-amd64"})
    with pytest.raises(NetlabError, match="not a kernel package name"):
        release_of("linux-headers-6.1.0-50-amd64")


def test_private_apt_root_never_points_at_the_hosts_state(tmp_path: Path) -> None:
    apt = AptRoot(lookup("6.1"), tmp_path)
    options = apt._options()
    values = [o.split("=", 1)[1] for o in options if "=" in o and o.startswith("Dir::")]
    paths = [v for v in values if v.startswith("/")]
    assert paths and all(v.startswith(str(tmp_path)) for v in paths)
    apt.prepare()
    assert "bookworm main" in (apt.dir / "sources.list").read_text()
