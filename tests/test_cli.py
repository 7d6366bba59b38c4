"""The command line as operators and scripts use it: a subprocess, its exit code and output."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from agent.demo import build_demo_root


def cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="module")
def demo_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_demo_root(tmp_path_factory.mktemp("demo"))


def _assert_clean_usage_error(proc: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert proc.returncode == 3, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1  # one paragraph
    for needle in needles:
        assert needle in proc.stderr


def test_check_json_is_one_report_and_exit_code_is_its_status(demo_root: Path) -> None:
    proc = cli(
        "check", "--greengrass-root", str(demo_root), "--only", "certificate", "--format", "json"
    )
    report = json.loads(proc.stdout)  # exactly one JSON document
    jsonschema.validate(report, json.loads(cli("schema").stdout))
    assert report["thing_name"] == "demo-pi-42"
    assert {c["id"].split(".")[0] for c in report["checks"]} == {"certificate"}
    status = report["status"]
    assert proc.returncode == {"OK": 0, "WARNING": 1, "CRITICAL": 2, "UNKNOWN": 3}[status]
    assert status == "CRITICAL"  # the demo's RSA-1024 client certificate
    findings = {(c["id"], Path(c["target"]).name) for c in report["checks"] if c["status"] != "OK"}
    assert ("certificate.key_quality", "legacy-plc.pem.crt") in findings
    assert ("certificate.permissions", "privKey.key") in findings
    assert ("certificate.validity", "camera-07.pem.crt") in findings
    assert all("remediation" in c for c in report["checks"] if c["status"] != "OK")


def test_check_text_groups_by_area_and_ends_with_overall(demo_root: Path) -> None:
    proc = cli("check", "--greengrass-root", str(demo_root), "--only", "certificate")
    lines = proc.stdout.strip().splitlines()
    assert "[certificate]" in lines
    assert lines[-1].startswith("Overall: CRITICAL")
    assert "\033[" not in proc.stdout  # no colour when not a terminal
    first_rows = [line for line in lines if line.startswith("  ") and "certificate." in line]
    assert first_rows[0].split()[0] == "CRITICAL"  # worst first
    fix_line = lines[lines.index(next(x for x in lines if "legacy-plc" in x)) + 1]
    assert "fix:" in fix_line


def test_an_unbuilt_or_empty_area_prints_no_placeholders(demo_root: Path) -> None:
    proc = cli("check", "--greengrass-root", str(demo_root), "--only", "agent", "--format", "json")
    report = json.loads(proc.stdout)
    assert report["checks"] == []
    assert report["status"] == "UNKNOWN" and proc.returncode == 3


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["check", "--only", "certificates"], ["--only", "certificate, subscription"]),
        (["check", "--format", "xml"], ["--format", "xml"]),
        (["run", "--interval", "0"], ["--interval"]),
        (["frobnicate"], ["frobnicate"]),
        ([], ["COMMAND"]),
    ],
)
def test_usage_errors_exit_3_with_one_paragraph(args: list[str], needles: list[str]) -> None:
    _assert_clean_usage_error(cli(*args), *needles)


def test_invalid_config_file_names_the_key(demo_root: Path, tmp_path: Path) -> None:
    bad = tmp_path / "agent.yaml"
    bad.write_text(yaml.safe_dump({"certificates": {"warnDays": -5, "colour": "blue"}}))
    proc = cli("check", "--greengrass-root", str(demo_root), "--config", str(bad))
    _assert_clean_usage_error(proc, "certificates.warnDays", "certificates.colour", str(bad))


def test_missing_greengrass_root_is_exit_3(tmp_path: Path) -> None:
    proc = cli("check", "--greengrass-root", str(tmp_path / "none"))
    _assert_clean_usage_error(proc, "effectiveConfig.yaml", "--greengrass-root")


def _run_once_to_file(root: Path, tmp_path: Path, path: Path) -> subprocess.CompletedProcess[str]:
    cfg = tmp_path / "agent.yaml"
    cfg.write_text(yaml.safe_dump({"file": {"path": str(path)}}))
    return cli("run", "--greengrass-root", str(root), "--config", str(cfg),
               "--transport", "file", "--once", "--only", "certificate")  # fmt: skip


def test_run_once_to_file_writes_the_report(demo_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    proc = _run_once_to_file(demo_root, tmp_path, out)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.read_text())
    assert report["sequence"] == 1 and report["status"] == "CRITICAL"


def test_run_once_undeliverable_exits_4(demo_root: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    assert _run_once_to_file(demo_root, tmp_path, blocker / "report.json").returncode == 4


def test_ipc_transport_outside_greengrass_is_a_config_error(demo_root: Path) -> None:
    proc = cli("run", "--greengrass-root", str(demo_root), "--once")
    _assert_clean_usage_error(proc, "transport 'ipc'", "SVCUID")


def test_demo_runs_and_exits_0(tmp_path: Path) -> None:
    proc = cli("demo", "--dir", str(tmp_path / "gg"))
    assert proc.returncode == 0, proc.stderr
    assert "Overall:" in proc.stdout
    assert "legacy-plc" in proc.stdout
    assert (tmp_path / "gg" / "config" / "effectiveConfig.yaml").is_file()


def test_python_dash_m_and_console_script_agree() -> None:
    from agent import __version__

    proc = cli("--version")
    assert proc.returncode == 0 and __version__ in proc.stdout
