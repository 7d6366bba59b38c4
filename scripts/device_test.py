#!/usr/bin/env python3
"""Play the Greengrass nucleus for the packaged aarch64 component on an emulated device.

``make package`` says what a device gets: a recipe with one manifest per platform, each naming
its zip. This runner reads that recipe as a nucleus on a 64-bit Raspberry Pi OS Trixie would:
it picks the manifest that matches linux/aarch64, checks and unarchives the artifact that
manifest names, resolves the recipe variables and runs Install and then Run with ``sh -c`` as
root, inside Debian's arm64 trixie userland (Python 3.13) under qemu
(scripts/device_userland.py). Run talks to the nucleus stand-in (tests/nucleus/standin.py),
which runs on the host and serves IPC on a Unix socket bound into the userland. Success is a
health report published on ``dt/gghealth/<thing>/health`` and exit 0 on SIGTERM.

What the native lifecycle test (tests/test_lifecycle.py) cannot show, this does: that the
wheels bundled for aarch64 install offline on the device's Python and import there.

Isolation: each run sees the cached userland through an overlay (the cache is never written),
in a network namespace of its own with only loopback (no network during Install or Run). Both
need root, as ``make device-test`` is run.

    python scripts/device_test.py [--build greengrass-build] [--cache DIR] [--keep]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from agent.demo import THING, build_demo_root  # noqa: E402
from scripts.device_userland import (  # noqa: E402
    CACHE_ENV,
    DEFAULT_CACHE,
    HOST_PACKAGES,
    UserlandError,
    UserlandSpec,
    cache_dir,
    ensure,
    enter_command,
    guest_env,
    probe,
    require_host_tools,
)
from tests.nucleus import player  # noqa: E402
from tests.nucleus.player import (  # noqa: E402
    DEFAULT_INSTALL_TIMEOUT,
    Component,
    RecipeError,
    Step,
    select_manifest,  # noqa: F401 - the nucleus's choice, which tests/device checks through here
)
from tests.nucleus.standin import NucleusStandIn, Publish  # noqa: E402

DEVICE_PLATFORM = {"os": "linux", "architecture": "aarch64"}
"""The platform attributes the nucleus reports on a 64-bit Raspberry Pi OS."""
GGC_VERSION = "2.14.3"
REGION = "eu-west-1"
REPORT_TIMEOUT = 600.0
"""How long Run may take to publish its first report under emulation (seconds)."""
NUCLEUS_STOP_GRACE = 5.0
"""The nucleus kills a component 5 s after SIGTERM (agent/service.py)."""
STOP_GRACE = 60.0
"""How long Run may take to exit after SIGTERM here: emulation is several times slower than a
device, so past :data:`NUCLEUS_STOP_GRACE` is a warning, past this a failure."""


class DeviceTestError(Exception):
    """An expected failure; its message is the one paragraph printed, without a traceback."""


def progress(started: float, message: str) -> None:
    """One progress line, with the seconds since the run started."""
    print(f"[{time.monotonic() - started:7.1f}s] {message}", flush=True)


# -- the recipe (tests/nucleus/player.py) ---------------------------------------------------


@contextlib.contextmanager
def refused() -> Iterator[None]:
    """What the nucleus would refuse (:class:`RecipeError`), as an expected failure here."""
    try:
        yield
    except RecipeError as exc:
        raise DeviceTestError(str(exc)) from None


def load_component(build: Path) -> Component:
    """The one recipe under ``build/recipes`` and its manifest for :data:`DEVICE_PLATFORM`."""
    with refused():
        return Component.load(build, DEVICE_PLATFORM)


def resolve(script: str, variables: Mapping[str, str]) -> str:
    """``script`` with the recipe variables substituted (tests/nucleus/player.py)."""
    with refused():
        return player.resolve(script, variables)


def lay_out_artifacts(component: Component, root: Path) -> dict[str, str]:
    """The manifest's artifacts laid out under the Greengrass ``root`` as the nucleus does
    (tests/nucleus/player.py), and the recipe variables that point there."""
    with refused():
        return component.lay_out(root, THING)


# -- the emulated device --------------------------------------------------------------------


@dataclass(frozen=True)
class Device:
    """The cached userland seen through an overlay in ``scratch`` (the cache is never
    written), with the host directory ``shared`` (Greengrass root, IPC socket) bound in at
    the same path; no network but loopback (:func:`enter_command`)."""

    lower: Path
    scratch: Path
    shared: Path

    def command(self, argv: Sequence[str], cwd: str) -> list[str]:
        """The host command running ``argv`` as root on the device, in ``cwd``."""
        return enter_command(self.lower, argv, overlay=self.scratch, binds=[self.shared], cwd=cwd)


def _start(command: Sequence[str], env: Mapping[str, str], log: IO[str]) -> subprocess.Popen[bytes]:
    # A session of its own: a timeout ends the step and everything it started at once.
    return subprocess.Popen(
        command, env=dict(env), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )


def _kill(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid``, found through /proc."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        children = parents.get(todo.pop(), [])
        found += children
        todo += children
    return found


def _tail(path: Path, limit: int = 3000) -> str:
    text = path.read_text(errors="replace").strip()
    return text[-limit:] if text else "(no output)"


# -- the nucleus's part ---------------------------------------------------------------------


def component_env(nucleus: NucleusStandIn, root: Path) -> dict[str, str]:
    """What the nucleus puts in every lifecycle step's environment; AWS calls are kept on a
    closed loopback port with static keys (the test has no network anyway)."""
    return guest_env(
        {
            "AWS_IOT_THING_NAME": THING,
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "GGC_VERSION": GGC_VERSION,
            "GG_ROOT_CA_PATH": str(root / "rootCA.pem"),
            "AWS_ACCESS_KEY_ID": "AKIDDEVICETEST",
            "AWS_SECRET_ACCESS_KEY": "device-test-secret",
            "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
            **nucleus.env(),
        }
    )


def step_command(
    device: Device, component: Component, step: str, variables: Mapping[str, str]
) -> tuple[list[str], Step]:
    """The host command running ``step``'s resolved script on the device in the work
    directory, and the step (its Setenv and Timeout)."""
    with refused():
        definition = component.step(step)
    script = resolve(definition.script, variables)
    return device.command(["sh", "-c", script], variables["work:path"]), definition


def run_install(
    device: Device, component: Component, variables: Mapping[str, str], env: Mapping[str, str]
) -> float:
    """Run Install to completion within its Timeout; return its duration."""
    command, step = step_command(device, component, "Install", variables)
    timeout = step.timeout or DEFAULT_INSTALL_TIMEOUT
    log_path = device.scratch / "install.log"
    started = time.monotonic()
    with open(log_path, "w") as log:
        process = _start(command, {**env, **step.setenv}, log)
        try:
            code = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill(process)
            raise DeviceTestError(
                f"Install did not finish within its Timeout of {timeout:.0f}s under emulation; "
                f"the nucleus would have failed the deployment. Output: {_tail(log_path)}"
            ) from None
    if code != 0:
        raise DeviceTestError(f"Install exited {code}: {_tail(log_path)}")
    return time.monotonic() - started


@dataclass(frozen=True)
class RunOutcome:
    """What Run did: when it reported, what, and how it stopped."""

    seconds_to_report: float
    report: dict[str, Any]
    states: list[str]
    seconds_to_stop: float
    exit_code: int


def run_component(
    device: Device,
    component: Component,
    variables: Mapping[str, str],
    env: Mapping[str, str],
    nucleus: NucleusStandIn,
) -> RunOutcome:
    """Start Run, wait for its first health report, stop it with SIGTERM as the nucleus does."""
    command, step = step_command(device, component, "Run", variables)
    log_path = device.scratch / "run.log"
    topic = f"dt/gghealth/{THING}/health"
    started = time.monotonic()
    with open(log_path, "w") as log:
        process = _start(command, {**env, **step.setenv}, log)

        def first_report() -> Publish | None:
            return next((p for p in nucleus.publishes if p.topic == topic), None)

        try:
            # Woken by every publish; a Run that dies early is noticed at the next one or at
            # the timeout, and its exit is reported instead of a missing report.
            nucleus.wait_for(
                lambda: first_report() is not None or process.poll() is not None, REPORT_TIMEOUT
            )
            publish = first_report()
            if publish is None:
                code = process.poll()
                why = f"published nothing on {topic} within {REPORT_TIMEOUT:.0f}s"
                raise DeviceTestError(
                    f"Run {why if code is None else f'exited {code}'}: {_tail(log_path)}"
                )
            to_report = time.monotonic() - started
            stopping = time.monotonic()
            # The nucleus signals the component's process and every process it started.
            for pid in [process.pid, *_descendants(process.pid)]:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
            try:
                code = process.wait(timeout=STOP_GRACE)
            except subprocess.TimeoutExpired:
                raise DeviceTestError(
                    f"Run did not exit within {STOP_GRACE:.0f}s of SIGTERM: {_tail(log_path)}"
                ) from None
        finally:
            if process.poll() is None:
                _kill(process)
    outcome = RunOutcome(
        seconds_to_report=to_report,
        report=json.loads(publish.payload),
        states=nucleus.states,
        seconds_to_stop=time.monotonic() - stopping,
        exit_code=code,
    )
    if code != 0:
        raise DeviceTestError(f"Run exited {code} after SIGTERM (expected 0): {_tail(log_path)}")
    return outcome


def served_configuration(component: Component) -> dict[str, Any]:
    """The recipe's DefaultConfiguration, merged with one hour between reports as a deployment
    would: the test waits for the first report only."""
    default = (component.recipe.get("ComponentConfiguration") or {}).get("DefaultConfiguration")
    return {**(default or {}), "intervalSeconds": 3600}


def check_report(report: Mapping[str, Any]) -> list[str]:
    """What is wrong with the first report (empty: nothing)."""
    problems = []
    if report.get("thing_name") != THING:
        problems.append(f"thing_name is {report.get('thing_name')!r}, not {THING!r}")
    if report.get("sequence") != 1:
        problems.append(f"sequence is {report.get('sequence')!r}, not 1")
    ids = {c.get("id") for c in report.get("checks", [])}
    if missing := {"certificate.validity", "certificate.key_match"} - ids:
        problems.append(f"checks missing: {sorted(missing)}")
    return problems


def summarize(report: Mapping[str, Any]) -> list[str]:
    """The report in a few lines: counts per status, then each result that is not OK."""
    checks = report.get("checks", [])
    counts: dict[str, int] = {}
    for check in checks:
        counts[str(check.get("status"))] = counts.get(str(check.get("status")), 0) + 1
    lines = ["checks: " + ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))]
    for check in checks:
        if check.get("status") != "OK":
            message = " ".join(str(check.get("message", "")).split())
            lines.append(f"  {check.get('status')} {check.get('id')}: {message[:160]}")
    return lines


# -- the command line -----------------------------------------------------------------------


def device_test(build: Path, cache: Path | None, keep: bool) -> int:
    """The whole run; raises DeviceTestError for expected failures."""
    started = time.monotonic()
    if os.geteuid() != 0:
        raise DeviceTestError(
            "run as root: the device is a chroot with an overlay, in namespaces of its own"
        )
    require_host_tools()
    component = load_component(build)
    arch = DEVICE_PLATFORM["architecture"]
    manifest = component.manifest.get("Name", "(unnamed)")
    progress(started, f"{component.name} {component.version}: manifest {manifest} for {arch}")
    userland = ensure(UserlandSpec(), cache_dir(cache))
    probe(userland.root)
    how = "reused" if userland.reused else f"built in {userland.build_seconds:.0f}s"
    progress(started, f"userland {userland.root} ({how}): Python {userland.python_version}")
    # Short: the socket path must fit in 107 bytes, and it is bound into the guest unchanged.
    scratch = Path(tempfile.mkdtemp(prefix="ggdt-", dir="/tmp"))
    try:
        shared = scratch / "shared"
        root = build_demo_root(shared / "greengrass" / "v2")
        variables = lay_out_artifacts(component, root)
        progress(started, f"artifacts unarchived under {variables['artifacts:decompressedPath']}")
        device = Device(lower=userland.root, scratch=scratch / "device", shared=shared)
        nucleus = NucleusStandIn(
            shared / "ipc.sock",
            svcuid=secrets.token_urlsafe(24),
            configuration={component.name: served_configuration(component)},
            component_name=component.name,
        )
        with nucleus:
            env = component_env(nucleus, root)
            progress(started, "Install (offline, as root, under emulation)")
            seconds = run_install(device, component, variables, env)
            progress(started, f"Install done in {seconds:.0f}s")
            progress(started, "Run, waiting for the first health report")
            outcome = run_component(device, component, variables, env, nucleus)
        progress(
            started,
            f"first report {outcome.seconds_to_report:.0f}s after Run started; states "
            f"{outcome.states}; exit 0 {outcome.seconds_to_stop:.1f}s after SIGTERM",
        )
        (scratch / "report.json").write_text(json.dumps(outcome.report, indent=2))
        if outcome.seconds_to_stop > NUCLEUS_STOP_GRACE:
            progress(
                started,
                f"warning: a nucleus would have killed Run {NUCLEUS_STOP_GRACE:.0f}s after SIGTERM",
            )
        for line in summarize(outcome.report):
            progress(started, line)
        if problems := check_report(outcome.report):
            raise DeviceTestError("the first report is wrong: " + "; ".join(problems))
        if errors := nucleus.server_errors:
            raise DeviceTestError(f"the nucleus stand-in failed: {errors}")
        progress(started, "device test passed")
        return 0
    finally:
        if keep:
            print(f"kept {scratch} (device overlay, Greengrass root, install.log, run.log)")
        else:
            shutil.rmtree(scratch, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line; print one paragraph and exit 1 on an expected failure."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--build",
        type=Path,
        default=Path("greengrass-build"),
        help="what `make package` wrote (default: greengrass-build)",
    )
    parser.add_argument(
        "--cache", type=Path, help=f"userland cache (default: ${CACHE_ENV} or {DEFAULT_CACHE})"
    )
    parser.add_argument("--keep", action="store_true", help="keep the run's scratch directory")
    parser.add_argument(
        "--host-packages",
        action="store_true",
        help="print the Debian packages the host needs, and exit",
    )
    args = parser.parse_args(argv)
    if args.host_packages:
        print(" ".join(HOST_PACKAGES))
        return 0
    try:
        return device_test(args.build, args.cache, args.keep)
    except (DeviceTestError, UserlandError) as exc:
        print(f"device test failed: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
