"""Reusable test PKI: CAs, device certificates and keys minted with ``cryptography`` or with the
``openssl`` CLI (an independent minter), and realistic Greengrass roots built in ``tmp_path``.

Other test packages import these builders::

    from tests.pki import make_ca, make_device_cert, make_greengrass_root, make_context, NOW

Everything is deterministic except key generation; validity windows are relative to
:data:`NOW`, the pinned clock handed to ``CheckContext``.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import random
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from agent.checks.base import CheckContext, Kept
from agent.config import AgentConfig, build_config
from agent.greengrass.root import GreengrassRoot, load_root
from tests.conftest import SHARED_FIXTURES

NOW = dt.datetime(2026, 11, 29, 18, 0, 0, tzinfo=dt.timezone.utc)
"""The pinned "now" of every certificate test."""
DAY = dt.timedelta(days=1)
AWS_ENDPOINT = "a1b2c3d4e5f6g7-ats.iot.us-west-2.amazonaws.com"
THING = "pi-42"

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


# --------------------------------------------------------------------------- cryptography minting


def name(cn: str, org: str | None = None) -> x509.Name:
    """A distinguished name ``CN=cn[,O=org]``."""
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if org:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    return x509.Name(attrs)


def rsa_key(bits: int = 2048, exponent: int = 65537) -> rsa.RSAPrivateKey:
    """A fresh RSA key."""
    return rsa.generate_private_key(public_exponent=exponent, key_size=bits)


def ec_key(curve: ec.EllipticCurve | None = None) -> ec.EllipticCurvePrivateKey:
    """A fresh EC key (P-256 unless told)."""
    return ec.generate_private_key(curve or ec.SECP256R1())


@dataclass(frozen=True)
class Issued:
    """A certificate with its private key."""

    cert: x509.Certificate
    key: Any

    def pem(self) -> bytes:
        """The certificate as PEM."""
        return cert_pem(self.cert)

    def key_pem(self, fmt: str = "pkcs8", password: bytes | None = None) -> bytes:
        """The private key as PEM (``pkcs8`` or ``traditional`` = PKCS#1 / SEC1)."""
        return key_pem(self.key, fmt, password)


def cert_pem(*certs: x509.Certificate) -> bytes:
    """Concatenated PEM of ``certs``."""
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


def key_pem(key: Any, fmt: str = "pkcs8", password: bytes | None = None) -> bytes:
    """A private key as PEM, optionally encrypted."""
    formats = {
        "pkcs8": serialization.PrivateFormat.PKCS8,
        "traditional": serialization.PrivateFormat.TraditionalOpenSSL,
    }
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    return key.private_bytes(serialization.Encoding.PEM, formats[fmt], encryption)  # type: ignore[no-any-return]


def _builder(
    subject: x509.Name,
    issuer: x509.Name,
    public_key: Any,
    not_before: dt.datetime,
    not_after: dt.datetime,
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )


def make_ca(
    cn: str = "Test Root CA",
    *,
    key: Any = None,
    issuer: Issued | None = None,
    not_before: dt.datetime = NOW - 365 * DAY,
    not_after: dt.datetime = NOW + 3650 * DAY,
    key_usage: bool = True,
    hash_alg: hashes.HashAlgorithm | None = None,
) -> Issued:
    """A CA certificate: self-signed root, or an intermediate when ``issuer`` is given."""
    key = key or ec_key()
    b = _builder(
        name(cn, "Test PKI"),
        issuer.cert.subject if issuer else name(cn, "Test PKI"),
        key.public_key(),
        not_before,
        not_after,
    ).add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    if key_usage:
        b = b.add_extension(
            x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True
        )
    if issuer:
        b = b.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),
            critical=False,
        )
    signer = issuer.key if issuer else key
    return Issued(b.sign(signer, hash_alg or hashes.SHA256()), key)


def make_device_cert(
    ca: Issued,
    cn: str = "AWS IoT Certificate",
    *,
    key: Any = None,
    not_before: dt.datetime = NOW - 30 * DAY,
    not_after: dt.datetime = NOW + 365 * DAY,
    is_ca: bool = False,
    eku: Sequence[x509.ObjectIdentifier] | None = None,
    san: Sequence[str] | None = None,
    hash_alg: hashes.HashAlgorithm | None = None,
) -> Issued:
    """An end-entity certificate signed by ``ca``, shaped like an AWS IoT device certificate
    (no SAN, no EKU, basicConstraints cA=FALSE) unless told otherwise."""
    key = key or rsa_key()
    b = (
        _builder(name(cn), ca.cert.subject, key.public_key(), not_before, not_after)
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()),
            critical=False,
        )
    )
    if eku is not None:
        b = b.add_extension(x509.ExtendedKeyUsage(list(eku)), critical=False)
    if san:
        b = b.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(s) for s in san]), critical=False
        )
    return Issued(b.sign(ca.key, hash_alg or hashes.SHA256()), key)


def make_self_signed(
    cn: str = "self-signed",
    *,
    key: Any = None,
    is_ca: bool = False,
    not_before: dt.datetime = NOW - DAY,
    not_after: dt.datetime = NOW + 365 * DAY,
) -> Issued:
    """A self-signed certificate (a CA or not)."""
    key = key or ec_key()
    b = _builder(name(cn), name(cn), key.public_key(), not_before, not_after).add_extension(
        x509.BasicConstraints(ca=is_ca, path_length=None), critical=True
    )
    return Issued(b.sign(key, hashes.SHA256()), key)


CLIENT_AUTH = ExtendedKeyUsageOID.CLIENT_AUTH
SERVER_AUTH = ExtendedKeyUsageOID.SERVER_AUTH


# ----------------------------------------------------------------------------- ROCA-shaped keys

SMALL_PRIMES = [p for p in range(2, 168) if all(p % d for d in range(2, math.isqrt(p) + 1))]
ROCA_PRIMORIAL = math.prod(SMALL_PRIMES)
"""M of the Infineon RSALib for 512-bit keys: the product of the first 39 primes (2..167)."""


def is_probable_prime(n: int, rng: random.Random, rounds: int = 24) -> bool:
    """Miller-Rabin."""
    if n < 2:
        return False
    for p in SMALL_PRIMES:
        if n % p == 0:
            return n == p
    d, s = n - 1, 0
    while d % 2 == 0:
        d //= 2
        s += 1
    for _ in range(rounds):
        x = pow(rng.randrange(2, n - 1), d, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = x * x % n
            if x == n - 1:
                break
        else:
            return False
    return True


def roca_prime(bits: int, rng: random.Random) -> int:
    """A prime of the Infineon RSALib shape ``k*M + (65537^a mod M)`` (Nemec et al., CCS 2017)."""
    # p in [sqrt(2) * 2^(bits-1), 2^bits): then p*q has exactly 2*bits bits
    low = -(-(math.isqrt(1 << (2 * bits - 1)) + 1) // ROCA_PRIMORIAL)
    high = ((1 << bits) - 1) // ROCA_PRIMORIAL - 1
    while True:
        base = pow(65537, rng.randrange(1, ROCA_PRIMORIAL), ROCA_PRIMORIAL)
        p = rng.randrange(low, high) * ROCA_PRIMORIAL + base
        if (p - 1) % 65537 and is_probable_prime(p, rng):
            return p


def rsa_from_primes(p: int, q: int, e: int = 65537) -> rsa.RSAPrivateKey:
    """An RSA private key object for given primes."""
    d = pow(e, -1, math.lcm(p - 1, q - 1))
    numbers = rsa.RSAPrivateNumbers(
        p=p,
        q=q,
        d=d,
        dmp1=d % (p - 1),
        dmq1=d % (q - 1),
        iqmp=pow(q, -1, p),
        public_numbers=rsa.RSAPublicNumbers(e, p * q),
    )
    return numbers.private_key()


def make_roca_key(bits: int = 2048, seed: int = 2017) -> rsa.RSAPrivateKey:
    """A real RSA key whose primes have the ROCA structure (so its modulus is fingerprinted)."""
    rng = random.Random(seed)
    p = roca_prime(bits // 2, rng)
    q = roca_prime(bits // 2, rng)
    while q == p:
        q = roca_prime(bits // 2, rng)
    return rsa_from_primes(p, q)


# ------------------------------------------------------------------------------- openssl minting


def openssl_bin() -> str:
    """Path of the openssl CLI; a missing binary fails under CI and skips elsewhere."""
    found = shutil.which("openssl")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("openssl CLI not installed (apt-get install openssl)")
        pytest.skip("openssl CLI not installed")
    return found


def openssl(*args: str | os.PathLike[str], cwd: Path | None = None) -> str:
    """Run ``openssl args...``; raise with its stderr when it fails."""
    proc = subprocess.run(
        [openssl_bin(), *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=60
    )
    if proc.returncode != 0:
        raise AssertionError(f"openssl {' '.join(map(str, args))} failed: {proc.stderr}")
    return proc.stdout


def openssl_genkey(
    path: Path, kind: str = "ec", bits: int = 2048, traditional: bool = False
) -> Path:
    """``openssl genpkey`` an EC P-256, RSA or other key (PKCS#8; ``traditional``: SEC1/PKCS#1)."""
    if kind == "ec":
        openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", path)
    elif kind == "rsa":
        openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", f"rsa_keygen_bits:{bits}", "-out", path)
    else:
        openssl("genpkey", "-algorithm", kind, "-out", path)
    if traditional:
        openssl_rewrite(path, "pkey", "-traditional")
    return path


def openssl_rewrite(path: Path, *args: str) -> Path:
    """``openssl <args> -in path`` written back over ``path`` (openssl cannot do it in place)."""
    tmp = path.with_name(path.name + ".new")
    openssl(*args, "-in", path, "-out", tmp)
    tmp.replace(path)
    return path


def openssl_mint_ca(
    tmp_path: Path, cn: str = "OpenSSL Root CA", days: int = 3650
) -> tuple[Path, Path]:
    """A root CA the way AWS's "register your CA" guide makes one (``openssl req -x509``)."""
    key = openssl_genkey(tmp_path / f"{cn.replace(' ', '_')}.key")
    cert = tmp_path / f"{cn.replace(' ', '_')}.pem"
    openssl(
        "req",
        "-x509",
        "-new",
        "-key",
        key,
        "-sha256",
        "-days",
        days,
        "-subj",
        f"/CN={cn}",
        "-out",
        cert,
    )
    return cert, key


def openssl_mint_device(
    tmp_path: Path,
    ca_cert: Path,
    ca_key: Path,
    *,
    cn: str = THING,
    kind: str = "rsa",
    days: int = 365,
    extensions: str | None = None,
    traditional: bool = False,
) -> tuple[Path, Path]:
    """A device key + CSR + certificate signed by the CA with ``openssl x509 -req``."""
    key = openssl_genkey(tmp_path / f"{cn}.key", kind, traditional=traditional)
    cert = openssl_sign_device(tmp_path, key, ca_cert, ca_key, cn=cn, days=days,
                               extensions=extensions)  # fmt: skip
    return cert, key


def openssl_sign_device(
    tmp_path: Path,
    key: Path,
    ca_cert: Path,
    ca_key: Path,
    *,
    cn: str = THING,
    days: int = 365,
    extensions: str | None = None,
) -> Path:
    """A CSR for an existing ``key`` and its certificate signed by the CA (``x509 -req``)."""
    csr = tmp_path / f"{cn}.csr"
    cert = tmp_path / f"{cn}.crt"
    openssl("req", "-new", "-key", key, "-subj", f"/CN={cn}", "-out", csr)
    args: list[str | Path] = [
        "x509",
        "-req",
        "-in",
        csr,
        "-CA",
        ca_cert,
        "-CAkey",
        ca_key,
        "-CAcreateserial",
        "-days",
        str(days),
        "-sha256",
        "-out",
        cert,
    ]
    if extensions is not None:
        ext = tmp_path / f"{cn}.ext"
        ext.write_text(f"[v3]\n{extensions}\n")
        args += ["-extfile", ext, "-extensions", "v3"]
    openssl(*args)
    return cert


# ----------------------------------------------------------------------------- Greengrass roots


def write(path: Path, data: bytes | str, mode: int = 0o644) -> Path:
    """Write a file with an exact mode (umask ignored)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    os.chmod(path, mode)
    return path


def amazon_root_pem(shared_fixtures: Path, which: int = 1) -> bytes:
    """The real Amazon Root CA 1 or 3 from shared/fixtures/certs."""
    return (shared_fixtures / "certs" / f"AmazonRootCA{which}.pem").read_bytes()


def make_greengrass_root(
    tmp_path: Path,
    *,
    device: Issued | None = None,
    device_pem: bytes | None = None,
    key_pem_bytes: bytes | None = None,
    root_ca_pem: bytes | None = None,
    endpoint: str | None = AWS_ENDPOINT,
    system_overrides: Mapping[str, Any] | None = None,
    omit: Sequence[str] = (),
    agent_config: Mapping[str, Any] | None = None,
) -> GreengrassRoot:
    """A Greengrass v2 root as the installer leaves it, loaded with :func:`load_root`.

    ``<root>/thingCert.crt`` (644), ``privKey.key`` (600), ``rootCA.pem`` (644, the real Amazon
    Root CA 1 unless told), ``config/effectiveConfig.yaml`` (``config/`` 700). ``omit`` drops
    system keys (e.g. ``rootCaPath``); ``system_overrides`` replaces values (e.g. a pkcs11 URI).
    """
    root = tmp_path / "greengrass" / "v2"
    root.mkdir(parents=True, exist_ok=True)
    os.chmod(root, 0o755)
    if device is None and device_pem is None:
        device = make_device_cert(make_ca("Test AWS IoT Device CA"))
    if device_pem is None:
        assert device is not None
        device_pem = device.pem()
    if key_pem_bytes is None:
        assert device is not None
        try:  # the installer's openssl writes PKCS#1 / SEC1 for RSA / EC
            key_pem_bytes = device.key_pem("traditional")
        except ValueError:  # EdDSA keys exist only as PKCS#8
            key_pem_bytes = device.key_pem("pkcs8")
    if root_ca_pem is None:
        root_ca_pem = amazon_root_pem(SHARED_FIXTURES)
    write(root / "thingCert.crt", device_pem, 0o644)
    write(root / "privKey.key", key_pem_bytes, 0o600)
    write(root / "rootCA.pem", root_ca_pem, 0o644)
    system: dict[str, Any] = {
        "certificateFilePath": str(root / "thingCert.crt"),
        "privateKeyPath": str(root / "privKey.key"),
        "rootCaPath": str(root / "rootCA.pem"),
        "rootpath": str(root),
        "thingName": THING,
    }
    system.update(system_overrides or {})
    for key in omit:
        system.pop(key, None)
    nucleus: dict[str, Any] = {
        "awsRegion": "us-west-2",
        "iotCredEndpoint": "c1a2b3c4d5e6f7.credentials.iot.us-west-2.amazonaws.com",
        "iotRoleAlias": "GreengrassV2TokenExchangeRoleAlias",
        "runWithDefault": {"posixUser": "ggc_user:ggc_group"},
        "mqtt": {"spooler": {}},
    }
    if endpoint is not None:
        nucleus["iotDataEndpoint"] = endpoint
    doc = {
        "system": system,
        "services": {
            "aws.greengrass.Nucleus": {
                "componentType": "NUCLEUS",
                "version": "2.14.0",
                "configuration": nucleus,
            },
            "gghealth.HealthAgent": {
                "version": "0.1.0",
                "configuration": dict(agent_config or {}),
            },
        },
    }
    config_dir = root / "config"
    config_dir.mkdir(exist_ok=True)
    write(config_dir / "effectiveConfig.yaml", yaml.safe_dump(doc, sort_keys=False), 0o600)
    os.chmod(config_dir, 0o700)
    return load_root(root)


def make_context(
    root: GreengrassRoot,
    config: Mapping[str, Any] | AgentConfig | None = None,
    *,
    now: dt.datetime = NOW,
    privileged: bool = True,
    env: Mapping[str, str] | None = None,
    kept: Kept | None = None,
) -> CheckContext:
    """A CheckContext with a pinned clock, an explicit environment and (optionally) the state
    kept from a previous cycle."""
    cfg = config if isinstance(config, AgentConfig) else build_config(dict(config or {}))
    return CheckContext(
        config=cfg,
        greengrass=root,
        clock=lambda: now,
        privileged=privileged,
        env=dict(env or {}),
        kept=kept if kept is not None else Kept(),
    )
