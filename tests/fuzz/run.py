#!/usr/bin/env python3
"""Run the fuzz targets of tests/fuzz/targets.py, each for a fixed time.

    tests/fuzz/run.py TARGET|all [--seconds N] [--out DIR] [--engine auto|atheris|python]

Each target runs in its own process. With atheris (``pip install atheris``, the ``fuzz`` extra)
it is libFuzzer with coverage feedback on the ``agent`` package; without it (or with
``--engine python``) a plain mutation loop over the seeds runs instead. Seeds come from
``tests/fuzz/corpus/<target>/`` plus the matching real-world files of shared/fixtures; new
inputs and any crash (``crash-*``, ``timeout-*``) go to ``--out`` (a temporary directory by
default), never into the seed corpus. The exit status is 1 when any target crashed or hung.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CORPUS = Path(__file__).resolve().parent / "corpus"
INPUT_TIMEOUT_S = 10
"""One input taking longer than this is a hang (libFuzzer ``-timeout``, or SIGALRM)."""
MAX_LEN = 64 * 1024


def shared_seed_dirs(target: str) -> list[Path]:
    """Real-world files that make good seeds for ``target`` (read only: never written)."""
    sys.path.insert(0, str(REPO))
    try:
        from tests.conftest import SHARED_FIXTURES
    except Exception:  # no shared fixtures beside this checkout: the local seeds suffice
        return []
    mapping = {
        "effective_config": ["effective-config"],
        "yaml": ["effective-config", "recipes"],
        "config": [],
        "recipe": ["recipes"],
        "iot_policy": ["iot-policies"],
        "json": ["iot-policies"],
        "pem": ["certs"],
        "certificate_area": ["certs"],
    }
    return [SHARED_FIXTURES / d for d in mapping.get(target, []) if (SHARED_FIXTURES / d).is_dir()]


def generated_seeds(target: str, work: Path) -> None:
    """Seeds that should not live in the repository (private keys) are made per run."""
    if target != "pem":
        return
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    keys = {
        "ec": ec.generate_private_key(ec.SECP256R1()),
        "rsa": rsa.generate_private_key(65537, 2048),
    }
    formats = {
        "pkcs8": serialization.PrivateFormat.PKCS8,
        "traditional": serialization.PrivateFormat.TraditionalOpenSSL,
    }
    for name, key in keys.items():
        for label, fmt in formats.items():
            data = key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption())
            (work / f"seed-{name}-{label}.pem").write_bytes(data)


# --- the child: one target ---------------------------------------------------------------------


def _load_target(name: str) -> Callable[[bytes], None]:
    sys.path.insert(0, str(REPO))
    from tests.fuzz.targets import TARGETS

    return TARGETS[name]


def child_atheris(name: str, seconds: int, work: Path, out: Path) -> int:
    """libFuzzer through atheris, coverage-instrumented on the agent package."""
    import atheris

    sys.path.insert(0, str(REPO))
    with atheris.instrument_imports(include=["agent"]):
        target = _load_target(name)
    args = [
        sys.argv[0],
        f"-max_total_time={seconds}",
        f"-timeout={INPUT_TIMEOUT_S}",
        "-rss_limit_mb=1024",
        f"-max_len={MAX_LEN}",
        f"-artifact_prefix={out}/",
        "-print_final_stats=1",
        str(work),
        *(str(d) for d in [CORPUS / name, *shared_seed_dirs(name)] if d.is_dir()),
    ]
    atheris.Setup(args, target)
    atheris.Fuzz()
    return 0


_DICTIONARY = [
    b"&a ", b"*a", b"[", b"]", b"{", b"}", b": ", b"- ", b"\n", b"\x00", b"\xff", b"\xef\xbb\xbf",
    b"-----BEGIN CERTIFICATE-----\n", b"-----END CERTIFICATE-----\n",
    b"-----BEGIN PRIVATE KEY-----\n",
    b"<Code>", b"</Code>", b"<!ENTITY x \"", b"${", b"+", b"#", b"/", b"$aws/rules/", b"pin-value=",
    b"!!python/object:", b"\"", b"\\u0000", b"1e999", b"-1", b"true", b"null", b"~",
]  # fmt: skip


def mutate(data: bytes, seeds: Sequence[bytes], rng: random.Random) -> bytes:
    """One random structural or byte-level change."""
    buf = bytearray(data)
    choice = rng.randrange(8)
    pos = rng.randrange(len(buf) + 1)
    if choice == 0 and buf:
        buf[rng.randrange(len(buf))] ^= 1 << rng.randrange(8)
    elif choice == 1:
        buf[pos:pos] = bytes([rng.randrange(256)])
    elif choice == 2 and buf:
        end = min(len(buf), pos + rng.randrange(1, 64))
        del buf[pos:end]
    elif choice == 3 and buf:
        start = rng.randrange(len(buf))
        piece = buf[start : start + rng.randrange(1, 128)]
        buf[pos:pos] = piece * rng.randrange(1, 8)
    elif choice == 4:
        buf[pos:pos] = rng.choice(_DICTIONARY)
    elif choice == 5 and seeds:
        other = rng.choice(seeds)
        cut = rng.randrange(len(other) + 1)
        buf = buf[:pos] + bytearray(other[cut:])
    elif choice == 6:
        depth = rng.choice([10, 500, 5000])
        opening, closing = rng.choice([(b"[", b"]"), (b"{a: ", b"}"), (b'{"a":', b"}")])
        buf[pos:pos] = opening * depth + closing * depth
    else:
        buf = bytearray(rng.choice(seeds)) if seeds else buf
    return bytes(buf[:MAX_LEN])


class _Hang(Exception):
    pass


def child_python(name: str, seconds: int, work: Path, out: Path) -> int:
    """A plain mutation loop: no coverage feedback, but the same targets and crash files."""
    target = _load_target(name)
    seed_files = [
        p
        for d in [CORPUS / name, work, *shared_seed_dirs(name)]
        if d.is_dir()
        for p in sorted(d.iterdir())
        if p.is_file()
    ]
    seeds = [p.read_bytes()[:MAX_LEN] for p in seed_files] or [b""]

    def alarm(_signum: int, _frame: object) -> None:
        raise _Hang()

    signal.signal(signal.SIGALRM, alarm)
    rng = random.Random(int.from_bytes(os.urandom(8), "big"))
    deadline = time.monotonic() + seconds
    runs = 0
    queue = list(seeds)
    while time.monotonic() < deadline:
        data = queue[runs] if runs < len(queue) else mutate(rng.choice(queue), seeds, rng)
        signal.alarm(INPUT_TIMEOUT_S)
        try:
            target(data)
        except _Hang:
            return _save(out, "timeout", data, f"input took over {INPUT_TIMEOUT_S} s")
        except Exception:
            return _save(out, "crash", data, traceback.format_exc())
        finally:
            signal.alarm(0)
        runs += 1
        if rng.random() < 0.01 and len(queue) < 5000:
            queue.append(data)  # keep some mutants as parents, a poor man's corpus
    print(f"#{runs} DONE {name}: {runs} inputs in {seconds} s, no crash", file=sys.stderr)
    return 0


def _save(out: Path, kind: str, data: bytes, why: str) -> int:
    path = out / f"{kind}-{hashlib.sha1(data).hexdigest()}"
    path.write_bytes(data)
    print(f"{why}\n{kind.upper()}: input saved to {path}", file=sys.stderr)
    return 1


# --- the parent: every target, one process each ------------------------------------------------


def has_atheris() -> bool:
    """Whether atheris can be imported by this interpreter."""
    try:
        import atheris  # noqa: F401
    except ImportError:
        return False
    return True


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; see the module docstring."""
    sys.path.insert(0, str(REPO))
    # The target list is known without importing the targets: a child process must import the
    # agent only inside atheris's instrumentation, or there is no coverage feedback.
    names = sorted(p.name for p in CORPUS.iterdir() if p.is_dir())
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("target", choices=[*names, "all"])
    parser.add_argument("--seconds", type=int, default=60, help="per target (default 60)")
    parser.add_argument("--out", type=Path, help="crashes and new inputs (default: a temp dir)")
    parser.add_argument("--engine", choices=["auto", "atheris", "python"], default="auto")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    out = (args.out or Path(tempfile.mkdtemp(prefix="gghealth-fuzz-"))).resolve()
    out.mkdir(parents=True, exist_ok=True)
    engine = args.engine
    if engine == "auto":
        engine = "atheris" if has_atheris() else "python"
    if args.child:
        work = out / f"corpus-{args.target}"
        work.mkdir(parents=True, exist_ok=True)
        generated_seeds(args.target, work)
        run = child_atheris if engine == "atheris" else child_python
        return run(args.target, args.seconds, work, out)
    targets = names if args.target == "all" else [args.target]
    failed: list[str] = []
    for name in targets:
        print(f"== {name}: {engine}, {args.seconds} s", flush=True)
        try:
            done = subprocess.run(
                [sys.executable, str(Path(__file__).resolve()), name, "--child",
                 "--seconds", str(args.seconds), "--out", str(out), "--engine", engine],
                cwd=out,
                timeout=args.seconds + 120,
                check=False,
            )  # fmt: skip
            code = done.returncode
        except subprocess.TimeoutExpired:
            code = -1
            print(f"== {name}: did not stop in time (a hang outside one input)", flush=True)
        if code != 0:
            failed.append(name)
        print(f"== {name}: {'ok' if code == 0 else f'FAILED ({code})'}", flush=True)
    print(f"fuzz output in {out}; {len(targets) - len(failed)}/{len(targets)} targets clean")
    if failed:
        print(f"crashed: {', '.join(failed)} (see crash-*/timeout-* in {out})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
