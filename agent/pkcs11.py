"""PKCS#11 keys: ``pkcs11:`` URIs (RFC 7512), the token settings, and a token key's public key.

On an HSM-backed core device ``system.privateKeyPath`` is a URI such as
``pkcs11:object=iotkey;type=private`` and the ``aws.greengrass.crypto.Pkcs11Provider``
component names the library, the slot and the user PIN
(https://docs.aws.amazon.com/greengrass/v2/developerguide/pkcs11-provider-component.html).
The agent's own ``pkcs11.*`` keys override those, key by key.

:func:`token_public_key` reads the public half of the key with python-pkcs11 (imported lazily:
it is the optional ``pkcs11`` extra) so ``certificate.key_match`` can compare it with the device
certificate. Errors are :class:`Pkcs11Error` with a ``reason``; no message ever carries the PIN.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote_to_bytes

from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_der_public_key

from agent.config.models import AgentConfig
from agent.errors import AgentError
from agent.greengrass.root import PKCS11_PROVIDER, GreengrassRoot

PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey

# RFC 7512 section 2.3: the attributes of the path and of the query component.
_PATH_ATTRS = {
    "token", "manufacturer", "serial", "model", "library-manufacturer", "library-description",
    "library-version", "object", "type", "id", "slot-description", "slot-manufacturer", "slot-id",
}  # fmt: skip
_QUERY_ATTRS = {"pin-source", "pin-value", "module-name", "module-path"}
_SAFE = "/:-._~@!$'()*+,"  # RFC 7512 pchar minus ";", "&", "?" and "%"
_TYPES = {"public", "private", "cert", "secret-key", "data"}


class Pkcs11Error(AgentError):
    """A PKCS#11 URI, library, token or key problem; ``reason`` is machine-readable."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Pkcs11Uri:
    """The parsed attributes of a ``pkcs11:`` URI (values percent-decoded)."""

    attributes: Mapping[str, str] = field(default_factory=dict)
    """Textual path and query attributes, ``pin-value`` excluded (see ``pin``)."""
    id: bytes | None = None
    """CKA_ID of the object, as raw bytes."""
    pin: str | None = field(default=None, repr=False)
    """``pin-value`` when the URI carries one (discouraged by RFC 7512 section 7)."""

    @property
    def token(self) -> str | None:
        """Token label (``token=``)."""
        return self.attributes.get("token")

    @property
    def object(self) -> str | None:
        """Object label (``object=``, CKA_LABEL)."""
        return self.attributes.get("object")

    @property
    def slot_id(self) -> int | None:
        """``slot-id=``."""
        value = self.attributes.get("slot-id")
        return int(value) if value is not None else None

    @property
    def module_path(self) -> str | None:
        """``module-path=``: the PKCS#11 library file."""
        return self.attributes.get("module-path")

    def redacted(self) -> str:
        """The URI without its PIN, for messages."""
        parts = [f"{k}={quote(v, _SAFE)}" for k, v in self.attributes.items() if k in _PATH_ATTRS]
        if self.id is not None:
            parts.append("id=" + "".join(f"%{b:02x}" for b in self.id))
        query = [f"{k}={quote(v, _SAFE)}" for k, v in self.attributes.items() if k in _QUERY_ATTRS]
        return "pkcs11:" + ";".join(parts) + ("?" + "&".join(query) if query else "")


def parse_uri(text: str) -> Pkcs11Uri:
    """Parse a ``pkcs11:`` URI; Pkcs11Error(reason="bad_uri") names the offending part."""
    if not text.lower().startswith("pkcs11:"):
        raise Pkcs11Error("not a PKCS#11 URI (it must start with 'pkcs11:')", "bad_uri")
    body = text[len("pkcs11:") :]
    path, _, query = body.partition("?")
    attributes: dict[str, str] = {}
    key_id: bytes | None = None
    pin: str | None = None
    pieces = [p for p in path.split(";") if p] + [q for q in query.split("&") if q]
    for piece in pieces:
        name, eq, raw = piece.partition("=")
        name = name.strip().lower()
        if not eq or not name:
            raise Pkcs11Error(f"malformed attribute {piece!r} (expected name=value)", "bad_uri")
        if name in attributes or (name == "id" and key_id is not None):
            raise Pkcs11Error(f"attribute {name!r} appears twice", "bad_uri")
        # RFC 7512 section 2.3: vendor-specific attributes carry an "x-" prefix; others are typos.
        if name not in _PATH_ATTRS | _QUERY_ATTRS and not name.startswith("x-"):
            raise Pkcs11Error(f"unknown attribute {name!r}", "bad_uri")
        value = unquote_to_bytes(raw)
        if name == "id":
            key_id = value
            continue
        decoded = value.decode("utf-8", "replace")
        if name == "pin-value":
            pin = decoded
            continue
        attributes[name] = decoded
    if "type" in attributes and attributes["type"] not in _TYPES:
        raise Pkcs11Error(f"type={attributes['type']!r} is not one of {sorted(_TYPES)}", "bad_uri")
    if "slot-id" in attributes and not attributes["slot-id"].isdigit():
        raise Pkcs11Error("slot-id must be a decimal number", "bad_uri")
    return Pkcs11Uri(attributes, key_id, pin)


@dataclass(frozen=True)
class TokenKey:
    """Everything needed to use a private key held by a token."""

    library: str
    uri: Pkcs11Uri
    slot_id: int | None = None
    user_pin: str | None = field(default=None, repr=False)

    @property
    def token_label(self) -> str | None:
        """The token label from the URI."""
        return self.uri.token

    @property
    def key_label(self) -> str | None:
        """The private key's label from the URI."""
        return self.uri.object


def token_key(uri_text: str, config: AgentConfig, greengrass: GreengrassRoot) -> TokenKey:
    """Combine the URI with ``pkcs11.*`` and the Pkcs11Provider configuration.

    Precedence, first wins: the agent's ``pkcs11.*``, the Pkcs11Provider configuration, the
    URI's own ``module-path``/``slot-id``/``pin-value``.
    """
    uri = parse_uri(uri_text)
    provider: Mapping[str, Any] = greengrass.service_configuration(PKCS11_PROVIDER)
    library = config.pkcs11.library or _text(provider.get("library")) or uri.module_path
    if not library:
        raise Pkcs11Error(
            f"no PKCS#11 library for {uri.redacted()}: set 'library' in the {PKCS11_PROVIDER} "
            "configuration or pkcs11.library",
            "library_not_configured",
        )
    slot = config.pkcs11.slot
    if slot is None:
        slot = _int(provider.get("slot"))
    if slot is None:
        slot = uri.slot_id
    pin = (
        config.pkcs11.user_pin.get_secret_value()
        if config.pkcs11.user_pin is not None
        else _text(provider.get("userPin")) or uri.pin
    )
    return TokenKey(str(library), uri, slot, pin)


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, (dict, list, bool)):
        return None
    return str(value).strip() or None


def _int(value: Any) -> int | None:
    try:
        return int(str(value)) if value is not None and not isinstance(value, bool) else None
    except ValueError:
        return None


# python-pkcs11 finalizes the library (C_Finalize) when its ``lib`` object is freed, which would
# end the sessions awscrt opened on the same library for the MQTT connection: keep one per path.
_LIBRARIES: dict[str, Any] = {}


def _library(path: str) -> Any:
    try:
        import pkcs11
    except ImportError:
        raise Pkcs11Error(
            "python-pkcs11 is not installed; install gg-health-agent[pkcs11]", "module_missing"
        ) from None
    if path not in _LIBRARIES:
        try:
            _LIBRARIES[path] = pkcs11.lib(path)
        except (pkcs11.PKCS11Error, OSError, RuntimeError) as exc:
            raise Pkcs11Error(
                f"cannot load the PKCS#11 library {path}: {exc}", "library_missing"
            ) from None
    return _LIBRARIES[path]


def preload_library(path: str) -> None:
    """Initialise ``path`` through python-pkcs11 before anything else in the process does.

    python-pkcs11 fails on CKR_CRYPTOKI_ALREADY_INITIALIZED while awscrt's ``Pkcs11Lib``
    (default behaviour) tolerates it, so the MQTT connection calls this first; then
    :func:`token_public_key` keeps working beside the TLS connection. Best effort: nothing
    happens when python-pkcs11 is absent or the library cannot be loaded.
    """
    try:
        _library(path)
    except Pkcs11Error:
        return


def token_public_key(
    uri: str, library: str, user_pin: str | None, slot_id: int | None = None
) -> PublicKey:
    """The public key of the private key that ``uri`` names, read from the token.

    The token is chosen by ``slot_id`` (else the URI's ``slot-id``) and/or the URI's ``token``
    label; the private key by the URI's ``object`` label and/or ``id``. Its public half is the
    public key object with the same CKA_ID (else the same label), or for RSA the modulus and
    exponent on the private key itself. Raises Pkcs11Error with reason ``library_missing``,
    ``no_such_token``, ``bad_pin``, ``pin_locked``, ``no_such_key``, ``ambiguous_key``,
    ``no_public_key`` or ``token_error``; never with the PIN in the message.
    """
    import pkcs11
    from pkcs11 import exceptions as p11

    parsed = parse_uri(uri)
    lib = _library(library)
    try:
        token = _token(lib, parsed, slot_id if slot_id is not None else parsed.slot_id)
        try:
            session = token.open(user_pin=user_pin) if user_pin else token.open()
        except p11.UserAlreadyLoggedIn:
            # Another user of the library in this process (awscrt's TLS) already logged in.
            session = token.open()
        with session:
            return _public_key(session, parsed)
    except p11.PinIncorrect:
        raise Pkcs11Error(
            f"the token {_token_name(parsed)} refused the user PIN", "bad_pin"
        ) from None
    except (p11.PinLocked, p11.PinExpired):
        raise Pkcs11Error(
            f"the user PIN of {_token_name(parsed)} is locked or expired", "pin_locked"
        ) from None
    except (p11.PinLenRange, p11.PinInvalid):
        raise Pkcs11Error(
            f"the user PIN has the wrong length or format for {_token_name(parsed)}", "bad_pin"
        ) from None
    except pkcs11.PKCS11Error as exc:
        raise Pkcs11Error(
            f"PKCS#11 error on {_token_name(parsed)}: {type(exc).__name__}", "token_error"
        ) from None


def _token_name(uri: Pkcs11Uri) -> str:
    return repr(uri.token) if uri.token else "the token"


def _token(lib: Any, uri: Pkcs11Uri, slot_id: int | None) -> Any:
    from pkcs11 import TokenFlag

    tokens = []
    for slot in lib.get_slots(token_present=True):
        if slot_id is not None and slot.slot_id != slot_id:
            continue
        token = slot.get_token()
        if not token.flags & TokenFlag.TOKEN_INITIALIZED:  # e.g. SoftHSM's spare free slot
            continue
        if uri.token is not None and token.label != uri.token:
            continue
        tokens.append(token)
    where = " and ".join(
        ([f"label {uri.token!r}"] if uri.token else [])
        + ([f"slot {slot_id}"] if slot_id is not None else [])
    )
    if not tokens:
        raise Pkcs11Error(f"no token with {where or 'any label'} in the library", "no_such_token")
    if len(tokens) > 1:
        raise Pkcs11Error(
            f"{len(tokens)} tokens match {where or 'the URI'}; add token= or a slot",
            "ambiguous_key",
        )
    return tokens[0]


def _public_key(session: Any, uri: Pkcs11Uri) -> PublicKey:
    from pkcs11 import Attribute, KeyType, ObjectClass

    wanted: dict[Any, Any] = {Attribute.CLASS: ObjectClass.PRIVATE_KEY}
    if uri.object is not None:
        wanted[Attribute.LABEL] = uri.object
    if uri.id is not None:
        wanted[Attribute.ID] = uri.id
    keys = list(session.get_objects(wanted))
    described = uri.redacted()
    if not keys:
        raise Pkcs11Error(f"no private key on the token matches {described}", "no_such_key")
    if len(keys) > 1:
        raise Pkcs11Error(
            f"{len(keys)} private keys match {described}; add object= or id=", "ambiguous_key"
        )
    private = keys[0]
    key_type = private[Attribute.KEY_TYPE]
    public = _public_object(session, private)
    if key_type == KeyType.RSA:
        source = public if public is not None else private  # modulus/exponent are public
        n = int.from_bytes(source[Attribute.MODULUS], "big")
        e = int.from_bytes(source[Attribute.PUBLIC_EXPONENT], "big")
        return rsa.RSAPublicNumbers(e, n).public_key()
    if key_type == KeyType.EC:
        if public is None:
            raise Pkcs11Error(
                f"the token holds no public key object for the EC key {described} (same CKA_ID "
                "or label); import the public key beside it",
                "no_public_key",
            )
        from pkcs11.util.ec import encode_ec_public_key

        loaded = load_der_public_key(encode_ec_public_key(public))
        if isinstance(loaded, ec.EllipticCurvePublicKey):
            return loaded
    raise Pkcs11Error(f"unsupported key type {key_type!r} for {described}", "unsupported_key_type")


def _public_object(session: Any, private: Any) -> Any:
    from pkcs11 import Attribute, ObjectClass

    for attribute in (Attribute.ID, Attribute.LABEL):
        try:
            value = private[attribute]
        except Exception:  # the token does not expose the attribute
            continue
        if not value:
            continue
        found = list(
            session.get_objects({Attribute.CLASS: ObjectClass.PUBLIC_KEY, attribute: value})
        )
        if len(found) == 1:
            return found[0]
    return None


def device_public_key(uri: str, config: AgentConfig, greengrass: GreengrassRoot) -> PublicKey:
    """The token public key for ``system.privateKeyPath`` = ``uri`` (for ``certificate.key_match``).

    Library, slot and PIN come from ``pkcs11.*`` / the Pkcs11Provider configuration as for the
    MQTT connection. Raises Pkcs11Error (see :func:`token_public_key` for the reasons, plus
    ``bad_uri`` and ``library_not_configured``).
    """
    key = token_key(uri, config, greengrass)
    return token_public_key(uri, key.library, key.user_pin, key.slot_id)
