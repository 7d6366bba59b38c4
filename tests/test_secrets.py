"""Secrets stay secret, probes stay in their prefix, and the agent writes nowhere else.

Every secret the agent can come across is planted — the private key file's PEM, the role's
``AWS_SECRET_ACCESS_KEY`` and ``AWS_SESSION_TOKEN``, the token exchange service's token, the
component's ``SVCUID``, a PKCS#11 PIN in a ``pkcs11:`` URI (``pin-value``), in the
``aws.greengrass.crypto.Pkcs11Provider`` configuration (``userPin``) and in the agent's own
``pkcs11.userPin`` — and the agent runs as a process, every area, at DEBUG, against moto (IAM
enforced), the TES stand-in and the nucleus stand-in. Every log line, every report (published
over IPC, written by the file transport, printed by ``check``) and every file it wrote is then
searched for each of them.

The same runs show that the S3 write probe only ever put objects under ``s3.probePrefix`` and
deleted them (the bucket is versioned, so moto still lists every version and delete marker),
and that the agent wrote nothing outside its spool and file-transport paths: a Python audit
hook (PEP 578) records every file the process opens for writing, renames, removes or creates,
and the Greengrass root, HOME, the working directory and TMPDIR are compared before and after.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from agent.greengrass.recipes import recipe_file_name
from tests.conftest import REPO, SHARED_FIXTURES
from tests.nucleus.standin import NucleusStandIn
from tests.peers.moto import MotoServer, moto_server  # noqa: F401  (fixture)
from tests.peers.tes import TokenExchangeService, tes  # noqa: F401  (fixture)
from tests.pki import make_ca, make_device_cert, make_greengrass_root, rsa_key

pytestmark = pytest.mark.peer

COMPONENT = "gghealth.HealthAgent"
ARTIFACT_COMPONENT = "com.example.Secretive"
PROBE_PREFIX = "gghealth-probe/"
RUN_TIMEOUT_S = 120.0

# The process under test: an audit hook (PEP 578) reports every write-like file operation on an
# inherited descriptor (os.write is not itself audited), then the real CLI runs.
WRAPPER = r"""
import os, sys
fd = int(os.environ.pop("GGHEALTH_AUDIT_FD"))
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
PATH_ARGS = {
    "os.rename": (0, 1), "os.remove": (0,), "os.rmdir": (0,), "os.mkdir": (0,),
    "os.chmod": (0,), "os.chown": (0,), "os.truncate": (0,), "os.symlink": (1,),
    "os.link": (1,), "os.utime": (0,), "shutil.rmtree": (0,), "shutil.copyfile": (1,),
    "shutil.move": (0, 1), "sqlite3.connect": (0,),
}
def record(event, path):
    if isinstance(path, (str, bytes, os.PathLike)):
        text = os.fsdecode(path)
        if text in ("", ":memory:"):
            return
        line = event + "\t" + os.path.abspath(text) + "\n"
        os.write(fd, line.encode("utf-8", "surrogateescape"))
def hook(event, args):
    if event == "open":
        path, mode, flags = args
        if (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
            isinstance(flags, int) and flags & WRITE_FLAGS
        ):
            record(event, path)
    elif event in PATH_ARGS:
        for index in PATH_ARGS[event]:
            if index < len(args):
                record(event, args[index])
sys.addaudithook(hook)
from agent.cli import main
sys.exit(main(sys.argv[1:]))
"""


@dataclass
class Secrets:
    """Every planted secret, by where it was planted."""

    values: dict[str, str] = field(default_factory=dict)

    def add(self, name: str, value: str) -> str:
        assert len(value) >= 8, "a short secret would match by accident"
        self.values[name] = value
        return value

    def leaked(self, text: str | bytes) -> list[str]:
        """The names of the secrets found in ``text``."""
        raw = text if isinstance(text, bytes) else text.encode("utf-8", "surrogateescape")
        return [name for name, value in self.values.items() if value.encode() in raw]


@dataclass
class Run:
    """One run of the agent process and what it left."""

    args: list[str]
    returncode: int
    stdout: str
    stderr: str
    writes: list[tuple[str, str]]


@dataclass
class World:
    """moto with a versioned bucket, a role that may probe-write only under the prefix, and an
    artifact a deployed component needs."""

    moto: MotoServer
    bucket: str
    role: str
    creds: dict[str, Any]
    artifact_key: str


@pytest.fixture(scope="module")
def world(moto_server: MotoServer) -> World:  # noqa: F811
    suffix = uuid.uuid4().hex[:8]
    bucket, role = f"gg-secrets-{suffix}", f"GreengrassV2TokenExchangeRole-{suffix}"
    s3 = moto_server.client("s3")
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    artifact_key = f"{ARTIFACT_COMPONENT}/1.0.0/app.zip"
    s3.put_object(Bucket=bucket, Key=artifact_key, Body=b"PK\x03\x04 artifact")
    arn = f"arn:aws:s3:::{bucket}"
    moto_server.create_role(
        role,
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": [
                        "s3:GetObject",
                        "s3:GetBucketLocation",
                        "s3:ListBucket",
                        "s3:HeadBucket",
                    ],
                    "Resource": [arn, f"{arn}/*"],
                },
                {
                    "Effect": "Allow",
                    "Action": ["s3:PutObject", "s3:DeleteObject"],
                    "Resource": f"{arn}/{PROBE_PREFIX}*",
                },
            ],
        },
    )
    creds = moto_server.assume_role(role, session="pi-42")
    return World(moto_server, bucket, role, creds, artifact_key)


def _snapshot(*roots: Path) -> dict[str, tuple[int, int, int]]:
    """(size, mtime_ns, mode) of every entry under ``roots``."""
    found: dict[str, tuple[int, int, int]] = {}
    for root in roots:
        for directory, dirs, files in os.walk(root):
            for name in dirs + files:
                path = os.path.join(directory, name)
                st = os.lstat(path)
                found[path] = (st.st_size, st.st_mtime_ns, st.st_mode)
    return found


@dataclass
class Setup:
    """Everything one test run needs; built once per test."""

    secrets: Secrets
    root: Path
    pkcs11_root: Path
    """A copy of ``root`` whose ``privateKeyPath`` is a ``pkcs11:`` URI with ``pin-value``."""
    inputs: Path
    home: Path
    cwd: Path
    tmpdir: Path
    spool: Path
    reports: Path
    env: dict[str, str]
    nucleus: NucleusStandIn


@pytest.fixture
def setup(
    world: World,
    tes: TokenExchangeService,  # noqa: F811
    nucleus: NucleusStandIn,
    tmp_path: Path,
) -> Iterator[Setup]:
    secrets = Secrets()
    device = make_device_cert(make_ca("Secrets Test CA", key=rsa_key()))
    root = make_greengrass_root(tmp_path, device=device).root
    key_pem = (root / "privKey.key").read_text()
    secrets.add("private key (whole PEM)", key_pem.strip())
    for number, line in enumerate(key_pem.splitlines()[1:-1][:6]):
        secrets.add(f"private key line {number + 1}", line)
    secrets.add("AWS_SECRET_ACCESS_KEY", world.creds["SecretAccessKey"])
    secrets.add("AWS_SESSION_TOKEN", world.creds["SessionToken"])
    secrets.add("TES token", tes.token)
    secrets.add("SVCUID", nucleus.svcuid)
    provider_pin = secrets.add("Pkcs11Provider userPin", "provider-pin-" + uuid.uuid4().hex[:12])
    agent_pin = secrets.add("pkcs11.userPin", "agent-pin-" + uuid.uuid4().hex[:12])
    uri_pin = secrets.add("pkcs11 URI pin-value", "uri-pin-" + uuid.uuid4().hex[:12])
    tes.serve(world.creds)

    config_path = root / "config" / "effectiveConfig.yaml"
    doc = yaml.safe_load(config_path.read_text())
    doc["services"]["aws.greengrass.Nucleus"]["configuration"]["awsRegion"] = "us-east-1"
    doc["services"]["aws.greengrass.crypto.Pkcs11Provider"] = {
        "componentType": "PLUGIN",
        "configuration": {
            "name": "softhsm",
            "library": str(tmp_path / "no-such-libsofthsm2.so"),
            "slot": 1,
            "userPin": provider_pin,
        },
    }
    doc["services"][ARTIFACT_COMPONENT] = {"version": "1.0.0", "configuration": {}}
    config_path.write_text(yaml.safe_dump(doc, sort_keys=False))
    recipes = root / "packages" / "recipes"
    recipes.mkdir(parents=True)
    (recipes / recipe_file_name(ARTIFACT_COMPONENT, "1.0.0")).write_text(
        yaml.safe_dump(
            {
                "RecipeFormatVersion": "2020-01-25",
                "ComponentName": ARTIFACT_COMPONENT,
                "ComponentVersion": "1.0.0",
                "Manifests": [
                    {
                        "Platform": {"os": "linux"},
                        "Artifacts": [{"URI": f"s3://{world.bucket}/{world.artifact_key}"}],
                    }
                ],
            }
        )
    )
    pkcs11_root = tmp_path / "pkcs11-root"
    shutil.copytree(root, pkcs11_root, symlinks=True)
    doc["system"]["privateKeyPath"] = (
        f"pkcs11:token=gghealth-token;object=iotkey;type=private?pin-value={uri_pin}"
    )
    doc["system"]["rootpath"] = str(pkcs11_root)
    (pkcs11_root / "config" / "effectiveConfig.yaml").write_text(
        yaml.safe_dump(doc, sort_keys=False)
    )
    home, cwd, tmpdir, inputs = (tmp_path / n for n in ("home", "cwd", "tmpdir", "inputs"))
    for directory in (home, cwd, tmpdir, inputs):
        directory.mkdir()
    spool, reports = tmp_path / "spool", tmp_path / "reports"
    policy = SHARED_FIXTURES / "iot-policies" / "greengrass-v2-core-device-minimal-iot-policy.json"
    (inputs / "agent.yaml").write_text(
        yaml.safe_dump(
            {
                "s3": {
                    "buckets": [{"name": world.bucket, "access": "readwrite"}],
                    "expectedRole": world.role,
                    "probePrefix": PROBE_PREFIX,
                },
                "subscriptions": {"iotPolicyFile": str(policy)},
                "spool": {"path": str(spool)},
                "file": {"path": str(reports / "report.json"), "historyMaxBytes": 1_000_000},
                "pkcs11": {"userPin": agent_pin},
            }
        )
    )
    nucleus.set_configuration(COMPONENT, {"intervalSeconds": 300})
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "TMPDIR": str(tmpdir),
        "PYTHONDONTWRITEBYTECODE": "1",
        "AWS_ENDPOINT_URL": world.moto.url,
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": world.creds["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": world.creds["SecretAccessKey"],
        "AWS_SESSION_TOKEN": world.creds["SessionToken"],
        "AWS_IOT_THING_NAME": "pi-42",
        **tes.env(),
        **nucleus.env(),
    }
    yield Setup(secrets, root, pkcs11_root, inputs, home, cwd, tmpdir, spool, reports, env, nucleus)


def run_agent(
    s: Setup,
    *args: str,
    root: Path | None = None,
    config: Path | None = None,
    env: dict[str, str] | None = None,
) -> Run:
    """The CLI as a process under the audit hook, at DEBUG, in the scratch working directory."""
    read_fd, write_fd = os.pipe()
    argv = ["--log-level", "DEBUG", *args, "--greengrass-root", str(root or s.root)]
    argv += ["--config", str(config or s.inputs / "agent.yaml")]
    try:
        proc = subprocess.Popen(
            [sys.executable, "-c", WRAPPER, *argv],
            cwd=s.cwd,
            env={
                **s.env,
                **(env or {}),
                "GGHEALTH_AUDIT_FD": str(write_fd),
                "PYTHONPATH": str(REPO),
            },
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            pass_fds=(write_fd,),
        )
    finally:
        os.close(write_fd)
    with os.fdopen(read_fd, "rb") as audit:
        out, err = proc.communicate(timeout=RUN_TIMEOUT_S)
        recorded = audit.read().decode("utf-8", "surrogateescape")
    writes = [tuple(line.split("\t", 1)) for line in recorded.splitlines() if "\t" in line]
    return Run(argv, proc.returncode, out, err, writes)  # type: ignore[arg-type]


def _outside(writes: list[tuple[str, str]], allowed: list[Path]) -> list[tuple[str, str]]:
    roots = [str(a.resolve()) for a in allowed]
    return [
        (event, path)
        for event, path in writes
        if not any(path == r or path.startswith(r + os.sep) for r in roots)
    ]


def _files_under(*roots: Path) -> Iterator[Path]:
    for root in roots:
        if root.exists():
            yield from (p for p in root.rglob("*") if p.is_file())


def test_no_secret_leaves_the_agent_probes_stay_in_their_prefix_and_writes_stay_put(
    setup: Setup, world: World
) -> None:
    s = setup
    tes_config = s.inputs / "agent-tes.yaml"
    with_tes = yaml.safe_load((s.inputs / "agent.yaml").read_text())
    with_tes["s3"]["credentials"] = {"source": "tes"}
    tes_config.write_text(yaml.safe_dump(with_tes))
    watched = (s.root, s.pkcs11_root, s.home, s.cwd, s.tmpdir, s.inputs)
    before = _snapshot(*watched)

    # A: the component over IPC, credentials from the environment, the private key as a file.
    run_ipc = run_agent(s, "run", "--once")
    # B: the file transport, credentials from the TES, the key on a token named with pin-value.
    run_file = run_agent(
        s, "run", "--once", "--transport", "file", root=s.pkcs11_root, config=tes_config
    )
    # C: a one-shot check printing the report.
    run_check = run_agent(s, "check", "--format", "json")
    # D: the same with a secret key AWS rejects and a TES token the TES refuses: error paths.
    wrong_key = s.secrets.add("rejected AWS_SECRET_ACCESS_KEY", "wrong-" + uuid.uuid4().hex * 2)
    wrong_token = s.secrets.add("refused TES token", "wrong-tes-" + uuid.uuid4().hex)
    bad = {"AWS_SECRET_ACCESS_KEY": wrong_key, "AWS_CONTAINER_AUTHORIZATION_TOKEN": wrong_token}
    run_rejected = run_agent(s, "check", "--format", "json", env=bad)
    run_refused = run_agent(s, "check", "--format", "json", config=tes_config, env=bad)
    runs = {
        "run --once (ipc)": run_ipc,
        "run --once (file, tes)": run_file,
        "check": run_check,
        "check (rejected key)": run_rejected,
        "check (refused TES token)": run_refused,
    }

    for name, run in runs.items():
        expected = (0,) if name.startswith("run") else (0, 1, 2)
        assert run.returncode in expected, (name, run.returncode, run.stderr[-3000:])
        assert "Traceback" not in run.stderr, run.stderr[-3000:]
        # As a component (SVCUID set) ``run`` writes its DEBUG and INFO lines to stdout.
        debug_on = run.stdout if name.startswith("run") else run.stderr
        assert any('"level": "debug"' in line for line in debug_on.splitlines()), name

    # --- the reports and logs: every area ran, nothing secret in any of them --------------
    published = [p.payload for p in s.nucleus.publishes]
    assert published, "the IPC run published nothing"
    reports = [json.loads(p) for p in published] + [json.loads(run_check.stdout)]
    reports += [
        json.loads(line) for line in (s.reports / "report.json.jsonl").read_text().splitlines()
    ]
    for report in reports:
        areas = {c["id"].split(".")[0] for c in report["checks"]}
        assert areas >= {"certificate", "subscription", "s3"}, areas
    texts: dict[str, str | bytes] = {f"{n} stdout": r.stdout for n, r in runs.items()}
    texts |= {f"{n} stderr": r.stderr for n, r in runs.items()}
    texts |= {f"IPC publish {i}": p for i, p in enumerate(published)}
    texts |= {str(p): p.read_bytes() for p in _files_under(s.spool, s.reports)}
    leaks = {where: s.secrets.leaked(text) for where, text in texts.items()}
    assert {w: names for w, names in leaks.items() if names} == {}

    # --- the write probe: under the prefix, deleted, and nothing else touched ---------------
    s3 = world.moto.client("s3")
    versions = s3.list_object_versions(Bucket=world.bucket)
    probe_keys = {v["Key"] for v in versions.get("Versions", []) if v["Key"] != world.artifact_key}
    assert probe_keys, "no write probe was made"
    assert all(k.startswith(PROBE_PREFIX) for k in probe_keys), probe_keys
    latest_markers = {m["Key"] for m in versions.get("DeleteMarkers", []) if m["IsLatest"]}
    assert probe_keys <= latest_markers  # every probe object was deleted again
    current = [o["Key"] for o in s3.list_objects_v2(Bucket=world.bucket).get("Contents", [])]
    assert current == [world.artifact_key]
    artifact_versions = [v for v in versions["Versions"] if v["Key"] == world.artifact_key]
    assert len(artifact_versions) == 1  # the agent never wrote the artifact

    # --- writes: only the spool and the file transport's directory --------------------------
    assert _outside(run_ipc.writes, [s.spool]) == []
    assert _outside(run_file.writes, [s.spool, s.reports]) == []
    for run in (run_check, run_rejected, run_refused):
        assert _outside(run.writes, []) == []
    statuses = {
        (c["id"], c["target"]): (c["status"], c["details"].get("reason"))
        for run in (run_rejected, run_refused)
        for c in json.loads(run.stdout)["checks"]
        if c["id"] == "s3.credentials"
    }
    assert statuses == {
        ("s3.credentials", "default"): ("CRITICAL", "bad_credentials"),
        ("s3.credentials", "tes"): ("CRITICAL", "access_denied"),
    }
    # Delivered over IPC, nothing was spooled: that run wrote nothing at all (the spool file is
    # created with the first report that has to wait).
    assert run_ipc.writes == []
    assert any(p.startswith(str(s.reports)) for _, p in run_file.writes)  # the hook sees writes
    assert _snapshot(*watched) == before


# --- the scrubbing itself, on every shape a secret can take in a log event ------------------------

LOGGER = r"""
import os, sys
from agent.log import configure, get_logger
configure("DEBUG", json=True)
log = get_logger("probe")
pem = open(sys.argv[1]).read()
log.info("key loaded " + pem)
log.info("half a key", data=pem[: len(pem) // 2])
log.info("key bytes", data=pem.encode())
log.warning("creds", creds={"SecretAccessKey": os.environ["AWS_SECRET_ACCESS_KEY"],
                            "SessionToken": os.environ["AWS_SESSION_TOKEN"]})
log.warning("raw value " + os.environ["AWS_SECRET_ACCESS_KEY"])
log.warning("header", header="Authorization: " + os.environ["AWS_CONTAINER_AUTHORIZATION_TOKEN"])
log.error("ipc", svcuid=os.environ["SVCUID"], text="token=" + os.environ["SVCUID"])
log.error("uri", uri="pkcs11:token=t;object=k?pin-value=" + sys.argv[2])
log.error("provider", configuration={"library": "/usr/lib/x.so", "userPin": sys.argv[3]})
try:
    raise RuntimeError("login failed: userPin=" + sys.argv[3] + " token " + os.environ["SVCUID"])
except RuntimeError:
    log.exception("failed")
"""


def test_the_log_processor_scrubs_every_shape(tmp_path: Path) -> None:
    device = make_device_cert(make_ca("Scrub CA"))
    key = tmp_path / "key.pem"
    key.write_bytes(device.key_pem())
    secrets = Secrets()
    body = key.read_text().splitlines()[1:-1]
    for number, line in enumerate(body[:4]):
        secrets.add(f"key line {number + 1}", line)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(REPO),
        "AWS_SECRET_ACCESS_KEY": secrets.add(
            "secret key", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLE"
        ),
        "AWS_SESSION_TOKEN": secrets.add("session token", "IQoJb3JpZ2luX2VjEXAMPLETOKEN" * 3),
        "AWS_CONTAINER_AUTHORIZATION_TOKEN": secrets.add("tes token", "tes-" + "9" * 30),
        "SVCUID": secrets.add("svcuid", "SVCUID-" + uuid.uuid4().hex),
    }
    uri_pin = secrets.add("uri pin", "uri-pin-" + uuid.uuid4().hex[:10])
    user_pin = secrets.add("user pin", "user-pin-" + uuid.uuid4().hex[:10])
    proc = subprocess.run(
        [sys.executable, "-c", LOGGER, str(key), uri_pin, user_pin],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 10, proc.stderr  # one JSON line per event, none lost
    events = [json.loads(line) for line in lines]
    assert all("[REDACTED]" in json.dumps(e) for e in events), events
    assert secrets.leaked(proc.stderr) == []
