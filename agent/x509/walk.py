"""Recursive listing of the regular files under an ``certificates.extraPaths`` directory.

``os.scandir`` keeps it to one ``getdents`` per directory: the kind of an entry comes with its
name, so a regular file costs no ``stat`` here (the caller stats it when it needs the cache
stamp, or reads it and takes the stamp from ``fstat``). Directory symlinks are not followed (no
loops, no escaping the tree); file symlinks are, and a dangling one is reported.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator

from agent.x509.files import BROKEN_SYMLINK, PERMISSION_DENIED, Problem, os_problem

MAX_DEPTH = 32
"""Deeper directories are not listed (a certificate store is a few levels deep)."""
MAX_FILES = 200_000
"""Listing stops here; a later result says the tree was cut short."""
TOO_MANY_FILES = "too_many_files"
TOO_DEEP = "too_deep"


def walk_files(
    top: str, max_files: int = MAX_FILES
) -> Iterator[tuple[str, os.DirEntry[str] | Problem]]:
    """Yield (path, directory entry) of every regular file under ``top``, sorted by name.

    The entry's ``stat()`` follows symlinks and is cached (a symlink was already followed
    here). Unlistable directories and dangling symlinks are yielded with a Problem instead.
    """
    stack: list[tuple[str, int]] = [(top, 0)]
    count = 0
    while stack:
        directory, depth = stack.pop()
        try:
            with os.scandir(directory) as listing:
                entries = sorted(listing, key=lambda e: e.name)
        except PermissionError:
            yield (
                directory,
                Problem(PERMISSION_DENIED, "directory cannot be listed: permission denied"),
            )
            continue
        except OSError as exc:
            yield directory, os_problem(exc)
            continue
        subdirs: list[str] = []
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    if depth < MAX_DEPTH:
                        subdirs.append(entry.path)
                    else:
                        # Said once per directory left out, so the cut is never silent.
                        yield (
                            entry.path,
                            Problem(
                                TOO_DEEP,
                                f"lies more than {MAX_DEPTH} levels below {top}; "
                                "the files under it were not checked",
                            ),
                        )
                    continue
                if entry.is_symlink():
                    regular = stat.S_ISREG(entry.stat().st_mode)  # follows the link
                else:
                    regular = entry.is_file(follow_symlinks=False)  # from getdents, no stat
            except FileNotFoundError:
                if entry.is_symlink():
                    yield entry.path, _dangling(entry.path)
                continue
            except OSError as exc:
                yield entry.path, os_problem(exc)
                continue
            if regular:
                count += 1
                if count > max_files:
                    yield (
                        top,
                        Problem(
                            TOO_MANY_FILES,
                            f"holds more than {max_files} files; the rest were not checked",
                        ),
                    )
                    return
                yield entry.path, entry
        stack.extend((d, depth + 1) for d in reversed(subdirs))


def _dangling(path: str) -> Problem:
    try:
        dest = os.readlink(path)
    except OSError:
        dest = "?"
    return Problem(BROKEN_SYMLINK, f"is a symlink to {dest}, which does not exist")
