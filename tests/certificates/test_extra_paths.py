"""certificates.extraPaths: explicit files, recursive directories, odd directory members."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from agent.greengrass.root import GreengrassRoot
from agent.report import Status
from agent.x509.files import Problem
from agent.x509.inventory import FileEntry, Role
from agent.x509.results import readable_result
from agent.x509.walk import walk_files
from tests.certificates.conftest import Run, one
from tests.pki import (
    DAY,
    NOW,
    Issued,
    cert_pem,
    ec_key,
    key_pem,
    make_ca,
    make_context,
    make_device_cert,
    rsa_key,
    write,
)


@pytest.fixture
def store(tmp_path: Path, device_ca: Issued) -> Path:
    """A client-device certificate store with everything a real one accumulates."""
    top = tmp_path / "clients"
    write(top / "a.pem", make_device_cert(device_ca, "client-a", key=ec_key()).pem())
    write(
        top / "nested" / "deeper" / "b.crt",
        make_device_cert(device_ca, "client-b", key=ec_key(), not_after=NOW + 5 * DAY).pem(),
    )
    write(
        top / "nested" / "chain.pem",
        cert_pem(make_ca("Intermediate 1").cert, make_ca("Intermediate 2").cert),
    )
    write(
        top / "nested" / "client-a.key", key_pem(rsa_key(1024)), 0o600
    )  # not a certificate: ignored
    write(top / "README.txt", "certificates of the plant's sensors\n")  # ignored
    (top / "link.pem").symlink_to(top / "a.pem")  # a file symlink is followed
    (top / "gone.pem").symlink_to(top / "rotated.pem")  # dangling: reported
    (top / "nested" / "loop").symlink_to(top)  # a directory symlink is not followed
    os.mkfifo(top / "nested" / "pipe")  # special files are ignored, never opened
    with open(top / "nested" / "huge.bin", "wb") as fh:  # big, and no certificate inside
        fh.truncate(5 * 1024**3)
    big_bundle = top / "big-bundle.pem"
    one_cert = make_ca("Big").pem()
    big_bundle.write_bytes(one_cert * (2 * 1024 * 1024 // len(one_cert)))  # 2 MiB of certificates
    return top


def test_directory_is_walked_recursively(gg_root: GreengrassRoot, store: Path, run: Run) -> None:
    results = [
        r
        for r in run(
            make_context(gg_root, {"certificates": {"extraPaths": [str(store)]}}),
            "certificate.readable",
        )
        if r.target.startswith(str(store))
    ]
    by_target = {r.target: r for r in results}
    assert set(by_target) == {
        str(store / p)
        for p in (
            "a.pem",
            "link.pem",
            "gone.pem",
            "big-bundle.pem",
            "nested/chain.pem",
            "nested/deeper/b.crt",
        )
    }
    assert by_target[str(store / "gone.pem")].details["reason"] == "broken_symlink"
    assert by_target[str(store / "big-bundle.pem")].details["reason"] == "too_large"
    assert by_target[str(store / "nested/chain.pem")].details["certificates"] == 2
    assert {r.details["role"] for r in results} == {"extra"}


def test_directory_certificates_get_validity_and_quality(
    gg_root: GreengrassRoot, store: Path, run: Run
) -> None:
    ctx = make_context(gg_root, {"certificates": {"extraPaths": [str(store)]}})
    validity = [r for r in run(ctx, "certificate.validity") if r.target.startswith(str(store))]
    b = one(validity, store / "nested" / "deeper" / "b.crt")
    assert (b.status, b.details["days_left"]) == (Status.CRITICAL, 5)
    assert "'CN=client-b'" in (b.remediation or "")
    chain = [r for r in validity if r.target == str(store / "nested" / "chain.pem")]
    assert sorted(r.details["index"] for r in chain) == [0, 1]
    quality = [r for r in run(ctx, "certificate.key_quality") if r.target.startswith(str(store))]
    assert len(quality) == len(validity) == 5  # a, link, b, chain x2


def test_explicit_non_certificate_file_is_always_reported(
    tmp_path: Path, gg_root: GreengrassRoot, run: Run
) -> None:
    readme = write(tmp_path / "README.txt", "hello\n")
    key = write(tmp_path / "k.pem", key_pem(rsa_key(1024)), 0o600)
    results = run(
        make_context(gg_root, {"certificates": {"extraPaths": [str(readme), str(key)]}}),
        "certificate.readable",
    )
    assert one(results, readme).details["reason"] == "bad_pem"
    assert one(results, key).details["reason"] == "no_certificate_found"


def test_missing_extra_path_is_not_found(tmp_path: Path, gg_root: GreengrassRoot, run: Run) -> None:
    results = run(
        make_context(gg_root, {"certificates": {"extraPaths": [str(tmp_path / "nowhere")]}}),
        "certificate.readable",
    )
    r = one(results, tmp_path / "nowhere")
    assert (r.status, r.details["reason"]) == (Status.CRITICAL, "not_found")
    assert "certificates.extraPaths" in (r.remediation or "")


def test_system_files_listed_again_are_reported_once(gg_root: GreengrassRoot, run: Run) -> None:
    extra = [gg_root.path("certificateFilePath"), str(gg_root.root)]
    results = run(
        make_context(gg_root, {"certificates": {"extraPaths": extra}}), "certificate.readable"
    )
    targets = [r.target for r in results]
    assert len(targets) == len(set(targets))
    assert one(results, gg_root.path("certificateFilePath") or "").details["role"] == "device_cert"
    assert one(results, gg_root.path("rootCaPath") or "").details["role"] == "root_ca"


def test_walk_stops_at_its_file_limit(tmp_path: Path) -> None:
    for i in range(5):
        write(tmp_path / f"{i}.pem", "x")
    found = list(walk_files(str(tmp_path), max_files=3))
    assert [Path(p).name for p, _ in found[:3]] == ["0.pem", "1.pem", "2.pem"]
    last_path, last = found[-1]
    assert isinstance(last, Problem) and last.reason == "too_many_files"
    assert last_path == str(tmp_path)


def test_too_many_files_is_unknown(tmp_path: Path) -> None:
    r = readable_result(
        FileEntry(str(tmp_path), Role.EXTRA, Problem("too_many_files", "holds too many")), True
    )
    assert r.status is Status.UNKNOWN and r.remediation
