"""File-mode rules for the device identity files and the directories holding them.

As installed, Greengrass keeps the private key root-owned with mode 600 and ``config/`` at
700 (https://docs.aws.amazon.com/greengrass/v2/developerguide/install-manual-provisioning.html);
a key others can read is a stolen identity, and a certificate, key or directory others can
write lets them swap the device's identity or trust anchor.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from typing import Any

from agent.report import Status
from agent.x509.files import PERMISSION_DENIED, os_problem

_WORLD_OR_GROUP_WRITE = stat.S_IWGRP | stat.S_IWOTH


@dataclass(frozen=True, slots=True)
class Verdict:
    """One permission verdict about one path."""

    target: str
    status: Status
    message: str
    remediation: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


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
        return Verdict(
            path,
            Status.UNKNOWN,
            "cannot stat: permission denied on a parent directory",
            "run the agent with RequiresPrivilege: true to audit root-only paths",
            {"reason": PERMISSION_DENIED},
        )
    mode = st.st_mode
    details: dict[str, Any] = {"mode": _mode(st), "uid": st.st_uid, "gid": st.st_gid}
    what = "private key" if private_key else "certificate"
    if private_key:
        if mode & _WORLD_OR_GROUP_WRITE or mode & stat.S_IROTH:
            who = []
            if mode & stat.S_IWOTH or mode & stat.S_IROTH:
                who.append("world-" + _rw(mode & stat.S_IROTH, mode & stat.S_IWOTH))
            if mode & stat.S_IWGRP:
                who.append("group-writable")
            return Verdict(
                path,
                Status.CRITICAL,
                f"private key is {' and '.join(who)} (mode {_mode(st)})",
                f"chmod 600 {path} (Greengrass installs the key root-owned, mode 600), "
                "then rotate the key: it may have been copied",
                {**details, "reason": "key_exposed"},
            )
        if mode & stat.S_IRGRP:
            return Verdict(
                path,
                Status.WARNING,
                f"private key is group-readable (mode {_mode(st)})",
                f"chmod 600 {path} unless a group must read it",
                {**details, "reason": "key_group_readable"},
            )
    elif mode & stat.S_IWOTH:
        return Verdict(
            path,
            Status.CRITICAL,
            f"{what} is world-writable (mode {_mode(st)})",
            f"chmod o-w {path}",
            {**details, "reason": "world_writable"},
        )
    return Verdict(path, Status.OK, f"{what} mode {_mode(st)} is safe", None, details)


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
        return Verdict(
            directory,
            Status.CRITICAL,
            f"directory is world-writable (mode {_mode(st)}){sticky}: anyone can replace "
            f"{', '.join(sorted(dependants))}",
            f"chmod o-w {directory}",
            {**details, "reason": "world_writable_directory"},
        )
    return Verdict(directory, Status.OK, f"directory mode {_mode(st)} is safe", None, details)


def _rw(read: int, write: int) -> str:
    if read and write:
        return "readable and writable"
    return "readable" if read else "writable"
