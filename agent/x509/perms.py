"""File-mode rules for the device identity files and the directories holding them.

As installed, Greengrass keeps the private key root-owned with mode 600 and ``config/`` at
700 (https://docs.aws.amazon.com/greengrass/v2/developerguide/install-manual-provisioning.html);
a key others can read is a stolen identity, and a certificate, key or directory others can
write lets them swap the device's identity or trust anchor.
"""

from __future__ import annotations

import os
import stat
from typing import Any

from agent.report import Finding, Status, Verdict
from agent.x509.files import PERMISSION_DENIED, os_problem

_WORLD_OR_GROUP_WRITE = stat.S_IWGRP | stat.S_IWOTH


def _mode(st: os.stat_result) -> str:
    return f"{stat.S_IMODE(st.st_mode):04o}"


def file_verdict(path: str, private_key: bool) -> Verdict | None:
    """Verdict on a key or certificate file, after symlinks; None when it does not exist."""
    try:
        st = os.stat(path)
    except (FileNotFoundError, ValueError):
        return None  # certificate.readable reports it (ValueError: a NUL byte in the path)
    except OSError as exc:
        problem = os_problem(exc)
        if problem.reason != PERMISSION_DENIED:
            return None
        return _problem(
            path,
            {},
            Status.UNKNOWN,
            PERMISSION_DENIED,
            "cannot stat: permission denied on a parent directory",
            "run the agent with RequiresPrivilege: true to audit root-only paths",
        )
    mode = st.st_mode
    if not stat.S_ISREG(mode):
        return None  # a device or FIFO: certificate.readable says it is not a file; its mode
        # (/dev/null is 0666) says nothing about who can change a certificate
    details: dict[str, Any] = {"mode": _mode(st), "uid": st.st_uid, "gid": st.st_gid}
    what = "private key" if private_key else "certificate"
    if private_key:
        if mode & _WORLD_OR_GROUP_WRITE or mode & stat.S_IROTH:
            who = []
            if mode & stat.S_IWOTH or mode & stat.S_IROTH:
                who.append("world-" + _rw(mode & stat.S_IROTH, mode & stat.S_IWOTH))
            if mode & stat.S_IWGRP:
                who.append("group-writable")
            return _problem(
                path,
                details,
                Status.CRITICAL,
                "key_exposed",
                f"private key is {' and '.join(who)} (mode {_mode(st)})",
                f"chmod 600 {path} (Greengrass installs the key root-owned, mode 600), "
                "then rotate the key: it may have been copied",
            )
        if mode & stat.S_IRGRP:
            return _problem(
                path,
                details,
                Status.WARNING,
                "key_group_readable",
                f"private key is group-readable (mode {_mode(st)})",
                f"chmod 600 {path} unless a group must read it",
            )
    elif mode & stat.S_IWOTH:
        return _problem(
            path,
            details,
            Status.CRITICAL,
            "world_writable",
            f"{what} is world-writable (mode {_mode(st)})",
            f"chmod o-w {path}",
        )
    return Verdict(path, f"{what} mode {_mode(st)} is safe", details=details)


def directories_of(path: str) -> list[str]:
    """The directories whose write permission controls ``path``.

    The directory of the resolved file, and for a symlink also the one holding the link
    (whoever can write there can repoint it).
    """
    found = [os.path.dirname(os.path.realpath(path)) or "/"]
    if os.path.islink(path):
        link_dir = os.path.dirname(os.path.abspath(path)) or "/"
        if link_dir not in found:
            found.append(link_dir)
    return found


def directory_verdict(directory: str, dependants: list[str]) -> Verdict | None:
    """Verdict on a directory holding identity files (or symlinks to them)."""
    try:
        st = os.stat(directory)
    except OSError:
        return None
    details: dict[str, Any] = {"mode": _mode(st), "uid": st.st_uid, "files": sorted(dependants)}
    if st.st_mode & stat.S_IWOTH:
        sticky = " (sticky, yet others can still add files)" if st.st_mode & stat.S_ISVTX else ""
        return _problem(
            directory,
            details,
            Status.CRITICAL,
            "world_writable_directory",
            f"directory is world-writable (mode {_mode(st)}){sticky}: anyone can replace "
            f"{', '.join(sorted(dependants))}",
            f"chmod o-w {directory}",
        )
    return Verdict(directory, f"directory mode {_mode(st)} is safe", details=details)


def _problem(
    target: str,
    details: dict[str, Any],
    status: Status,
    reason: str,
    message: str,
    remediation: str,
) -> Verdict:
    return Verdict(target, "", (Finding(status, reason, message, remediation),), details)


def _rw(read: int, write: int) -> str:
    if read and write:
        return "readable and writable"
    return "readable" if read else "writable"
