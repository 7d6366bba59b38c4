"""Where AWS IoT policy documents come from: files the operator names, or AWS IoT itself.

A file (or each ``*.json``/``*.yaml`` of a directory, for a certificate with several policies)
holds one of: a plain policy document (``{"Version", "Statement"}``), an IoT ``GetPolicy``
response (``policyName`` + ``policyDocument`` as a JSON *string*), the aws-greengrass-testing
wrapper (``policyName`` + ``policyDocument`` as a YAML scalar holding JSON), or a list of these.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from agent.config.files import InputError, load_yaml_file, load_yaml_text, loads_json
from agent.subscriptions.iot_policy import IotPolicy, PolicyError, parse_policy

MAX_POLICY_FILE_BYTES = 1024 * 1024
"""AWS IoT caps a policy document at 2048 characters; anything near a megabyte is not one."""
MAX_POLICY_FILES = 64
POLICY_SUFFIXES = (".json", ".yaml", ".yml")


def policies_from_data(data: Any, default_name: str) -> list[IotPolicy]:
    """The policies held by one parsed file (see the module docstring for the shapes)."""
    if isinstance(data, list):
        out: list[IotPolicy] = []
        for position, item in enumerate(data):
            out.extend(policies_from_data(item, f"{default_name}[{position}]"))
        return out
    if not isinstance(data, Mapping):
        raise PolicyError("holds neither a policy document nor a GetPolicy response")
    if "policyDocument" in data:
        name = str(data.get("policyName") or default_name)
        policy_arn = data.get("policyArn")
        return [
            parse_policy(
                name,
                _document(data["policyDocument"], name),
                policy_arn if isinstance(policy_arn, str) else None,
            )
        ]
    return [parse_policy(default_name, data)]


def _document(value: Any, name: str) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return loads_json(value)
    except ValueError:
        try:
            return load_yaml_text(value, origin=f"policyDocument of {name}")
        except InputError as exc:
            raise PolicyError(f"policyDocument of {name} is not JSON: {exc}") from None


def policy_files(path: Path) -> list[Path]:
    """``path`` itself, or the policy files of the directory ``path`` in name order."""
    if not path.is_dir():
        return [path]
    files = sorted(p for p in path.iterdir() if p.suffix.lower() in POLICY_SUFFIXES and p.is_file())
    if len(files) > MAX_POLICY_FILES:
        raise PolicyError(
            f"{path} holds {len(files)} policy files; at most {MAX_POLICY_FILES} are read"
        )
    if not files:
        raise PolicyError(f"{path} holds no *.json or *.yaml policy file")
    return files


def load_policy_file(path: Path) -> list[IotPolicy]:
    """Read and parse one policy file; raises InputError or PolicyError naming the file."""
    data = load_yaml_file(path, MAX_POLICY_FILE_BYTES)
    try:
        return policies_from_data(data, path.stem)
    except PolicyError as exc:
        raise PolicyError(f"{path}: {exc}") from None


def stat_key(path: Path) -> tuple[int, int, int, int] | None:
    """The cache key of a file (device, inode, size, mtime); None when it cannot be stat'ed."""
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def documents_from_api(documents: Mapping[str, Any]) -> list[IotPolicy]:
    """Policies from ``{policyName: policyDocument}`` as AWS IoT ``GetPolicy`` returns them."""
    return [parse_policy(name, _document(doc, name)) for name, doc in documents.items()]
