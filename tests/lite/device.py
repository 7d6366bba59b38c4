"""A nucleus-lite-shaped device, laid out from lite's documented formats and sources.

- ``etc/greengrass/config.yaml`` + ``config.d/``: the initial configuration ggconfigd loads
  (aws-greengrass-lite modules/ggconfigd/bin/ggconfigd.c; docs/examples/sample_nucleus_config.yaml
  is shared/fixtures' greengrass-lite-sample-nucleus-config.yaml).
- ``var/lib/greengrass/config.db``: ggconfigd's store with ggconfigd's own schema
  (modules/ggconfigd/src/sql/create_db.sql and create_index.sql, verbatim below) and its way of
  writing a tree: one keyTable row per key, a relationTable row tying it to its parent, and a
  JSON-encoded valueTable row per leaf (modules/ggconfigd/src/db_interface.c).
- ``var/lib/greengrass/packages/recipes/<name>-<version>.json``: deployed recipes as
  ggdeploymentd saves the cloud's (modules/ggdeploymentd/src/deployment_handler.c) and
  ggl_recipe_get_from_file reads them (modules/ggl-recipe/src/recipe.c).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from agent.demo import build_demo_root

CREATE_DB_SQL = """
CREATE TABLE keyTable (
  'keyid' INTEGER PRIMARY KEY AUTOINCREMENT UNIQUE NOT NULL,
  'keyvalue' TEXT NOT NULL COLLATE BINARY
);
CREATE TABLE relationTable (
  'keyid' INT UNIQUE NOT NULL,
  'parentid' INT NOT NULL,
  PRIMARY KEY (keyid),
  FOREIGN KEY (keyid) REFERENCES keyTable (keyid),
  FOREIGN KEY (parentid) REFERENCES keyTable (keyid)
);
CREATE TABLE valueTable (
  'keyid' INT UNIQUE NOT NULL,
  'value' TEXT NOT NULL,
  'timeStamp' INTEGER NOT NULL,
  FOREIGN KEY (keyid) REFERENCES keyTable (keyid)
);
CREATE TABLE version ('version' TEXT DEFAULT '0.1');
INSERT INTO version (version) VALUES (0.1);
CREATE INDEX idx_parentid ON relationTable (parentid);
"""
"""modules/ggconfigd/src/sql/create_db.sql + create_index.sql of aws-greengrass-lite 2.6.0."""


def write_store(path: Path, tree: Mapping[str, Any], timestamp: int = 1_764_990_000_000) -> None:
    """``tree`` written as ggconfigd writes keys and values."""
    conn = sqlite3.connect(path)
    try:
        conn.executescript(CREATE_DB_SQL)

        def put(parent: int | None, key: str, value: Any) -> None:
            key_id = conn.execute("INSERT INTO keyTable (keyvalue) VALUES (?)", (key,)).lastrowid
            if parent is not None:
                conn.execute(
                    "INSERT INTO relationTable (keyid, parentid) VALUES (?, ?)", (key_id, parent)
                )
            if isinstance(value, Mapping):
                for k, v in value.items():
                    put(key_id, str(k), v)
            else:
                conn.execute(
                    "INSERT INTO valueTable (keyid, value, timeStamp) VALUES (?, ?, ?)",
                    (key_id, json.dumps(value), timestamp),
                )

        for k, v in tree.items():
            put(None, str(k), v)
        conn.commit()
    finally:
        conn.close()


def build_lite_device(base: Path) -> tuple[Path, Path]:
    """The demo device as nucleus lite would hold it; returns (config dir, root path).

    The demo's findings (certificates, policies, bridge, recipes) stay the same; the layout is
    lite's: nucleus ``aws.greengrass.NucleusLite``, ``system.rootPath``, the YAML in
    ``etc/greengrass`` with only what an installer writes there, everything deployed in the store.
    """
    root = base / "var" / "lib" / "greengrass"
    root.mkdir(parents=True)
    build_demo_root(root)
    effective = yaml.safe_load((root / "config" / "effectiveConfig.yaml").read_text())
    (root / "config" / "effectiveConfig.yaml").unlink()
    (root / "config").rmdir()
    system = dict(effective["system"])
    system["rootPath"] = system.pop("rootpath")
    services = dict(effective["services"])
    nucleus = services.pop("aws.greengrass.Nucleus")
    nucleus["version"] = "2.6.0"
    services = {"aws.greengrass.NucleusLite": nucleus, **services}

    config_dir = base / "etc" / "greengrass"
    (config_dir / "config.d").mkdir(parents=True)
    initial_nucleus = {k: v for k, v in nucleus.items() if k != "version"}
    (config_dir / "config.yaml").write_text(
        yaml.safe_dump(
            {"system": system, "services": {"aws.greengrass.NucleusLite": initial_nucleus}}
        )
    )
    (config_dir / "config.d" / "10-region.yaml").write_text(
        "services:\n  aws.greengrass.NucleusLite:\n    configuration:\n"
        f"      awsRegion: {nucleus['configuration']['awsRegion']}\n"
    )
    write_store(root / "config.db", {"system": system, "services": services})

    recipes = root / "packages" / "recipes"
    for old in list(recipes.iterdir()):
        recipe = yaml.safe_load(old.read_text())
        for manifest in recipe.get("Manifests") or []:
            manifest.setdefault("Platform", {})["runtime"] = "aws_nucleus_lite"
            for artifact in manifest.get("Artifacts") or []:
                if "URI" in artifact:
                    artifact["Uri"] = artifact.pop("URI")
        (recipes / f"{recipe['ComponentName']}-{recipe['ComponentVersion']}.json").write_text(
            json.dumps(recipe)
        )
        old.unlink()
    return config_dir, root
