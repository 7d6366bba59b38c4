"""``certificates.cacheFile``: a check in a new process re-reads only what changed, and the file
is trusted only when nobody else could have written it, for this agent and configuration."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from agent.checks.base import Kept
from agent.greengrass.root import GreengrassRoot
from agent.report import Status
from agent.safe_write import OWN_CACHE
from agent.x509 import disk_cache
from agent.x509.parse import PemCertificates
from tests.certificates.conftest import Run, bytes_read, one
from tests.conftest import log_events
from tests.pki import DAY, NOW, Issued, ec_key, make_context, make_device_cert, write

COUNT = 40


@pytest.fixture
def fleet(tmp_path: Path, device_ca: Issued) -> Path:
    top = tmp_path / "fleet"
    key = ec_key()
    for i in range(COUNT):
        leaf = make_device_cert(device_ca, f"c{i}", key=key, not_after=NOW + (40 + i) * DAY)
        write(top / f"c{i:02d}.pem", leaf.pem())
    write(top / "README.txt", b"client certificates, one per device\n")  # holds none
    return top


@pytest.fixture
def store(tmp_path: Path) -> Path:
    home = tmp_path / "state"
    home.mkdir(mode=0o700)
    return home / "certificates.cache"


def _config(fleet: Path, store: Path, **certificates: Any) -> dict[str, Any]:
    return {"certificates": {"extraPaths": [str(fleet)], "cacheFile": str(store), **certificates}}


def _process(gg_root: GreengrassRoot, config: dict[str, Any], run: Run) -> list[Any]:
    """One ``check`` as a new process runs it: nothing kept from an earlier one."""
    return run(make_context(gg_root, config, kept=Kept(one_shot=True)))


def _header(store: Path) -> dict[str, Any]:
    return json.loads(store.read_bytes().splitlines()[0])  # type: ignore[no-any-return]


def _lines(store: Path) -> list[Any]:
    """The stored entries, one JSON line per file after the header."""
    return [json.loads(line) for line in store.read_bytes().splitlines()[1:]]


def _validity(results: list[Any], target: Path) -> Any:
    return one([r for r in results if r.id == "certificate.validity"], target)


def _forge_expiry(store: Path, target: Path, days: int) -> None:
    """Rewrite the stored facts of ``target`` (as the agent's own user could) to expire in
    ``days``: if a check then says so, it took the verdict from the file."""
    fingerprint = _header(store)["fingerprint"]
    entries = disk_cache.load(store, fingerprint)
    key = (str(target), "member")
    stamp, pem, _ = entries[key]
    cert = pem.certs[0]
    forged = replace(cert, not_after=NOW.timestamp() + days * DAY.total_seconds() + 60)
    entries[key] = (stamp, PemCertificates((forged,)), None)
    disk_cache.save(store, fingerprint, entries)


def test_a_new_process_reads_no_unchanged_certificate(
    gg_root: GreengrassRoot, fleet: Path, store: Path, run: Run
) -> None:
    config = _config(fleet, store)
    without = run(make_context(gg_root, {"certificates": {"extraPaths": [str(fleet)]}}))
    first = _process(gg_root, config, run)
    assert store.read_bytes().startswith(OWN_CACHE)
    assert store.stat().st_mode & 0o777 == 0o600
    before = bytes_read()
    second = _process(gg_root, config, run)
    read = bytes_read() - before
    # The cache and the device certificate (its objects are needed for path validation) are
    # read; the 40 fleet certificates, the key and the root CA are not.
    device_cert = Path(gg_root.path("certificateFilePath") or "")
    assert read - store.stat().st_size < device_cert.stat().st_size * 3
    assert [r.to_dict() for r in second] == [r.to_dict() for r in first]
    assert [r.to_dict() for r in first] == [r.to_dict() for r in without]


def test_the_stored_facts_are_what_the_checks_judge(
    gg_root: GreengrassRoot, fleet: Path, store: Path, run: Run
) -> None:
    config = _config(fleet, store)
    _process(gg_root, config, run)
    target = fleet / "c05.pem"
    _forge_expiry(store, target, days=3)
    r = _validity(_process(gg_root, config, run), target)  # made from the stored facts
    assert r.status is Status.CRITICAL and r.details["days_left"] == 3


def test_a_changed_or_removed_file_is_read_again_and_the_file_follows(
    gg_root: GreengrassRoot, fleet: Path, store: Path, run: Run, device_ca: Issued
) -> None:
    config = _config(fleet, store)
    _process(gg_root, config, run)
    _forge_expiry(store, fleet / "c07.pem", days=3)
    _forge_expiry(store, fleet / "c08.pem", days=3)
    renewed = make_device_cert(device_ca, "c07", key=ec_key(), not_after=NOW + 20 * DAY)
    (fleet / "c07.pem").write_bytes(renewed.pem())  # a new version: the forged entry is stale
    (fleet / "c09.pem").unlink()
    results = _process(gg_root, config, run)
    changed = [
        r for r in results if r.id == "certificate.validity" and r.target.endswith("c07.pem")
    ]
    assert [r.details["days_left"] for r in changed] == [20]
    assert _validity(results, fleet / "c08.pem").details["days_left"] == 3  # still stored
    stored = _lines(store)
    assert str(fleet / "c09.pem") not in {entry[0] for entry in stored}
    assert len(stored) == COUNT + 1 - 1 + 2  # the fleet, its README, minus c09; key, root CA


def test_another_configuration_or_agent_version_never_uses_it(
    gg_root: GreengrassRoot, fleet: Path, store: Path, run: Run, log_lines: io.StringIO
) -> None:
    config = _config(fleet, store)
    _process(gg_root, config, run)
    target = fleet / "c05.pem"
    _forge_expiry(store, target, days=3)
    other = _config(fleet, store, warnDays=20)
    r = _validity(_process(gg_root, other, run), target)
    assert r.status is Status.OK and r.details["days_left"] == 45  # read from the file
    assert "another agent version or configuration" in log_events(log_lines)[0]["reason"]
    # ...and rewritten for the new configuration, then used by the next process.
    assert _header(store)["fingerprint"] != disk_cache.fingerprint("x")
    before = bytes_read()
    _process(gg_root, other, run)
    assert bytes_read() - before - store.stat().st_size < 5_000
    # A file written for another agent version (its fingerprint) is not this one's.
    fingerprint = _header(store)["fingerprint"]
    entries = disk_cache.load(store, fingerprint)
    disk_cache.save(store, "written-by-gg-health-agent-0.0.9", entries)
    with pytest.raises(disk_cache.CacheUnusable, match="another agent version"):
        disk_cache.load(store, fingerprint)


def _loosen(store: Path, how: str) -> None:
    if how == "group-writable":
        store.chmod(0o620)
    elif how == "foreign owner":
        os.chown(store, 65534, 65534)
    elif how == "world-writable directory":
        store.parent.chmod(0o777)
    elif how == "symlink":
        real = store.with_name("elsewhere")
        store.rename(real)
        store.symlink_to(real)
    elif how == "hard link":
        os.link(store, store.with_name("second-name"))


@pytest.mark.parametrize(
    ("how", "why"),
    [
        ("group-writable", "writable by other users"),
        ("foreign owner", "belongs to another user"),
        ("world-writable directory", "writable by every user"),
        ("symlink", "symbolic link"),
        ("hard link", "hard links"),
    ],
)
def test_a_file_someone_else_could_have_written_is_never_trusted(
    gg_root: GreengrassRoot,
    fleet: Path,
    store: Path,
    run: Run,
    log_lines: io.StringIO,
    how: str,
    why: str,
) -> None:
    config = _config(fleet, store)
    _process(gg_root, config, run)
    target = fleet / "c05.pem"
    _forge_expiry(store, target, days=3)
    _loosen(store, how)
    r = _validity(_process(gg_root, config, run), target)
    assert r.status is Status.OK and r.details["days_left"] == 45  # the forgery was ignored
    unused = [e for e in log_events(log_lines) if e["event"] == "certificate_cache_unused"]
    assert len(unused) == 1 and why in unused[0]["reason"], log_events(log_lines)


_HEAD = OWN_CACHE + b'1,"fingerprint":"F"}\n'


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b"", "header is cut short"),
        (OWN_CACHE + b'1,"fingerprint":"', "header is cut short"),
        (OWN_CACHE + b'1,"x":' + b"[" * 200_000 + b"\n", "header is not JSON"),  # recursion
        (b'{"schema_version":1}\n', "not a cache of this format"),  # a report at the path
        (b"root:x:0:0::/root:/bin/sh\n", "not the agent's output"),
        (_HEAD + b'["p","member",1,2,3,4,5,["ignored"]]', "entry 0 is cut short"),
        (_HEAD + b"[" * (5 << 20) + b"\n", "entry 0 is cut short or too long"),
        (_HEAD + b'["p","member",1,2,3,4,"5",["ignored"]]\n', "entry 0"),  # a stamp
        (_HEAD + b'["p","member",1,2,3,4,5,["certs",[1]]]\n', "entry 0"),
        (_HEAD + b'["p","key",1,2,3,4,5,["key","RSA",2048,"zz"]]\n', "entry 0"),  # hex
        (_HEAD + b'["p","cert+objects",1,2,3,4,5,["ignored"]]\n', "entry 0"),  # a kind
        (_HEAD + b'["p","member",1,2,3,4,5,["ignored"]]\n{}\n', "entry 1"),
        (_HEAD + b"7\n", "entry 0"),
    ],
)
def test_a_damaged_file_is_said_and_rebuilt_never_a_crash(
    store: Path, content: bytes, why: str
) -> None:
    store.write_bytes(content.replace(b'"F"', json.dumps(disk_cache.fingerprint()).encode()))
    store.chmod(0o600)
    with pytest.raises(disk_cache.CacheUnusable, match=why):
        disk_cache.load(store, disk_cache.fingerprint())


def test_a_damaged_or_unwritable_cache_leaves_the_check_whole(
    gg_root: GreengrassRoot, fleet: Path, store: Path, run: Run, log_lines: io.StringIO
) -> None:
    config = _config(fleet, store)
    reference = _process(gg_root, config, run)
    store.write_bytes(store.read_bytes()[:5000])  # cut short, as a full disk would leave it
    assert [r.to_dict() for r in _process(gg_root, config, run)] == [r.to_dict() for r in reference]
    assert _lines(store)  # rebuilt whole
    os.mkfifo(store.with_name("fifo"))
    fifo = _config(fleet, store.with_name("fifo"))
    assert [r.to_dict() for r in _process(gg_root, fifo, run)] == [r.to_dict() for r in reference]
    events = [e["event"] for e in log_events(log_lines)]
    assert events == [
        "certificate_cache_unused",
        "certificate_cache_unused",  # a FIFO is neither read (no hang) nor written
        "certificate_cache_not_saved",
    ]


def test_a_running_agent_writes_it_only_when_something_changed(
    gg_root: GreengrassRoot, fleet: Path, store: Path, run: Run, device_ca: Issued
) -> None:
    config = _config(fleet, store)
    kept = Kept()
    run(make_context(gg_root, config, kept=kept))
    written = store.stat().st_mtime_ns, store.stat().st_ino
    run(make_context(gg_root, config, kept=kept))
    assert (store.stat().st_mtime_ns, store.stat().st_ino) == written
    write(fleet / "new.pem", make_device_cert(device_ca, "new", key=ec_key()).pem())
    run(make_context(gg_root, config, kept=kept))
    assert str(fleet / "new.pem") in {e[0] for e in _lines(store)}


def test_the_cli_check_of_an_unchanged_device_gives_the_same_report(
    gg_root: GreengrassRoot, fleet: Path, store: Path, tmp_path: Path
) -> None:
    config = tmp_path / "agent.json"
    config.write_text(json.dumps(_config(fleet, store)))
    argv = [sys.executable, "-m", "agent", "check", "--greengrass-root", str(gg_root.root),
            "--config", str(config), "--only", "certificate", "--format", "json"]  # fmt: skip
    reports = [json.loads(subprocess.run(argv, capture_output=True, check=False).stdout)]
    assert store.exists()
    reports.append(json.loads(subprocess.run(argv, capture_output=True, check=False).stdout))
    first, second = ({k: v for k, v in r.items() if k not in ("generated_at", "duration_ms")}
                     for r in reports)  # fmt: skip
    assert first == second and len(first["checks"]) > 3 * COUNT
