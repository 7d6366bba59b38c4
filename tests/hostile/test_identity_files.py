"""Files awscrt reads itself are vetted first (issue 19 item 8): the MQTT transport's CA,
certificate and key were read without bound - a FIFO hung ``run --once``, /dev/zero ended in a
MemoryError, a 3 GiB sparse CA in SIGABRT. Now each is a configuration error, exit 3, at once."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.hostile import inputs
from tests.hostile.conftest import Device, cli_env, run_cli

Special = Callable[[Path], Path]

SPECIALS: dict[str, tuple[Special, str]] = {
    "fifo": (inputs.fifo, "not a regular file"),
    "dev_zero": (lambda p: Path("/dev/zero"), "not a regular file"),
    "sparse_3_gib": (lambda p: inputs.sparse_file(p, 3 * inputs.GIB), "larger than"),
}


@pytest.mark.parametrize("special", SPECIALS, ids=list(SPECIALS))
@pytest.mark.parametrize("where", ["rootCaPath", "mqtt.caPath", "certificateFilePath"])
def test_the_mqtt_transport_refuses_files_that_never_end(
    healthy: Device, tmp_path: Path, special: str, where: str
) -> None:
    make, fragment = SPECIALS[special]
    path = make(tmp_path / "identity" / "file.pem")
    mqtt: dict[str, object] = {"endpoint": "127.0.0.1", "port": 9}
    if where == "mqtt.caPath":
        mqtt["caPath"] = str(path)
    else:
        healthy.set_system(**{where: str(path)})
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"transport": "mqtt", "mqtt": mqtt}))
    args = ["run", "--once", "--only", "agent", "--greengrass-root", str(healthy.root)]
    proc = run_cli([*args, "--config", str(config)], cli_env(tmp_path), timeout=30)
    assert proc.returncode == 3, proc.stderr
    assert "transport 'mqtt'" in proc.stderr and fragment in proc.stderr
    assert "Traceback" not in proc.stderr
