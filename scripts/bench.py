#!/usr/bin/env python3
"""``make bench``: the footprint and speed of gg-health-agent, as a Markdown table.

Everything runs here, on loopback: a moto server stands in for S3/STS, a standard device is
built from the demo root (3 certificates, 10 component policies, an MQTT bridge, 3 buckets,
5 artifacts). Medians over several runs; ratios are what we quote, since absolute times vary by
machine. ``--write docs/benchmarks.md`` records the table with the machine it ran on.

    python scripts/bench.py [--runs 5] [--cycles 20] [--write docs/benchmarks.md] [--quick]
    python scripts/bench.py --scale-only --certs 100000   # the 100,000-certificate rows alone
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

AGENT = [sys.executable, "-m", "agent"]
# As the recipe's Run step starts it (recipes/recipe.yaml): isolated, no bytecode writes, INFO
# lines (to stdout under the nucleus).
AGENT_AS_COMPONENT = [sys.executable, "-I", "-B", "-m", "agent", "--log-level", "INFO"]
CLK_TCK = os.sysconf("SC_CLK_TCK")
DD_VENV = REPO / ".bench-venv"


@dataclass
class Row:
    """One line of the table."""

    what: str
    ours: str
    reference: str = ""
    ratio: str = ""
    target: str = ""


def median(samples: list[float]) -> float:
    """The median, the statistic every row quotes."""
    return statistics.median(samples)


def timed(fn: Callable[[], Any], runs: int) -> float:
    """Median wall seconds of ``fn`` over ``runs``."""
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return median(samples)


# -- the standard device ------------------------------------------------------------------


class _TmpFactory:
    """What tests.peers.moto wants from pytest's tmp_path_factory."""

    def __init__(self, base: Path) -> None:
        self.base = base

    def mktemp(self, name: str) -> Path:
        return Path(tempfile.mkdtemp(prefix=name, dir=self.base))


@contextlib.contextmanager
def moto(base: Path) -> Iterator[Any]:
    """A moto server on a free loopback port (no IAM enforcement: speed, not verdicts)."""
    from tests.peers.moto import running_moto

    with running_moto(_TmpFactory(base), enforce_iam=False) as server:  # type: ignore[arg-type]
        yield server


def build_standard_device(root: Path, server: Any) -> dict[str, str]:
    """The SPEC's standard device; returns the environment the agent needs to reach moto."""
    from agent.demo import build_demo_root, recipe_file_name

    build_demo_root(root)
    config_path = root / "config" / "effectiveConfig.yaml"
    config = yaml.safe_load(config_path.read_text())
    services = config["services"]
    agent_cfg = services["gghealth.HealthAgent"]["configuration"]
    agent_cfg["certificates"]["extraPaths"] = []  # 3 certs: device, root CA, fleet CA bundle
    s3 = server.client("s3")
    buckets = ["bench-read", "bench-write", "bench-artifacts"]
    for b in buckets:  # in the demo device's region, as a real fleet's buckets would be
        s3.create_bucket(Bucket=b, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    agent_cfg["s3"] = {
        "buckets": [
            {"name": "bench-read", "access": "read"},
            {"name": "bench-write", "access": "readwrite"},
            {"name": "bench-artifacts", "access": "read"},
        ]
    }
    # 10 component policies in all (2 demo components + the agent + 7 here), 5 artifacts.
    for i in range(7):
        name = f"com.example.Bench{i}"
        policy = {
            "aws.greengrass.ipc.mqttproxy": {
                f"{name}:mqttproxy:1": {
                    "operations": ["aws.greengrass#PublishToIoTCore"],
                    "resources": [f"dt/bench{i}/+/telemetry"],
                }
            }
        }
        services[name] = {
            "componentType": "GENERIC",
            "version": "1.0.0",
            "configuration": {"accessControl": policy},
        }
        artifacts = []
        if i < 5:
            key = f"{name}/1.0.0/app.zip"
            s3.put_object(Bucket="bench-artifacts", Key=key, Body=b"PK\x03\x04 bench")
            artifacts = [{"URI": f"s3://bench-artifacts/{key}"}]
        recipe = {
            "RecipeFormatVersion": "2020-01-25",
            "ComponentName": name,
            "ComponentVersion": "1.0.0",
            "Manifests": [{"Platform": {"os": "linux"}, "Artifacts": artifacts}],
        }
        (root / "packages" / "recipes" / recipe_file_name(name, "1.0.0")).write_text(
            yaml.safe_dump(recipe)
        )
    # The demo's two components point at a bucket that does not exist here: drop their recipes'
    # artifacts from the count by deploying them without recipes being consulted.
    for name in ("com.example.Telemetry", "com.example.Debugger"):
        path = root / "packages" / "recipes" / recipe_file_name(name, services[name]["version"])
        recipe = yaml.safe_load(path.read_text())
        recipe["Manifests"][0]["Artifacts"] = []
        path.write_text(yaml.safe_dump(recipe))
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    return {
        "AWS_ACCESS_KEY_ID": server.admin_key_id,
        "AWS_SECRET_ACCESS_KEY": server.admin_secret,
        "AWS_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": server.url,
    }


@contextlib.contextmanager
def recording(server: Any, key_id: str) -> Iterator[Callable[[], int]]:
    """moto's request recorder: yields a counter of the requests signed with ``key_id``."""
    import json
    import urllib.request

    def call(action: str, method: str = "POST") -> bytes:
        request = urllib.request.Request(
            f"{server.url}/moto-api/recorder/{action}",
            data=b"" if method == "POST" else None,
            method=method,
        )
        with urllib.request.urlopen(request, timeout=10) as resp:
            body: bytes = resp.read()
            return body

    def count() -> int:
        lines = call("download-recording", "GET").decode().splitlines()
        return sum(
            f"Credential={key_id}/" in (json.loads(line)["headers"].get("Authorization") or "")
            for line in lines
            if line.strip()
        )

    call("reset-recording")
    call("start-recording")
    try:
        yield count
    finally:
        call("stop-recording")


def agent_env(extra: dict[str, str]) -> dict[str, str]:
    """A clean environment: no inherited AWS settings, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SVCUID"))}
    env.update(extra)
    return env


# -- measurements -------------------------------------------------------------------------


def bench_startup(runs: int) -> list[Row]:
    """Interpreter alone vs ``gg-health-agent --version`` vs the import of the check path."""
    bare = timed(lambda: subprocess.run([sys.executable, "-c", "pass"], check=True), runs)
    version = timed(
        lambda: subprocess.run([*AGENT, "--version"], check=True, capture_output=True), runs
    )
    imports = timed(
        lambda: subprocess.run(
            [sys.executable, "-c", "import agent.cli, agent.runner, agent.checks.certificates"],
            check=True,
        ),
        runs,
    )
    return [
        Row(
            "start-up: `gg-health-agent --version`",
            f"{version * 1000:.0f} ms",
            f"{bare * 1000:.0f} ms (python -c pass)",
            f"{version / bare:.1f}x",
        ),
        Row(
            "start-up: import of the check path (certificate area)",
            f"{imports * 1000:.0f} ms",
            f"{bare * 1000:.0f} ms",
            f"{imports / bare:.1f}x",
        ),
    ]


def bench_check(root: Path, env: dict[str, str], runs: int) -> list[Row]:
    """One-shot ``check`` of every area on the standard device."""

    def once() -> None:
        proc = subprocess.run(
            [*AGENT, "check", "--greengrass-root", str(root), "--format", "json"],
            env=env,
            capture_output=True,
            text=True,
        )
        if proc.returncode not in (0, 1, 2, 3) or not proc.stdout.startswith("{"):
            raise SystemExit(
                f"check failed ({proc.returncode}): {proc.stderr[-2000:]}{proc.stdout[-3000:]}"
            )

    wall = timed(once, runs)
    return [
        Row(
            "one-shot `check`, standard device, all areas (wall)",
            f"{wall * 1000:.0f} ms",
            target="well under 1 s",
        )
    ]


def _proc_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def _proc_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@dataclass
class Steady:
    """What one long-running agent did: first report, CPU per cycle, RSS, requests counted."""

    first_s: float
    cpu_ms: float
    rss_mb: float
    requests_first: int = 0
    """Requests counted by ``count`` up to the first report."""
    requests_after: int = 0
    """Requests counted after the first report, over all later cycles."""
    cycles_after: int = 0


Arrivals = Callable[[subprocess.Popen[str]], Iterator[None]]
"""Yields once per report the agent process delivers."""


def printed(marker: str) -> Arrivals:
    """Reports printed on the process's standard output (a line holding ``marker``)."""

    def arrivals(proc: subprocess.Popen[str]) -> Iterator[None]:
        assert proc.stdout is not None
        for line in proc.stdout:
            if marker in line:
                yield None

    return arrivals


def published_to(nucleus: Any) -> Arrivals:
    """Reports the agent published through IPC to the nucleus stand-in (its record file)."""

    def arrivals(proc: subprocess.Popen[str]) -> Iterator[None]:
        seen = sum("payload" in r for r in nucleus.records())
        while proc.poll() is None:
            now = sum("payload" in r for r in nucleus.records())
            for _ in range(now - seen):
                yield None
            seen = now
            time.sleep(0.05)  # the bench's own polling; the agent under test does not poll

    return arrivals


def steady_state(
    cmd: list[str],
    env: dict[str, str],
    cycles: int,
    arrivals: Arrivals,
    first_timeout: float = 60,
    count: Callable[[], int] | None = None,
    cwd: Path | None = None,
    read_stdout: bool = True,
) -> Steady:
    """First report, CPU per cycle after two warm-up cycles and RSS of a reporting process.

    CPU is utime + stime of the whole process (exited threads included) between the 3rd and the
    last report; ``count`` (e.g. requests a server received) is read at the first and last.
    """
    start = time.perf_counter()
    proc = subprocess.Popen(
        cmd,
        env=env,
        cwd=cwd,
        # A pipe nobody reads would block the agent once full (the nucleus always reads).
        stdout=subprocess.PIPE if read_stdout else subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        seen = 0
        first = float("nan")
        at_first = 0
        marks: list[tuple[int, float]] = []
        for _ in arrivals(proc):
            seen += 1
            if seen == 1:
                first = time.perf_counter() - start
                at_first = count() if count else 0
            if seen >= 3:  # after two warm-up cycles
                marks.append((seen, _proc_cpu_s(proc.pid)))
            if seen >= cycles + 3:
                break
            if time.perf_counter() - start > first_timeout + cycles * 5:
                break
        if len(marks) < 2:
            raise SystemExit(f"{cmd[:4]}: only {seen} report(s) arrived")
        rss = _proc_rss_mb(proc.pid)
        at_last = count() if count else 0
        (n0, c0), (n1, c1) = marks[0], marks[-1]
        per_cycle = (c1 - c0) / max(1, n1 - n0) * 1000
        return Steady(first, per_cycle, rss, at_first, at_last - at_first, seen - 1)
    finally:
        proc.terminate()
        proc.wait(10)


def recipe_run_env() -> dict[str, str]:
    """The ``Setenv`` of the recipe's Run step: the agent is measured as the nucleus runs it."""
    recipe = yaml.safe_load((REPO / "recipes" / "recipe.yaml").read_text())
    run_step = recipe["Manifests"][0]["Lifecycle"]["Run"]
    return {k: str(v) for k, v in run_step.get("Setenv", {}).items()}


def bench_run(
    root: Path, env: dict[str, str], cycles: int, count: Callable[[], int] | None = None
) -> list[Row]:
    """Steady state of ``run`` beside AWS's Device Defender agent, both at a 1 s interval.

    The agent runs as the nucleus runs it: the recipe's Run environment, IPC to the nucleus
    stand-in (reports published with PublishToIoTCore), the component's work directory.
    """
    from tests.nucleus.process import StandInProcess

    env = {**env, **recipe_run_env()}
    effective = yaml.safe_load((root / "config" / "effectiveConfig.yaml").read_text())
    component = "gghealth.HealthAgent"
    configuration = {
        **effective["services"][component]["configuration"],
        "intervalSeconds": 1,
        "transport": "ipc",
    }
    work = Path(tempfile.mkdtemp(prefix="work-", dir=root.parent))
    nucleus = StandInProcess(
        work / "ipc.socket", "bench-svcuid", work, {component: configuration}, component
    )
    with nucleus:
        run = steady_state(
            [*AGENT_AS_COMPONENT, "run", "--greengrass-root", str(root)],
            {**env, **nucleus.env()},
            cycles,
            published_to(nucleus),
            count=count,
            cwd=work,
            read_stdout=False,
        )

    def printing(*extra: str) -> list[str]:
        return [*AGENT, "run", "--greengrass-root", str(root), "--transport", "stdout",
                "--interval", "1", *extra]  # fmt: skip

    local = steady_state(printing(), env, cycles, printed('"schema_version"'), cwd=work)
    cert = steady_state(
        printing("--only", "certificate"), env, cycles, printed('"schema_version"'), cwd=work
    )
    rows = [
        Row("`run`: first report after start", f"{run.first_s * 1000:.0f} ms", target="<= 1.0 s")
    ]
    dd = device_defender_cmd()
    dd_run = steady_state(dd, agent_env({}), cycles, printed('"report_id"')) if dd else None
    ref_cpu = f"{dd_run.cpu_ms:.1f} ms (Device Defender agent, dry run)" if dd_run else ""
    ref_rss = f"{dd_run.rss_mb:.1f} MB (Device Defender)" if dd_run else ""
    if dd is None:
        ref_cpu = ref_rss = "Device Defender agent: not installable here"
    rows += [
        Row(
            "`run` as a component: CPU per cycle (all areas, files unchanged)",
            f"{run.cpu_ms:.1f} ms",
            ref_cpu,
            f"{run.cpu_ms / dd_run.cpu_ms:.2f}x" if dd_run else "",
            "<= 10 ms",
        ),
        Row(
            "`run` as a component: RSS (all areas)",
            f"{run.rss_mb:.1f} MB",
            ref_rss,
            f"{run.rss_mb / dd_run.rss_mb:.2f}x" if dd_run else "",
            "<= 55 MB",
        ),
        Row(
            "`run --transport stdout` (local debug, all areas): CPU / RSS",
            f"{local.cpu_ms:.1f} ms / {local.rss_mb:.1f} MB",
        ),
        Row(
            "`run --transport stdout --only certificate` (certificates only): CPU / RSS",
            f"{cert.cpu_ms:.1f} ms / {cert.rss_mb:.1f} MB",
            f"{ref_cpu} / {ref_rss}" if dd_run else "",
        ),
    ]
    if count is not None:
        rows.append(
            Row(
                "`run`: S3/STS requests, first cycle / the next "
                f"{run.cycles_after} cycles (`s3.refreshSeconds` 900)",
                f"{run.requests_first} / {run.requests_after}",
            )
        )
    return rows


def device_defender_cmd() -> list[str] | None:
    """AWS's Python Device Defender agent in its own venv, dry run, 1 s interval."""
    py = DD_VENV / "bin" / "python"
    installed = [str(py), "-c", "import AWSIoTDeviceDefenderAgentSDK.agent"]
    if not py.exists() or subprocess.run(installed, capture_output=True).returncode != 0:
        subprocess.run([sys.executable, "-m", "venv", str(DD_VENV)], check=True)
        pip = subprocess.run(
            [str(py), "-m", "pip", "install", "-q", "AWSIoTDeviceDefenderAgentSDK"],
            capture_output=True,
        )
        if pip.returncode != 0:
            print(f"Device Defender agent not installable: {pip.stderr.decode()[-500:]}")
            return None
    return [
        str(py),
        "-m",
        "AWSIoTDeviceDefenderAgentSDK.agent",
        "--dryrun",
        "-f",
        "json",
        "-i",
        "1",
        "-e",
        "unused",
        "-r",
        "unused",
        "-c",
        "unused",
        "-k",
        "unused",
        "-id",
        "bench",
    ]


@dataclass
class CertTree:
    """``count`` client-device certificates, one PEM file each, under ``extraPaths``."""

    root: Path
    """A demo Greengrass root (device certificate, key, root CA)."""
    certs: Path
    config: Path
    """The agent configuration naming ``certs`` in ``certificates.extraPaths``."""
    count: int


def build_cert_tree(base: Path, count: int) -> CertTree:
    """Distinct EC certificates, 500 per directory, as a fleet's client devices have them."""
    from agent.demo import build_demo_root
    from tests.pki import cert_pem, ec_key, make_ca, make_device_cert

    root = build_demo_root(base / "scale")
    certs = root / "fleet-clients"
    ca, key = make_ca("Bench CA", key=ec_key()), ec_key()
    for i in range(count):
        d = certs / f"{i // 500:03d}"
        if i % 500 == 0:
            d.mkdir(parents=True)
        pem = cert_pem(make_device_cert(ca, f"client-{i}", key=key).cert)
        (d / f"client-{i:05d}.pem.crt").write_bytes(pem)
    cfg = base / "scale.yaml"
    cfg.write_text(yaml.safe_dump({"certificates": {"extraPaths": [str(certs)]}}))
    os.sync()  # the files just written are flushed now, not by writeback during the timings
    return CertTree(root, certs, cfg, count)


def openssl_loop(tree: CertTree, sample_size: int = 200) -> float:
    """Seconds per file of what operators write today: a shell loop of ``openssl x509
    -checkend``, timed on ``sample_size`` files spread over every directory (extrapolated:
    the whole loop over 10,000 files takes minutes)."""
    everything = sorted(tree.certs.rglob("*.pem.crt"))
    sample = everything[:: max(1, len(everything) // sample_size)][:sample_size]
    loop = 'for f in "$@"; do openssl x509 -checkend 2592000 -noout -in "$f" >/dev/null; done'
    t0 = time.perf_counter()
    subprocess.run(["sh", "-c", loop, "sh", *map(str, sample)], check=False)
    return (time.perf_counter() - t0) / len(sample)


@dataclass
class ChildRun:
    """One fresh ``gg-health-agent`` process: what its user waits for and what it used."""

    wall_s: float
    peak_rss_mb: float
    """``ru_maxrss`` of the agent process alone (``wait4`` in the launcher), not of the bench."""
    output: bytes


# Linux keeps a process's peak RSS across execve, and a child starts as a copy (or, with
# vfork, a borrower) of its parent's memory: the agent's ru_maxrss would be at least the
# bench's own RSS (100+ MB once it has parsed a few reports). So a small launcher (an
# interpreter without site, ~9 MB) forks the agent and reports the agent's own rusage.
_LAUNCHER = """
import os, sys, time
start = time.perf_counter_ns()
pid = os.fork()
if pid == 0:
    fd = os.open(os.devnull, os.O_WRONLY)
    os.dup2(fd, 2)
    os.execv(sys.argv[2], sys.argv[2:])
_, status, usage = os.wait4(pid, 0)
wall = time.perf_counter_ns() - start
code = os.waitstatus_to_exitcode(status)
os.write(int(sys.argv[1]), b"%d %d %d" % (code, usage.ru_maxrss, wall))
"""


def run_child(cmd: list[str], cwd: Path) -> ChildRun:
    """Run ``cmd`` to completion with its output in a file (as ``> report.json`` would)."""
    read_end, write_end = os.pipe()
    with tempfile.TemporaryFile() as out:
        subprocess.run(
            [sys.executable, "-S", "-c", _LAUNCHER, str(write_end), *cmd],
            stdout=out,
            cwd=cwd,
            pass_fds=(write_end,),  # the launcher's answer: exit status and ru_maxrss
            check=True,
        )
        os.close(write_end)
        with os.fdopen(read_end, "rb") as answer:
            # The wall time is the agent's, fork to exit, without the launcher's start.
            code, maxrss_kib, wall_ns = map(int, answer.read().split())
        out.seek(0)
        data = out.read()
    if code not in (0, 1, 2, 3):
        raise SystemExit(f"{cmd} failed ({code}): {data[-2000:]!r}")
    return ChildRun(wall_ns / 1e9, maxrss_kib / 1024, data)  # ru_maxrss is in KiB on Linux


def bench_scale(tree: CertTree, runs: int, per_file: float) -> list[Row]:
    """In process: the first check of every certificate, and the unchanged re-check."""
    from agent.checks.base import Kept
    from agent.runner import check_once, load_settings

    count = tree.count
    settings = load_settings(tree.root, tree.config)
    firsts, rechecks = [], []
    report = None
    for _ in range(runs):
        # The previous run's kept state and report are freed here, outside the timed calls.
        kept = Kept()
        report = None
        t0 = time.perf_counter()
        report = check_once(settings, ["certificate"], kept=kept)
        firsts.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        again = check_once(settings, ["certificate"], kept=kept)
        rechecks.append(time.perf_counter() - t0)
        del again
    assert report is not None and len(report.checks) > count, "certificates were not all checked"
    first, recheck = median(firsts), median(rechecks)
    openssl_total = per_file * count
    return [
        Row(
            f"{count:,} certificates: first check (in process)",
            f"{first * 1000:.0f} ms",
            f"{openssl_total:.1f} s (openssl x509 -checkend loop, {per_file * 1000:.1f} ms/file)",
            f"{openssl_total / first:.0f}x faster",
        ),
        Row(
            f"{count:,} certificates: unchanged re-check (in process)",
            f"{recheck * 1000:.0f} ms",
            f"{openssl_total:.1f} s",
            f"{openssl_total / recheck:.0f}x faster",
            "< 0.1 s",
        ),
    ]


def bench_cli_scale(tree: CertTree, runs: int, per_file: float) -> list[Row]:
    """``check --only certificate`` as a user runs it: a fresh process, JSON and text.

    Wall time includes the interpreter, the imports and writing the report; the JSON report's
    own ``duration_ms`` (the checks alone) is quoted beside it.
    """
    count = tree.count
    base = [*AGENT, "check", "--greengrass-root", str(tree.root), "--config", str(tree.config),
            "--only", "certificate", "--format"]  # fmt: skip
    json_runs = [run_child([*base, "json"], REPO) for _ in range(runs)]
    text_runs = [run_child([*base, "text"], REPO) for _ in range(runs)]
    last = json.loads(json_runs[-1].output)
    assert len(last["checks"]) > count, "certificates were not all checked"
    cycle_ms = median([json.loads(r.output)["duration_ms"] for r in json_runs])
    openssl_total = per_file * count
    reference = f"{openssl_total:.1f} s (openssl loop, {per_file * 1000:.1f} ms/file)"
    target = "< 1 s; >= 300x" if count <= 10_000 else "< 10 s; < 150 MB"
    rows = []
    for fmt, done in (("json", json_runs), ("text", text_runs)):
        wall = median([r.wall_s for r in done])
        rss = max(r.peak_rss_mb for r in done)
        rows.append(
            Row(
                f"{count:,} certificates: CLI `check --only certificate --format {fmt}` "
                "(fresh process): wall / peak RSS",
                f"{wall * 1000:.0f} ms / {rss:.1f} MB",
                reference,
                f"{openssl_total / wall:.0f}x faster",
                target,
            )
        )
    rows.append(_cached_recheck(tree, runs, last["checks"], openssl_total))
    rows.append(
        Row(
            f"{count:,} certificates: CLI `duration_ms` (the checks alone) / report size",
            f"{cycle_ms:.0f} ms / {len(last['checks']):,} results, "
            f"{len(json_runs[-1].output) / 1e6:.1f} MB JSON",
            reference,
            f"{openssl_total / (cycle_ms / 1000):.0f}x faster",
        )
    )
    return rows


def _cached_recheck(tree: CertTree, runs: int, checks: list[Any], openssl_total: float) -> Row:
    """``check`` of an unchanged device in a new process, as cron or a Nagios plugin runs it,
    with ``certificates.cacheFile`` (written by one run first, not timed)."""
    state = Path(tempfile.mkdtemp(prefix="gghealth-cache-"))  # mode 700: the agent's own
    config = state / "cached.yaml"
    settings = yaml.safe_load(tree.config.read_text())
    settings["certificates"]["cacheFile"] = str(state / "certificates.cache")
    config.write_text(yaml.safe_dump(settings))
    cmd = [*AGENT, "check", "--greengrass-root", str(tree.root), "--config", str(config),
           "--only", "certificate", "--format", "json"]  # fmt: skip
    try:
        run_child(cmd, REPO)
        done = [run_child(cmd, REPO) for _ in range(runs)]
    finally:
        shutil.rmtree(state, ignore_errors=True)
    assert json.loads(done[-1].output)["checks"] == checks, "the cache changed the report"
    wall = median([r.wall_s for r in done])
    return Row(
        f"{tree.count:,} certificates: CLI unchanged re-check with `certificates.cacheFile` "
        "(fresh process, json): wall / peak RSS",
        f"{wall * 1000:.0f} ms / {max(r.peak_rss_mb for r in done):.1f} MB",
        f"{openssl_total:.1f} s (openssl loop)",
        f"{openssl_total / wall:.0f}x faster",
        "< 0.5 s" if tree.count <= 10_000 else "",
    )


def bench_s3_concurrency(server: Any, base: Path, runs: int, n: int = 50) -> list[Row]:
    """HeadObject + GetBucketLocation of 50 artifacts with 1 vs 8 requests in flight."""
    from agent.checks.base import CheckContext
    from agent.checks.s3 import CHECKS
    from agent.config import build_config
    from agent.demo import recipe_file_name
    from agent.greengrass.root import load_root

    s3 = server.client("s3")
    s3.create_bucket(Bucket="bench-many")
    root = base / "many"
    (root / "config").mkdir(parents=True)
    (root / "packages" / "recipes").mkdir(parents=True)
    services: dict[str, Any] = {}
    for i in range(n):
        name, key = f"com.example.Many{i}", f"many/{i}/app.zip"
        s3.put_object(Bucket="bench-many", Key=key, Body=b"x")
        services[name] = {"version": "1.0.0"}
        (root / "packages" / "recipes" / recipe_file_name(name, "1.0.0")).write_text(
            yaml.safe_dump(
                {
                    "ComponentName": name,
                    "ComponentVersion": "1.0.0",
                    "Manifests": [{"Artifacts": [{"URI": f"s3://bench-many/{key}"}]}],
                }
            )
        )
    (root / "config" / "effectiveConfig.yaml").write_text(
        yaml.safe_dump({"system": {"thingName": "bench"}, "services": services})
    )
    gg = load_root(root)
    env = {
        "AWS_ACCESS_KEY_ID": server.admin_key_id,
        "AWS_SECRET_ACCESS_KEY": server.admin_secret,
        "AWS_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": server.url,
        "HOME": str(base),
    }

    def run(concurrency: int) -> float:
        config = build_config({"s3": {"maxConcurrency": concurrency}})

        def once() -> None:
            ctx = CheckContext(config=config, greengrass=gg, env=env)
            results = [r for chk in CHECKS for r in chk(ctx)]
            ok = [r for r in results if r.id == "s3.artifact" and r.status.value == "OK"]
            assert len(ok) == n, [r.message for r in results if r.status.value != "OK"][:3]

        return timed(once, runs)

    serial, concurrent = run(1), run(8)
    return [
        Row(
            f"S3 probes of {n} artifacts: 8 in flight vs serial",
            f"{concurrent * 1000:.0f} ms",
            f"{serial * 1000:.0f} ms (serial)",
            f"{serial / concurrent:.1f}x faster",
        )
    ]


# -- output -------------------------------------------------------------------------------


def machine() -> str:
    """One line naming the machine the figures come from."""
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "unknown CPU",
    )
    return (
        f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}"
    )


def table(rows: list[Row]) -> str:
    """The Markdown table."""
    out = [
        "| measurement | gg-health-agent | reference | ratio | target |",
        "|---|---|---|---|---|",
    ]
    out += [f"| {r.what} | {r.ours} | {r.reference} | {r.ratio} | {r.target} |" for r in rows]
    return "\n".join(out)


def main() -> int:
    """Run every measurement and print (and optionally record) the table."""
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--runs", type=int, default=5, help="repetitions per timing (median)")
    p.add_argument("--cycles", type=int, default=20, help="cycles measured in steady state")
    p.add_argument(
        "--certs", type=int, default=10_000, help="client certificates of the scale rows (100000)"
    )
    p.add_argument(
        "--scale-only",
        action="store_true",
        help="only the certificate scale rows (e.g. with --certs 100000)",
    )
    p.add_argument("--quick", action="store_true", help="3 runs, 8 cycles: a smoke run")
    p.add_argument("--write", type=Path, help="also write the table to this Markdown file")
    args = p.parse_args()
    if args.quick:
        args.runs, args.cycles = 3, 8
    from agent.log import configure

    configure("WARNING", json=True)  # the in-process measurements must not log to stdout
    base = Path(tempfile.mkdtemp(prefix="gghealth-bench-"))
    rows: list[Row] = []
    try:
        if not args.scale_only:
            rows += bench_startup(args.runs)
            with moto(base) as server:
                root = base / "device"
                env = agent_env(build_standard_device(root, server) | {"HOME": str(base)})
                rows += bench_check(root, env, args.runs)
                with recording(server, env["AWS_ACCESS_KEY_ID"]) as count:
                    rows += bench_run(root, env, args.cycles, count)
                rows += bench_s3_concurrency(server, base, args.runs)
        tree = build_cert_tree(base, args.certs)
        # The agent and the openssl loop back to back, so the ratios share the machine's load.
        cli = bench_cli_scale(tree, args.runs, per_file := openssl_loop(tree))
        rows += [*cli, *bench_scale(tree, args.runs, per_file)]
    finally:
        shutil.rmtree(base, ignore_errors=True)
    text = (
        f"Machine: {machine()}  \nMedians of {args.runs} runs; steady state over "
        f"{args.cycles} cycles.\n\n{table(rows)}\n"
    )
    print(text)
    if args.write:
        args.write.parent.mkdir(parents=True, exist_ok=True)
        header = args.write.read_text().split("<!-- bench -->")[0] if args.write.exists() else ""
        args.write.write_text(f"{header}<!-- bench -->\n{text}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
