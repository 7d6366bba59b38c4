"""Parse once per cycle, cache across cycles by file version, re-judge validity as time moves."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from agent.checks.base import Kept
from agent.checks.certificates import CertificateState, inventory
from agent.greengrass.root import GreengrassRoot
from agent.report import Status
from tests.certificates.conftest import Run, bytes_read, one
from tests.pki import DAY, NOW, Issued, ec_key, make_context, make_device_cert, write


@pytest.fixture
def many(tmp_path: Path, device_ca: Issued) -> Path:
    top = tmp_path / "many"
    key = ec_key()
    for i in range(60):
        leaf = make_device_cert(device_ca, f"c{i}", key=key, not_after=NOW + (20 + i) * DAY)
        write(top / f"c{i:02d}.pem", leaf.pem())
    return top


def _config(many: Path) -> dict[str, Any]:
    return {"certificates": {"extraPaths": [str(many)]}}


def test_all_checks_share_one_parse_per_cycle(
    gg_root: GreengrassRoot, many: Path, run: Run
) -> None:
    before = bytes_read()
    run(make_context(gg_root, _config(many)), "certificate.readable")
    one_check = bytes_read() - before
    before = bytes_read()
    ctx = make_context(gg_root, _config(many))
    run(ctx)
    all_checks = bytes_read() - before
    assert one_check > 60 * 500  # the files were really read
    assert all_checks < one_check * 1.5  # ...and not once per check
    assert inventory(ctx) is inventory(ctx)  # one inventory per cycle


def test_unchanged_files_are_not_read_again(gg_root: GreengrassRoot, many: Path, run: Run) -> None:
    kept = Kept()
    first = make_context(gg_root, _config(many), kept=kept)
    first_results = run(first)
    before = bytes_read()
    second = make_context(gg_root, _config(many), kept=kept)
    second_results = run(second)
    assert bytes_read() - before < 60 * 300  # stat only: no PEM read back
    old = {e.path: e.outcome for e in inventory(first).entries}
    assert all(e.outcome is old[e.path] for e in inventory(second).entries)
    # unchanged results are the very same objects
    reused = sum(a is b for a, b in zip(first_results, second_results, strict=True))
    assert reused >= len(first_results) - 10


def test_rewritten_file_is_parsed_again(
    gg_root: GreengrassRoot, many: Path, device_ca: Issued, run: Run
) -> None:
    kept = Kept()
    target = many / "c00.pem"
    r = one(run(make_context(gg_root, _config(many), kept=kept), "certificate.validity"), target)
    assert r.details["days_left"] == 20
    write(target, make_device_cert(device_ca, "c0", key=ec_key(), not_after=NOW + 3 * DAY).pem())
    r = one(run(make_context(gg_root, _config(many), kept=kept), "certificate.validity"), target)
    assert (r.status, r.details["days_left"]) == (Status.CRITICAL, 3)


def test_chmod_alone_invalidates_the_cached_version(
    gg_root: GreengrassRoot, many: Path, run: Run
) -> None:
    kept = Kept()
    target = str(many / "c01.pem")
    first = make_context(gg_root, _config(many), kept=kept)
    run(first, "certificate.readable")
    mtime = os.stat(target).st_mtime_ns
    os.chmod(target, 0o600)  # changes ctime, not mtime
    assert os.stat(target).st_mtime_ns == mtime
    second = make_context(gg_root, _config(many), kept=kept)
    run(second, "certificate.readable")
    old = {e.path: e.outcome for e in inventory(first).entries}
    new = {e.path: e.outcome for e in inventory(second).entries}
    assert new[target] is not old[target] and new[target] == old[target]


def test_removed_files_leave_the_cache(gg_root: GreengrassRoot, many: Path, run: Run) -> None:
    kept = Kept()
    run(make_context(gg_root, _config(many), kept=kept), "certificate.readable")
    assert (str(many / "c05.pem"), "member") in kept.get(CertificateState).files
    (many / "c05.pem").unlink()
    run(make_context(gg_root, _config(many), kept=kept), "certificate.readable")
    assert (str(many / "c05.pem"), "member") not in kept.get(CertificateState).files
    assert (
        len(kept.get(CertificateState).files) == 59 + 3
    )  # the rest, plus device cert, key and root CA


def test_validity_follows_the_clock_on_cached_facts(
    gg_root: GreengrassRoot, many: Path, run: Run
) -> None:
    kept = Kept()
    target = many / "c59.pem"  # 79 days left at NOW
    r = one(run(make_context(gg_root, _config(many), kept=kept), "certificate.validity"), target)
    assert (r.status, r.details["days_left"]) == (Status.OK, 79)
    later = make_context(gg_root, _config(many), kept=kept, now=NOW + 60 * DAY)
    r = one(run(later, "certificate.validity"), target)
    assert (r.status, r.details["days_left"]) == (Status.WARNING, 19)
    r = one(
        run(
            make_context(gg_root, _config(many), kept=kept, now=NOW + 80 * DAY),
            "certificate.validity",
        ),
        target,
    )
    assert r.details["reason"] == "expired"


def test_thresholds_changed_live_are_applied_to_cached_facts(
    gg_root: GreengrassRoot, many: Path, run: Run
) -> None:
    kept = Kept()
    target = many / "c40.pem"  # 60 days left
    assert (
        one(
            run(make_context(gg_root, _config(many), kept=kept), "certificate.validity"), target
        ).status
        is Status.OK
    )
    stricter = {"certificates": {"extraPaths": [str(many)], "warnDays": 90}}
    assert (
        one(run(make_context(gg_root, stricter, kept=kept), "certificate.validity"), target).status
        is Status.WARNING
    )


def test_privilege_is_part_of_a_reused_verdict(
    tmp_path: Path, gg_root: GreengrassRoot, run: Run
) -> None:
    kept = Kept()
    ok = run(make_context(gg_root, kept=kept, privileged=True), "certificate.readable")
    again = run(make_context(gg_root, kept=kept, privileged=False), "certificate.readable")
    assert [r.status for r in ok] == [r.status for r in again] == [Status.OK] * 3
    assert not any(a is b for a, b in zip(ok, again, strict=True))
