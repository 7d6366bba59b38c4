"""A SoftHSM2 token in a private directory, holding an RSA and an EC key with known labels and ids.

``SOFTHSM2_CONF`` points SoftHSM2 at a config in ``tmp_path`` (its ``directories.tokendir``), so
tests never touch the machine's tokens. Keys are minted with ``openssl genpkey`` and imported
with ``softhsm2-util --import`` (PKCS#8 PEM), which stores the private key and its public key
object under the same label and CKA_ID, as a provisioning tool would.

Set the fixture's ``env`` on a subprocess (or ``monkeypatch.setenv``) before the library is
loaded: SoftHSM2 reads ``SOFTHSM2_CONF`` once, at ``C_Initialize``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from tests.peers.base import unavailable

LIBRARY_CANDIDATES = (
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
)
TOKEN_LABEL = "gghealth-token"
USER_PIN = "1234"
SO_PIN = "123456"


@dataclass(frozen=True)
class TokenObject:
    """A key pair on the token and where its PEM copy lives (to mint certificates for it)."""

    label: str
    id_hex: str
    key_pem: Path

    @property
    def uri(self) -> str:
        """The RFC 7512 URI Greengrass puts in ``system.privateKeyPath``."""
        return f"pkcs11:token={TOKEN_LABEL};object={self.label};type=private"

    @property
    def greengrass_uri(self) -> str:
        """The URI as the Greengrass docs write it: the token comes from the provider's slot."""
        return f"pkcs11:object={self.label};type=private"

    def private_key(self) -> object:
        """The private key (test side only, to sign certificates)."""
        return load_pem_private_key(self.key_pem.read_bytes(), None)


@dataclass(frozen=True)
class SoftHsm:
    """The initialised token."""

    library: str
    conf: Path
    slot: int
    """The slot SoftHSM2 gave the token (what the Pkcs11Provider ``slot`` key names)."""
    rsa: TokenObject
    ec: TokenObject
    token_label: str = TOKEN_LABEL
    user_pin: str = USER_PIN

    @property
    def env(self) -> dict[str, str]:
        """Environment selecting this token directory."""
        return {"SOFTHSM2_CONF": str(self.conf)}


def library() -> str:
    """Path of libsofthsm2.so."""
    for candidate in LIBRARY_CANDIDATES:
        if os.path.exists(candidate):
            return candidate
    unavailable("libsofthsm2.so not found (apt-get install softhsm2)")
    raise AssertionError("unreachable")


def _run(*args: str, env: dict[str, str]) -> str:
    done = subprocess.run(args, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        pytest.fail(f"{' '.join(args[:2])} failed: {done.stdout} {done.stderr}")
    return done.stdout


def make_token(directory: Path) -> SoftHsm:
    """Initialise a token under ``directory`` and import an RSA-2048 and a P-256 key."""
    util = shutil.which("softhsm2-util")
    openssl = shutil.which("openssl")
    if not util or not openssl:
        unavailable("softhsm2-util or openssl is not installed (apt-get install softhsm2 openssl)")
    lib = library()
    tokens = directory / "tokens"
    tokens.mkdir(parents=True, exist_ok=True)
    conf = directory / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n"
    )
    env = {**os.environ, "SOFTHSM2_CONF": str(conf)}
    init = _run(
        "softhsm2-util",
        *("--init-token", "--free", "--label", TOKEN_LABEL),
        *("--so-pin", SO_PIN, "--pin", USER_PIN),
        env=env,
    )
    objects = {}
    for kind, label, id_hex, opts in [
        ("rsa", "device-rsa", "01", ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]),
        ("ec", "device-ec", "02", ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"]),
    ]:
        pem = directory / f"{label}.pem"
        _run("openssl", "genpkey", *opts, "-out", str(pem), env=env)
        _run(
            "softhsm2-util",
            *("--import", str(pem), "--token", TOKEN_LABEL, "--label", label),
            *("--id", id_hex, "--pin", USER_PIN),
            env=env,
        )
        objects[kind] = TokenObject(label, id_hex, pem)
    # "The token has been initialized and is reassigned to slot 339984907"
    slot = int(re.findall(r"slot (\d+)", init)[-1])
    return SoftHsm(lib, conf, slot, objects["rsa"], objects["ec"])


@pytest.fixture(scope="session")
def softhsm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SoftHsm]:
    """A token with ``rsa`` and ``ec`` key pairs; SOFTHSM2_CONF set for this process too.

    Session-scoped: SoftHSM2 reads SOFTHSM2_CONF once per process (at C_Initialize), so every
    in-process user of the library must share one token directory.
    """
    token = make_token(tmp_path_factory.mktemp("softhsm"))
    previous = os.environ.get("SOFTHSM2_CONF")
    os.environ["SOFTHSM2_CONF"] = str(token.conf)
    try:
        yield token
    finally:
        if previous is None:
            os.environ.pop("SOFTHSM2_CONF", None)
        else:
            os.environ["SOFTHSM2_CONF"] = previous
