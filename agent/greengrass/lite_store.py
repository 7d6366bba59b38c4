"""Read nucleus lite's configuration store (ggconfigd's ``config.db``) without ever writing or
locking it.

Nucleus lite keeps its runtime configuration (``system``, ``services.<name>.version``, every
deployed component's ``configuration``, ``accessControl`` included) in an SQLite database that
ggconfigd opens as ``config.db`` in its working directory, ``{kernel:rootPath}``
(aws-greengrass-lite modules/ggconfigd/src/db_interface.c, ``config_database_name``). The schema
(modules/ggconfigd/src/sql/create_db.sql) is a key tree: ``keyTable(keyid, keyvalue)``,
``relationTable(keyid, parentid)`` (no row for a root key), ``valueTable(keyid, value,
timeStamp)`` with each leaf value JSON-encoded (modules/ggconfigd/src/db_corebus.c,
gg_json_encode / gg_json_decode_destructive). A key with neither children nor value is an empty
map. Lite's own tools read the file the same way, directly with sqlite3 (misc/db_to_json.sh,
misc/db_to_yaml.sh).

Why the store and not IPC ``GetConfiguration``: ggipcd answers GetConfiguration only below
``services/<name>/configuration`` (modules/ggipcd/src/services/config/get_configuration.c and
config_path_object.c), so it can neither list the deployed components nor give their
``version``, which the recipe and S3 artifact checks need.

The database is opened with ``mode=ro&immutable=1`` (https://www.sqlite.org/uri.html): SQLite
then takes no lock, writes nothing and creates no journal, ``-wal`` or ``-shm`` file, so ggconfigd
is never delayed or disturbed by a reader. The price of ``immutable`` is that a write landing in
the middle of the read may give an inconsistent snapshot; the read is a few milliseconds, so a
failed or odd read is reported and the next cycle reads again.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any
from urllib.parse import quote

from agent.errors import AgentError

STORE_NAME = "config.db"
SQLITE_MAGIC = b"SQLite format 3\x00"
"""The first 16 bytes of every SQLite 3 database (https://www.sqlite.org/fileformat.html)."""
MAX_KEYS = 200_000
"""Far above any real device; a bound so a hostile file cannot exhaust memory."""

_QUERY = (
    "SELECT k.keyid, k.keyvalue, r.parentid, v.value FROM keyTable k "
    "LEFT JOIN relationTable r ON r.keyid = k.keyid "
    "LEFT JOIN valueTable v ON v.keyid = k.keyid ORDER BY k.keyid"
)


class LiteStoreError(AgentError):
    """The store exists but cannot be read as ggconfigd's configuration database."""


def store_uri(path: Path) -> str:
    """The read-only, lock-free SQLite URI of ``path``."""
    return f"file:{quote(str(path.resolve()))}?mode=ro&immutable=1"


def read_store(path: Path) -> dict[str, Any]:
    """The whole configuration tree of the store at ``path`` as nested dicts.

    Raises LiteStoreError with a message that says what is wrong (permission, not SQLite, not
    ggconfigd's schema, a malformed value).
    """
    try:
        with path.open("rb") as f:
            head = f.read(len(SQLITE_MAGIC))
    except PermissionError:
        raise LiteStoreError(
            f"cannot read {path}: permission denied. Nucleus lite's configuration store is "
            "readable by root and ggcore only; run the agent privileged (RequiresPrivilege: true)"
        ) from None
    except OSError as exc:
        raise LiteStoreError(f"cannot read {path}: {exc.strerror}") from None
    if head != SQLITE_MAGIC:
        raise LiteStoreError(
            f"{path} is not an SQLite database (nucleus lite's ggconfigd store); "
            "pass --greengrass-root the lite root path (e.g. /var/lib/greengrass)"
        )
    try:
        conn = sqlite3.connect(store_uri(path), uri=True)
    except sqlite3.Error as exc:
        raise LiteStoreError(f"cannot open {path} read-only: {exc}") from None
    try:
        rows = conn.execute(_QUERY).fetchmany(MAX_KEYS + 1)
    except sqlite3.DatabaseError as exc:
        raise LiteStoreError(
            f"{path} is not a nucleus lite configuration store ({exc}); expected ggconfigd's "
            "keyTable/relationTable/valueTable"
        ) from None
    finally:
        conn.close()
    if len(rows) > MAX_KEYS:
        raise LiteStoreError(f"{path} holds more than {MAX_KEYS} keys; refusing to load it")
    return _tree(path, rows)


def _tree(path: Path, rows: list[tuple[Any, Any, Any, Any]]) -> dict[str, Any]:
    names: dict[int, str] = {}
    parents: dict[int, int | None] = {}
    values: dict[int, Any] = {}
    for key_id, name, parent, value in rows:
        names[key_id] = str(name)
        parents[key_id] = parent
        if value is not None:
            try:
                values[key_id] = json.loads(value)
            except (TypeError, ValueError):
                raise LiteStoreError(
                    f"{path}: the value of {_key_path(key_id, names, parents)} is not JSON "
                    "(ggconfigd stores every value JSON-encoded)"
                ) from None
    children: dict[int | None, list[int]] = {}
    for key_id, parent in parents.items():
        children.setdefault(parent, []).append(key_id)

    def build(key_id: int, depth: int) -> Any:
        if key_id in values:
            return values[key_id]
        if depth > 64:
            raise LiteStoreError(f"{path}: the key tree is deeper than 64 levels (a cycle?)")
        return {names[c]: build(c, depth + 1) for c in children.get(key_id, [])}

    return {names[k]: build(k, 1) for k in children.get(None, [])}


def _key_path(key_id: int, names: dict[int, str], parents: dict[int, int | None]) -> str:
    parts: list[str] = []
    current: int | None = key_id
    while current is not None and current in names and len(parts) < 64:
        parts.append(names[current])
        current = parents.get(current)
    return "/".join(reversed(parts))
