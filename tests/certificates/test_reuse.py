"""Whole result lists are reused while no file changed and the clock stays inside the window in
which every verdict stands; any change in between is seen, whatever checks ran meanwhile."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from agent.checks.base import Kept
from agent.checks.certificates import CertificateState
from agent.greengrass.root import GreengrassRoot
from agent.report import Status
from tests.certificates.conftest import Run, one
from tests.pki import DAY, NOW, Issued, ec_key, make_context, make_device_cert, write

PER_FILE = ("certificate.readable", "certificate.validity", "certificate.key_quality")


@pytest.fixture
def store(tmp_path: Path, device_ca: Issued) -> Path:
    top = tmp_path / "clients"
    key = ec_key()
    for i in range(12):
        leaf = make_device_cert(device_ca, f"c{i}", key=key, not_after=NOW + (40 + i) * DAY)
        write(top / f"sub{i % 3}" / f"c{i:02d}.pem", leaf.pem())
    return top


def _config(store: Path, **certificates: Any) -> dict[str, Any]:
    return {"certificates": {"extraPaths": [str(store)], **certificates}}


def _lists(run: Run, gg_root: GreengrassRoot, store: Path, kept: Kept, **kw: Any) -> Any:
    ctx = make_context(gg_root, _config(store), kept=kept, **kw)
    return {cid: run(ctx, cid) for cid in PER_FILE}


def test_an_unchanged_cycle_hands_back_the_same_lists(
    gg_root: GreengrassRoot, store: Path, run: Run
) -> None:
    from agent.checks.certificates import CHECKS

    kept = Kept()
    # Day counts change at 18:00 (NOW + whole days) and 00:00 (Amazon Root CA 1's notAfter).
    ctx = make_context(gg_root, _config(store), kept=kept, now=NOW + dt.timedelta(hours=1))
    first = {c.id: c(ctx) for c in CHECKS if c.id in PER_FILE}
    ctx = make_context(gg_root, _config(store), kept=kept, now=NOW + dt.timedelta(hours=5))
    second = {c.id: c(ctx) for c in CHECKS if c.id in PER_FILE}
    assert all(second[cid] is first[cid] for cid in PER_FILE)
    ctx = make_context(gg_root, _config(store), kept=kept, now=NOW + dt.timedelta(hours=7))
    third = {c.id: c(ctx) for c in CHECKS if c.id in PER_FILE}
    assert third["certificate.validity"] is not first["certificate.validity"]  # midnight passed
    assert third["certificate.key_quality"] is first["certificate.key_quality"]
    assert len(first["certificate.validity"]) == 12 + 2  # the clients, device cert, root CA


def test_a_change_is_seen_even_when_the_check_skipped_the_cycle_it_happened_in(
    gg_root: GreengrassRoot, store: Path, device_ca: Issued, run: Run
) -> None:
    kept = Kept()
    target = store / "sub0" / "c00.pem"
    before = one(_lists(run, gg_root, store, kept)["certificate.validity"], target)
    assert before.details["days_left"] == 40
    write(target, make_device_cert(device_ca, "c0", key=ec_key(), not_after=NOW + 2 * DAY).pem())
    # Only certificate.readable runs in the cycle that sees the new file...
    run(make_context(gg_root, _config(store), kept=kept), "certificate.readable")
    # ...and the next cycle, with the same files again, must not take validity's old list.
    after = one(_lists(run, gg_root, store, kept)["certificate.validity"], target)
    assert (after.status, after.details["days_left"]) == (Status.CRITICAL, 2)


def test_validity_is_judged_again_when_a_day_count_changes(
    gg_root: GreengrassRoot, store: Path, run: Run
) -> None:
    kept = Kept()
    target = store / "sub0" / "c00.pem"  # notAfter = NOW + 40 days exactly
    first = _lists(run, gg_root, store, kept)["certificate.validity"]
    assert one(first, target).details["days_left"] == 40
    still = _lists(run, gg_root, store, kept, now=NOW + dt.timedelta(seconds=1))[
        "certificate.validity"
    ]
    assert one(still, target).details["days_left"] == 39  # 39.99999 days left
    later = _lists(run, gg_root, store, kept, now=NOW + 11 * DAY)["certificate.validity"]
    assert one(later, target).status is Status.WARNING  # 29 days < warnDays 30
    earlier = _lists(run, gg_root, store, kept, now=NOW - DAY)["certificate.validity"]
    assert one(earlier, target).details["days_left"] == 41  # the clock stepped back


def test_thresholds_and_privilege_are_part_of_a_reused_list(
    gg_root: GreengrassRoot, store: Path, run: Run
) -> None:
    kept = Kept()
    target = store / "sub0" / "c00.pem"
    privileged = run(make_context(gg_root, _config(store), kept=kept), "certificate.readable")
    strict = make_context(gg_root, _config(store, warnDays=60), kept=kept)
    assert one(run(strict, "certificate.validity"), target).status is Status.WARNING
    unprivileged = make_context(gg_root, _config(store), kept=kept, privileged=False)
    again = run(unprivileged, "certificate.readable")
    assert not any(a is b for a, b in zip(privileged, again, strict=True))


def test_a_file_added_to_a_known_directory_is_read_and_reported(
    gg_root: GreengrassRoot, store: Path, device_ca: Issued, run: Run
) -> None:
    kept = Kept()
    assert len(_lists(run, gg_root, store, kept)["certificate.readable"]) == 12 + 3
    new = write(store / "sub1" / "new.pem", make_device_cert(device_ca, "new").pem())
    found = _lists(run, gg_root, store, kept)
    assert len(found["certificate.readable"]) == 12 + 4
    assert one(found["certificate.key_quality"], new).status is Status.OK
    assert (str(new), "member") in kept.get(CertificateState).files


def test_a_file_replaced_by_a_non_certificate_leaves_the_report(
    gg_root: GreengrassRoot, store: Path, run: Run
) -> None:
    kept = Kept()
    target = store / "sub2" / "c02.pem"
    assert one(_lists(run, gg_root, store, kept)["certificate.readable"], target)
    write(target, "just a note, no certificate in here\n")
    found = _lists(run, gg_root, store, kept)["certificate.readable"]
    assert str(target) not in {r.target for r in found}
    assert len(found) == 12 + 2


def test_a_one_shot_check_keeps_nothing_for_a_next_cycle_and_says_the_same(
    gg_root: GreengrassRoot, store: Path
) -> None:
    # `check` has no next cycle (issue 20): the parsed-file cache and the result memos are not
    # built, which must not change a single result.
    from agent.checks.certificates import CHECKS

    def results(kept: Kept) -> list[Any]:
        ctx = make_context(gg_root, _config(store), kept=kept)
        return [(r.id, r.status, r.target, r.message, r.details) for c in CHECKS for r in c(ctx)]

    running, one_shot = Kept(), Kept(one_shot=True)
    assert results(one_shot) == results(running)
    state = one_shot.get(CertificateState)
    assert state.files is None and state.last_inventory is None
    assert running.get(CertificateState).files
