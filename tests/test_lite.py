"""Nucleus lite (issue 18): discovery from what lite's Run step gives the agent, ggconfigd's
store read without a write or a lock, ``check``/``run`` on a lite-shaped device
(tests/lite/device.py).
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from agent.greengrass.lite_store import STORE_NAME
from agent.greengrass.root import GreengrassRootError, load_root
from tests.lite.device import build_lite_device, write_store


@pytest.fixture
def lite(tmp_path: Path) -> tuple[Path, Path]:
    return build_lite_device(tmp_path)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    return subprocess.run(
        [sys.executable, "-m", "agent", *args], capture_output=True, text=True, env=env, timeout=60
    )


def test_kernel_root_path_finds_the_store_and_the_yaml(lite: tuple[Path, Path]) -> None:
    """`--greengrass-root {kernel:rootPath}` on lite: the store under it, the YAML beside."""
    config_dir, root = lite
    gg = load_root(root, lite_config_dir=config_dir)
    assert gg.lite and gg.store_path == root / "config.db"
    assert gg.nucleus_name == "aws.greengrass.NucleusLite"
    # Deployed components and their versions exist only in the store.
    assert gg.services["com.example.Telemetry"]["version"] == "1.4.0"
    assert gg.service_configuration("com.example.Debugger")["accessControl"]
    assert gg.path("certificateFilePath") == str(root / "thingCert.crt")


def test_config_dir_follows_root_path_to_the_store(lite: tuple[Path, Path]) -> None:
    config_dir, root = lite
    gg = load_root(config_dir)
    assert gg.root == root and gg.store_path == root / "config.db"
    assert "gghealth.HealthAgent" in gg.services  # from the store, not in config.yaml


def test_store_values_win_over_the_initial_yaml(lite: tuple[Path, Path]) -> None:
    """ggconfigd loads the files with timestamp 2; a deployment's write is newer and wins."""
    config_dir, root = lite
    (config_dir / "config.d" / "20-region.yaml").write_text(
        "services:\n  aws.greengrass.NucleusLite:\n"
        "    configuration:\n      awsRegion: ap-south-1\n"
    )
    assert load_root(root, lite_config_dir=config_dir).region == "eu-west-1"


def test_every_regular_file_of_config_d_counts(tmp_path: Path) -> None:
    """ggconfig_load_dir loads every DT_REG entry, whatever its suffix."""
    (tmp_path / "config.d").mkdir()
    (tmp_path / "config.yaml").write_text("system:\n  thingName: a\n")
    (tmp_path / "config.d" / "thing.conf").write_text("system:\n  thingName: b\n")
    assert load_root(tmp_path).thing_name == "b"


def test_malformed_config_d_fragment_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "config.d").mkdir()
    (tmp_path / "config.yaml").write_text("system:\n  thingName: a\n")
    (tmp_path / "config.d" / "50-bad.yaml").write_text("system: [unclosed\n")
    with pytest.raises(GreengrassRootError, match=r"50-bad\.yaml"):
        load_root(tmp_path)
    (tmp_path / "config.d" / "50-bad.yaml").write_text("- a list\n")
    with pytest.raises(GreengrassRootError, match=r"50-bad\.yaml does not hold a mapping"):
        load_root(tmp_path)


def test_the_store_is_neither_written_nor_locked(lite: tuple[Path, Path]) -> None:
    """Read while ggconfigd holds a write transaction open: no wait, no byte or mtime changed,
    no journal, -wal or -shm beside it."""
    config_dir, root = lite
    store = root / "config.db"
    before = (store.read_bytes(), store.stat().st_mtime_ns)
    writer = sqlite3.connect(store, timeout=0)
    try:
        writer.execute("BEGIN EXCLUSIVE")  # what a reader taking a SHARED lock would wait on
        gg = load_root(root, lite_config_dir=config_dir)
        assert "com.example.Telemetry" in gg.services
    finally:
        writer.rollback()
        writer.close()
    done = _cli("check", "--greengrass-root", str(root), "--only", "subscription")
    assert done.returncode in (0, 1, 2), done.stderr
    assert (store.read_bytes(), store.stat().st_mtime_ns) == before
    assert sorted(p.name for p in root.glob("config.db*")) == ["config.db"]


def test_a_store_that_is_not_sqlite_exits_3_with_a_message(lite: tuple[Path, Path]) -> None:
    _, root = lite
    (root / "config.db").write_text("system:\n  thingName: not-a-database\n")
    done = _cli("check", "--greengrass-root", str(root))
    assert done.returncode == 3
    assert "is not an SQLite database" in done.stderr
    assert "Traceback" not in done.stderr


def _execute(db: Path, statement: str) -> None:
    """One committed SQL statement on a configuration store, as a broken tool would leave it."""
    conn = sqlite3.connect(db)
    conn.execute(statement)
    conn.commit()
    conn.close()


def test_an_sqlite_file_of_another_schema_is_named(tmp_path: Path) -> None:
    _execute(tmp_path / "config.db", "CREATE TABLE other (x)")
    with pytest.raises(GreengrassRootError, match="not a nucleus lite configuration store"):
        load_root(tmp_path, lite_config_dir=tmp_path / "absent")


def test_a_value_that_is_not_json_is_named(tmp_path: Path) -> None:
    write_store(tmp_path / "config.db", {"system": {"thingName": "x"}})
    _execute(tmp_path / "config.db", "UPDATE valueTable SET value = 'not json'")
    with pytest.raises(GreengrassRootError, match="system/thingName is not JSON"):
        load_root(tmp_path, lite_config_dir=tmp_path / "absent")


def test_lite_does_not_interpolate_component_configuration(lite: tuple[Path, Path]) -> None:
    """docs/RECIPE_SUPPORT_CHANGES.md: "Recipe variable interpolation for component
    configuration is not supported"."""
    config_dir, root = lite
    gg = load_root(root, lite_config_dir=config_dir)
    assert gg.interpolates_configuration is False
    nucleus = gg.services["aws.greengrass.NucleusLite"]["configuration"]
    assert "interpolateComponentConfiguration" not in nucleus


def test_check_on_a_lite_device_covers_every_area(lite: tuple[Path, Path]) -> None:
    _, root = lite
    done = _cli("check", "--greengrass-root", str(root), "--format", "json")
    assert done.returncode in (1, 2), done.stderr
    report = json.loads(done.stdout)
    ids = {c["id"] for c in report["checks"]}
    assert {"certificate.validity", "certificate.key_match", "subscription.bridge"} <= ids
    assert "subscription.publish_authorized" in ids
    # The demo's findings survive the lite layout: the 12-day client cert and the '#' bridge.
    assert any(
        c["id"] == "subscription.bridge" and c["target"] == "EverythingUp" for c in report["checks"]
    )
    assert report["thing_name"] == "demo-pi-42"
    # Recipes found under lite's names (<name>-<version>.json); only the bridge, whose recipe
    # the demo device lacks on the Java layout too, is missing.
    missing = {
        c["target"]
        for c in report["checks"]
        if (c.get("details") or {}).get("reason") == "recipe_missing"
    }
    assert missing == {"aws.greengrass.clientdevices.mqtt.Bridge@2.3.2"}


def test_run_once_on_a_lite_device(lite: tuple[Path, Path]) -> None:
    _, root = lite
    done = _cli(
        "run",
        "--greengrass-root",
        str(root),
        "--once",
        "--transport",
        "stdout",
        "--only",
        "certificate,subscription",
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["thing_name"] == "demo-pi-42"
    assert report["status"] in ("WARNING", "CRITICAL")


def test_publish_authorized_follows_lite_s_matcher(lite: tuple[Path, Path]) -> None:
    """On lite a grant through {iot:thingName} is literal text: refused, saying why; '+' is
    granted by ggipcd's MQTT filter matcher (tests/lite/device.py keeps the demo's '+' grant)."""
    config_dir, root = lite
    done = _cli(
        "check", "--greengrass-root", str(root), "--only", "subscription", "--format", "json"
    )
    (own,) = [
        c for c in json.loads(done.stdout)["checks"] if c["id"].endswith("publish_authorized")
    ]
    assert own["status"] == "OK" and "nucleus lite's ggipcd matcher" in own["message"]

    gg = load_root(root, lite_config_dir=config_dir)
    services = json.loads(json.dumps(gg.raw["services"]))
    policy = services["gghealth.HealthAgent"]["configuration"]["accessControl"][
        "aws.greengrass.ipc.mqttproxy"
    ]["gghealth.HealthAgent:mqttproxy:1"]
    policy["resources"] = ["dt/gghealth/{iot:thingName}/health"]
    (root / STORE_NAME).unlink()
    write_store(root / STORE_NAME, {"system": dict(gg.system), "services": services})
    done = _cli(
        "check", "--greengrass-root", str(root), "--only", "subscription", "--format", "json"
    )
    (own,) = [
        c for c in json.loads(done.stdout)["checks"] if c["id"].endswith("publish_authorized")
    ]
    assert own["status"] == "CRITICAL"
    assert own["details"]["reason"] == "thing_name_not_interpolated"
    assert "nucleus lite matches literally" in own["message"]


def test_authorize_answers_with_lite_s_own_matcher(lite: tuple[Path, Path]) -> None:
    """On a lite root `authorize` asks ggipcd's rules, not the Java trie: the demo's '+' grant
    allows the health topic; a '?' in the request is refused by lite's request validation."""
    _, root = lite
    ask = ["authorize", "--greengrass-root", str(root), "--format", "json", "gghealth.HealthAgent",
           "aws.greengrass.ipc.mqttproxy", "aws.greengrass#PublishToIoTCore"]  # fmt: skip
    granted = _cli(*ask, "dt/gghealth/demo-pi-42/health")
    assert granted.returncode == 0, granted.stderr
    answer = json.loads(granted.stdout)
    assert answer["allowed"] is True and answer["why"].startswith("nucleus lite:")
    refused = _cli(*ask, "dt/gghealth/demo?/health")
    assert refused.returncode == 1
    assert json.loads(refused.stdout)["why"].startswith("nucleus lite:")
