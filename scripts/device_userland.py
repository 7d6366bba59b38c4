#!/usr/bin/env python3
"""An emulated device userland: Debian's arm64 trixie (Python 3.13, the base of Raspberry Pi
OS Trixie), built from Debian's archive and cached outside the repository.

Why not a container image or ``debootstrap --second-stage``: the first needs a registry this
project cannot reach, the second runs every maintainer script under emulation (many minutes).
Instead ``debootstrap --foreign`` only downloads and unpacks, ``dpkg-deb -x`` unpacks what it
left for the second stage, and the few things those maintainer scripts would have done that
Python needs (users, the CA bundle, the standard library's bytecode) are done here by hand.
Programs then run chrooted, under qemu through a binfmt_misc entry registered in a user
namespace of their own (:func:`enter_command`): nothing on the host changes, not even for the
duration. Not proot: Debian 12's proot (5.1) does not translate the paths of ``faccessat2`` and
``statx``, which trixie's glibc uses, so ``[ -x "$venv/bin/python" ]`` is false there for a file
that exists. This needs root and Linux >= 6.7 (binfmt_misc per user namespace).

The userland is keyed by everything it was built from (:meth:`UserlandSpec.key`), so a second
run reuses it; a change of the spec builds a new one beside it. Build it alone, and check that
``python3 -m venv`` and pip work inside::

    python scripts/device_userland.py [--cache DIR] [--check-venv]
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

q = shlex.quote

DEFAULT_CACHE = Path("/var/cache/gghealth-device-test")
"""Where userlands are kept between runs: outside the work tree, so ``git clean`` and
``make clean`` keep them, and shared by every checkout on the machine."""
CACHE_ENV = "GGHEALTH_DEVICE_CACHE"
"""Overrides :data:`DEFAULT_CACHE` (the runner's ``--cache`` overrides both)."""

HOST_TOOLS: dict[str, str] = {
    "debootstrap": "debootstrap",
    "dpkg-deb": "dpkg",
    "qemu-aarch64-static": "qemu-user-static",
    "unshare": "util-linux",
    "mount": "mount",
    "chroot": "coreutils",
    "ip": "iproute2",
}
"""Host programs needed to build and enter a userland -> the Debian package that ships each."""
HOST_PACKAGES: tuple[str, ...] = tuple(sorted(set(HOST_TOOLS.values())))
"""What ``make device-test`` apt-installs (``device_test.py --host-packages`` prints it)."""
BINFMT_DIR = Path("/usr/lib/binfmt.d")

FORMAT = 1
"""Bumped whenever :func:`build` changes what it makes, so older cached userlands are rebuilt."""

GUEST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
"""PATH of a root shell on Debian: what a nucleus started by systemd passes to its components."""


class UserlandError(Exception):
    """An expected failure (missing host tool, archive unreachable, wrong Python): its message
    is the one paragraph the user sees, without a traceback."""


@dataclass(frozen=True)
class UserlandSpec:
    """What a userland is built from; equal specs share one cached userland."""

    suite: str = "trixie"
    arch: str = "arm64"
    variant: str = "minbase"
    packages: tuple[str, ...] = ("python3", "python3-venv", "ca-certificates")
    mirror: str = "http://deb.debian.org/debian"
    python: str = "3.13"
    """The ``major.minor`` of ``python3`` the suite must ship: checked after the build."""

    def key(self) -> str:
        """A short digest of the spec and :data:`FORMAT`: the cache entry's name."""
        text = json.dumps({"format": FORMAT, **asdict(self)}, sort_keys=True)
        return f"{self.suite}-{self.arch}-{hashlib.sha256(text.encode()).hexdigest()[:12]}"


@dataclass
class Userland:
    """A built userland: its root directory and what went into it."""

    root: Path
    spec: UserlandSpec
    packages: dict[str, str] = field(default_factory=dict)
    """Debian package -> version, as unpacked."""
    python_version: str = ""
    build_seconds: float = 0.0
    reused: bool = False
    """Whether it came from the cache (False: built by this call)."""


def cache_dir(explicit: Path | None = None) -> Path:
    """``--cache``, else ``$GGHEALTH_DEVICE_CACHE``, else :data:`DEFAULT_CACHE`."""
    if explicit is not None:
        return explicit
    return Path(os.environ.get(CACHE_ENV) or DEFAULT_CACHE)


def missing_host_packages(tools: Mapping[str, str] = HOST_TOOLS) -> list[str]:
    """The Debian packages to install for the ``tools`` not found on PATH (empty: all there)."""
    return sorted({package for tool, package in tools.items() if shutil.which(tool) is None})


def require_host_tools(tools: Mapping[str, str] = HOST_TOOLS) -> None:
    """Fail with the apt command that installs what is missing."""
    if missing := missing_host_packages(tools):
        raise UserlandError(
            "missing host tools: install them with `apt-get install "
            f"{' '.join(missing)}` (`make device-test` does this when run as root)."
        )


def binfmt_registration() -> str:
    """The host's own binfmt_misc line for aarch64 (qemu-user-static's binfmt.d file).

    It names ``/usr/libexec/qemu-binfmt/aarch64-binfmt-P`` with flags ``OPF``: F opens qemu
    when registering, so it runs inside the chroot without a copy there; P keeps each program's
    argv[0] (a venv's python finds its pyvenv.cfg through it).
    """
    for conf in sorted(BINFMT_DIR.glob("qemu-aarch64*.conf")):
        for line in conf.read_text().splitlines():
            if line.startswith(":qemu-aarch64:"):
                return line.strip()
    raise UserlandError(f"no qemu-aarch64 entry in {BINFMT_DIR}: apt-get install qemu-user-static")


def enter_command(
    root: Path,
    argv: Sequence[str],
    *,
    overlay: Path | None = None,
    binds: Sequence[Path] = (),
    cwd: str = "/",
) -> list[str]:
    """The host command that runs ``argv`` as root inside the userland at ``root``.

    Everything happens in new user, mount and network namespaces, so it all ends with the
    command and the host is left as it was: qemu is registered in a binfmt_misc instance of the
    namespace's own (Linux >= 6.7), /proc, /dev and /sys and the ``binds`` (host directories,
    seen at the same path inside, so paths handed to the guest need no translation) are
    bind-mounted, only loopback is up, then ``chroot``. With ``overlay`` (a scratch
    directory), the guest writes to an overlay in it and ``root`` is never changed.
    """
    target = root
    lines = ["set -eu"]
    if overlay is not None:
        upper, work, target = overlay / "upper", overlay / "work", overlay / "merged"
        layers = (root, upper, work, target)
        if any(c in str(p) for p in layers for c in ",:"):
            raise UserlandError(f"overlay paths may contain no ',' or ':': {layers}")
        for directory in (upper, work, target):
            directory.mkdir(parents=True, exist_ok=True)
        options = f"lowerdir={root},upperdir={upper},workdir={work}"
        lines.append(f"mount -t overlay overlay -o {q(options)} {q(str(target))}")
    lines += [
        # Where binfmt_misc is mounted in this mount namespace alone; registering there needs
        # a kernel whose binfmt_misc is per user namespace.
        "mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc",
        f"printf '%s' {q(binfmt_registration())} > /proc/sys/fs/binfmt_misc/register",
        "ip link set lo up",
    ]
    for host in (Path("/proc"), Path("/dev"), Path("/sys"), *binds):
        inside = q(str(target / host.relative_to("/")))
        lines += [f"mkdir -p {inside}", f"mount --rbind {q(str(host))} {inside}"]
    lines.append(f'exec chroot {q(str(target))} /usr/bin/env -C {q(cwd)} -- "$@"')
    namespaces = ["unshare", "--user", "--map-root-user", "--mount", "--net"]
    return [*namespaces, "sh", "-c", "\n".join(lines), "enter", *argv]


def guest_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """A clean environment for guest programs: nothing of the host's leaks in (its PATH, its
    PYTHONDONTWRITEBYTECODE, a virtualenv), only what a freshly booted device would have."""
    return {"PATH": GUEST_PATH, "HOME": "/root", "LANG": "C.UTF-8", **(extra or {})}


def run_guest(root: Path, argv: Sequence[str], *, timeout: float) -> str:
    """Run ``argv`` inside the userland and return its output; fail with the output's tail."""
    result = subprocess.run(
        enter_command(root, argv),
        env=guest_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        tail = (result.stdout + result.stderr).strip()[-2000:]
        raise UserlandError(f"`{' '.join(argv)}` failed inside the userland: {tail}")
    return result.stdout


def probe(root: Path) -> None:
    """Fail early, with the reason, where this host cannot enter a userland at all."""
    try:
        machine = run_guest(root, ["uname", "-m"], timeout=120).strip()
    except UserlandError as exc:
        raise UserlandError(
            f"cannot enter the userland; it needs root and Linux >= 6.7, whose binfmt_misc can "
            f"be mounted in a user namespace (this is {os.uname().release}). {exc}"
        ) from None
    if machine != "aarch64":
        raise UserlandError(f"the userland runs as {machine!r}, not aarch64")


def _log(message: str) -> None:
    print(f"[userland] {message}", flush=True)


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """One builder at a time per cache directory: a second run waits, then reuses."""
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def ensure(spec: UserlandSpec, cache: Path) -> Userland:
    """The cached userland of ``spec`` under ``cache``, built first if it is not there."""
    entry = cache / spec.key()
    with _locked(cache):
        if (entry / "userland.json").is_file():
            meta = json.loads((entry / "userland.json").read_text())
            return Userland(
                root=entry / "rootfs",
                spec=spec,
                packages=meta["packages"],
                python_version=meta["python_version"],
                build_seconds=meta["build_seconds"],
                reused=True,
            )
        require_host_tools()
        if os.geteuid() != 0:
            raise UserlandError("building the userland needs root (debootstrap creates devices)")
        # Build beside the entry and rename at the end: an interrupted build leaves no entry
        # that a later run would take for complete.
        stage = Path(tempfile.mkdtemp(prefix=f".build-{spec.key()}-", dir=cache))
        try:
            userland = build(spec, stage / "rootfs")
            (stage / "userland.json").write_text(
                json.dumps(
                    {
                        "spec": asdict(spec),
                        "format": FORMAT,
                        "packages": userland.packages,
                        "python_version": userland.python_version,
                        "build_seconds": round(userland.build_seconds, 1),
                    },
                    indent=2,
                    sort_keys=True,
                )
            )
            shutil.rmtree(entry, ignore_errors=True)
            stage.chmod(0o755)
            stage.rename(entry)
        finally:
            shutil.rmtree(stage, ignore_errors=True)
        userland.root = entry / "rootfs"
        return userland


def build(spec: UserlandSpec, root: Path) -> Userland:
    """Bootstrap ``spec`` into ``root`` without running any maintainer script; see the module
    docstring for why, and :func:`_configure` for what stands in for those scripts."""
    started = time.monotonic()
    _log(f"debootstrap --foreign {spec.suite} {spec.arch} from {spec.mirror}")
    result = subprocess.run(
        [
            "debootstrap",
            "--foreign",
            f"--arch={spec.arch}",
            f"--variant={spec.variant}",
            f"--include={','.join(spec.packages)}",
            spec.suite,
            str(root),
            spec.mirror,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        tail = (result.stdout + result.stderr).strip()[-1500:]
        raise UserlandError(f"debootstrap failed (is {spec.mirror} reachable?): {tail}")
    _log(f"downloaded in {time.monotonic() - started:.0f}s; unpacking")
    packages = _unpack_all(root)
    _configure(root)
    _log("compiling the standard library under emulation (once per userland)")
    run_guest(
        root,
        ["python3", "-m", "compileall", "-q", f"/usr/lib/python{spec.python}", "/usr/lib/python3"],
        timeout=1800,
    )
    version = run_guest(
        root, ["python3", "-c", "import platform; print(platform.python_version())"], timeout=300
    ).strip()
    if not version.startswith(spec.python + "."):
        raise UserlandError(f"{spec.suite} ships Python {version}, expected {spec.python}.x")
    # ensurepip and venv are what the component's Install needs; ssl, what pip needs.
    run_guest(root, ["python3", "-c", "import ensurepip, venv, ssl"], timeout=300)
    elapsed = time.monotonic() - started
    _log(f"built {root} in {elapsed:.0f}s: Python {version}, {len(packages)} packages")
    return Userland(root, spec, packages, version, elapsed)


def _unpack_all(root: Path) -> dict[str, str]:
    """``dpkg-deb -x`` every downloaded package into ``root`` (what the second stage would
    unpack, without configuring it), then drop the .debs; return package -> version."""
    archives = root / "var" / "cache" / "apt" / "archives"
    packages: dict[str, str] = {}
    for deb in sorted(archives.glob("*.deb")):
        fields = subprocess.run(
            ["dpkg-deb", "--show", "--showformat=${Package} ${Version}", str(deb)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        packages[fields[0]] = fields[1]
        subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
        deb.unlink()
    # The merged /usr of trixie: /bin, /lib, /sbin must still be the symlinks debootstrap made.
    for link in ("bin", "lib", "sbin"):
        if not (root / link).is_symlink():
            raise UserlandError(f"unpacking replaced the /{link} symlink of the merged /usr")
    shutil.rmtree(root / "debootstrap", ignore_errors=True)
    return packages


def _configure(root: Path) -> None:
    """The parts of the skipped maintainer scripts that the test depends on."""
    etc = root / "etc"
    # base-passwd's postinst: without /etc/passwd, `id`, pwd.getpwuid and ~ expansion fail.
    for name in ("passwd", "group"):
        shutil.copyfile(root / "usr/share/base-passwd" / f"{name}.master", etc / name)
    # ca-certificates' postinst (update-ca-certificates): the bundle OpenSSL and pip read.
    bundle = etc / "ssl" / "certs" / "ca-certificates.crt"
    bundle.parent.mkdir(parents=True, exist_ok=True)
    certificates = sorted((root / "usr/share/ca-certificates").rglob("*.crt"))
    bundle.write_bytes(b"".join(c.read_bytes() for c in certificates))
    # netbase/systemd would provide these; localhost must resolve inside the test's netns.
    (etc / "hosts").write_text("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost\n")
    (etc / "hostname").write_text("device-test\n")


def main(argv: Sequence[str] | None = None) -> int:
    """Build (or find) the userland and optionally check venv + pip inside it."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--cache", type=Path, help=f"default: ${CACHE_ENV} or {DEFAULT_CACHE}")
    parser.add_argument(
        "--check-venv",
        action="store_true",
        help="also create a venv inside and run its pip (slow under emulation)",
    )
    args = parser.parse_args(argv)
    started = time.monotonic()
    try:
        userland = ensure(UserlandSpec(), cache_dir(args.cache))
        how = "reused" if userland.reused else "built"
        elapsed = time.monotonic() - started
        print(f"{how} {userland.root} (Python {userland.python_version}) in {elapsed:.1f}s")
        if args.check_venv:
            started = time.monotonic()
            # Inside a throwaway directory of the guest's /tmp, removed again.
            script = (
                'v=$(mktemp -d) && python3 -m venv "$v/v" && "$v/v/bin/python" -m pip --version;'
                ' rc=$?; rm -rf "$v"; exit $rc'
            )
            out = run_guest(userland.root, ["sh", "-c", script], timeout=1800)
            print(f"venv + pip: {out.strip()} in {time.monotonic() - started:.1f}s")
    except UserlandError as exc:
        print(f"device userland: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
