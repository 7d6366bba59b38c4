"""The command line: ``check``, ``run``, ``schema``, ``demo`` and ``authorize``. The only module
that decides exit codes: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN or a usage/configuration error
(Monitoring Plugins convention, https://www.monitoring-plugins.org/doc/guidelines.html#AEN78);
``authorize``: 0 allowed, 1 refused, 3 a usage error or an unreadable root."""

from __future__ import annotations

import argparse
import errno
import json
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from agent import __version__
from agent.errors import AgentError
from agent.greengrass.root import DEFAULT_ROOT
from agent.printable import printable

if TYPE_CHECKING:
    from agent.runner import Settings

EXIT_OK = 0
EXIT_UNKNOWN = 3
EXIT_UNDELIVERED = 4
"""``run --once`` whose one report could not be delivered (``run`` otherwise exits 0)."""


class UsageError(AgentError):
    """The command line itself is wrong."""


class OutputError(AgentError):
    """stdout is closed or refuses the output (a full disk, a reader that left)."""


class _Stdout:
    """What every command writes its output through: a failed write is an OutputError (exit 3,
    said on stderr), never an internal error, and stdout is then pointed at /dev/null so the
    interpreter's flush at exit cannot turn the exit status into 120."""

    def write(self, text: str) -> int:
        try:
            if sys.stdout is None:  # started with stdout closed (>&-)
                raise OSError(errno.EBADF, "stdout is closed")
            written = sys.stdout.write(text)
            sys.stdout.flush()
        except (OSError, ValueError) as exc:
            from agent.log import discard_from_now_on

            if sys.stdout is not None:
                discard_from_now_on(sys.stdout)
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise OutputError(f"cannot write the output to stdout: {why}") from None
        return written

    def flush(self) -> None:
        """Each write is flushed already."""

    def isatty(self) -> bool:
        return sys.stdout is not None and sys.stdout.isatty()


def _stderr_or_devnull() -> None:
    """Started with stderr closed (2>&-): messages and log lines go nowhere, and the exit status
    still says what was found (logging set-up used to fail on the missing stream: exit 1)."""
    if sys.stderr is None:
        sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - for the life of the process


class _Parser(argparse.ArgumentParser):
    """argparse exits 2 on a usage error, which would read as CRITICAL; we raise instead."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message} (see '{self.prog} --help')")


def _areas(text: str) -> tuple[str, ...]:
    from agent.checks.registry import AREAS

    areas = tuple(dict.fromkeys(a.strip() for a in text.split(",") if a.strip()))
    unknown = [a for a in areas if a not in AREAS]
    if not areas or unknown:
        raise argparse.ArgumentTypeError(
            f"unknown area {', '.join(map(repr, unknown)) or '(none given)'}; "
            f"choose from {', '.join(AREAS)}"
        )
    return areas


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of seconds") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every sub-command."""
    parser = _Parser(prog="gg-health-agent", description=__doc__)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--log-level",
        default="WARNING",
        metavar="LEVEL",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="log verbosity (default WARNING); lines go to stderr, except that 'run' as a "
        "Greengrass component writes DEBUG and INFO to stdout unless reports go there",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--greengrass-root",
            type=Path,
            default=DEFAULT_ROOT,
            metavar="DIR",
            help=f"Greengrass root or nucleus-lite config dir (default {DEFAULT_ROOT})",
        )
        p.add_argument("--config", type=Path, metavar="FILE", help="YAML or JSON config file")
        p.add_argument(
            "--only",
            type=_areas,
            metavar="AREA[,AREA]",
            help="certificate, subscription, s3, agent",
        )

    check = sub.add_parser("check", help="run the checks once and print the report")
    common(check)
    check.add_argument("--format", choices=["text", "json"], default="text")

    run = sub.add_parser("run", help="publish a report every interval until stopped")
    common(run)
    run.add_argument("--transport", choices=["ipc", "mqtt", "stdout", "file"])
    run.add_argument("--interval", type=_positive_int, metavar="SECONDS")
    run.add_argument("--once", action="store_true", help="one cycle, then exit")

    sub.add_parser("schema", help="print the JSON Schema of the health report")

    fleet = sub.add_parser(
        "fleet-summary",
        help="summarize many stored reports: devices per status, failing checks, cert expiry",
    )
    fleet.add_argument(
        "path", metavar="PATH", help="directory (searched recursively), JSONL file, or - for stdin"
    )
    fleet.add_argument("--format", choices=["text", "json"], default="text")

    authorize = sub.add_parser(
        "authorize",
        help="answer an IPC authorization request as the device's nucleus would "
        "(no request: JSON lines on stdin)",
    )
    authorize.add_argument(
        "--greengrass-root",
        type=Path,
        default=DEFAULT_ROOT,
        metavar="DIR",
        help=f"Greengrass root (default {DEFAULT_ROOT})",
    )
    authorize.add_argument(
        "--format",
        choices=["text", "json"],
        default="text",
        help="for one request (the stdin form always answers in JSON lines)",
    )
    authorize.add_argument(
        "request",
        nargs="*",
        metavar="COMPONENT SERVICE OPERATION RESOURCE",
        help="e.g. com.example.App aws.greengrass.ipc.mqttproxy "
        "aws.greengrass#PublishToIoTCore dt/pi-42/health",
    )

    demo = sub.add_parser("demo", help="build a throwaway Greengrass root and check it")
    demo.add_argument(
        "--dir",
        type=Path,
        metavar="DIR",
        help="where to build it (kept); default: a temporary directory",
    )
    return parser


def _flags(args: argparse.Namespace) -> dict[str, Any]:
    flags: dict[str, Any] = {}
    if getattr(args, "transport", None):
        flags["transport"] = args.transport
    if getattr(args, "interval", None):
        flags["intervalSeconds"] = args.interval
    return flags


def _cmd_check(args: argparse.Namespace) -> int:
    from agent.render import text_pieces
    from agent.report import json_chunks
    from agent.runner import check_once, gc_paused, load_settings

    settings = load_settings(args.greengrass_root, args.config, _flags(args))
    report = check_once(settings, args.only)
    # The JSON form builds a dict per result (30,000 for 10,000 certificates), all acyclic:
    # with the collector on they trigger full collections over the whole report (~30 ms).
    with gc_paused():
        if args.format == "json":
            # Written in pieces, not as one string (67 MB for 100,000 certificates); the text
            # form below likewise.
            for piece in json_chunks(report):
                STDOUT.write(piece)
            STDOUT.write("\n")
        else:
            for piece in text_pieces(report, colour=STDOUT.isatty()):
                STDOUT.write(piece)
    return report.status.exit_code


def _cmd_run(args: argparse.Namespace) -> int:
    import signal

    def stop_before_start(_signum: int, _frame: object) -> None:
        # The nucleus stops a component with SIGTERM at any moment, also while a large
        # configuration is still loading: nothing has started, so stopping is clean (0, not 143).
        # run_service installs its own handlers once cycles run.
        raise SystemExit(EXIT_OK)

    signal.signal(signal.SIGTERM, stop_before_start)
    signal.signal(signal.SIGINT, stop_before_start)

    from agent.config.models import Transport
    from agent.log import send_to_stdout, stdout_levels
    from agent.runner import load_settings
    from agent.service import run_service

    stdout_reserved = False

    def reload(component_configuration: Mapping[str, Any] | None = None) -> Settings:
        nonlocal stdout_reserved
        settings = load_settings(
            args.greengrass_root, args.config, _flags(args), component_configuration
        )
        # The transport is known once the layers are merged (flag, --config file, the component
        # configuration from effectiveConfig.yaml or IPC, each update), and run_service builds it
        # after this returns: route the log lines first. Once stdout has been chosen for reports
        # it stays theirs: an update whose transport then fails to build keeps the stdout
        # transport, and log lines must not follow it there.
        stdout_reserved = stdout_reserved or settings.config.transport is Transport.STDOUT
        send_to_stdout(stdout_levels(os.environ, stdout_reserved=stdout_reserved))
        return settings

    delivered = run_service(reload(), args.only, once=args.once, reload=reload)
    return EXIT_OK if delivered else EXIT_UNDELIVERED


def _cmd_schema(_args: argparse.Namespace) -> int:
    from agent.report import json_schema

    STDOUT.write(json.dumps(json_schema(), indent=2) + "\n")
    return 0


def _cmd_fleet_summary(args: argparse.Namespace) -> int:
    from agent.fleet.summary import run_fleet_summary

    return run_fleet_summary(args.path, args.format, STDOUT)


def _cmd_demo(args: argparse.Namespace) -> int:
    from agent.demo import run_demo

    return run_demo(args.dir, STDOUT)


def _cmd_authorize(args: argparse.Namespace) -> int:
    from agent.authorize import Device, answer_lines, answer_one

    if len(args.request) not in (0, 4):
        raise UsageError(
            f"authorize takes COMPONENT SERVICE OPERATION RESOURCE (got {len(args.request)} "
            "argument(s)), or none to read JSON lines from stdin"
        )
    device = Device.load(args.greengrass_root)
    if args.request:
        return answer_one(device, args.request, args.format == "text", STDOUT)
    return answer_lines(device, sys.stdin.buffer, STDOUT)


STDOUT: Any = _Stdout()
"""The commands' output stream (typed loosely: it stands in for a TextIO)."""

COMMANDS = {
    "check": _cmd_check,
    "run": _cmd_run,
    "schema": _cmd_schema,
    "fleet-summary": _cmd_fleet_summary,
    "demo": _cmd_demo,
    "authorize": _cmd_authorize,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``gg-health-agent`` console script."""
    _stderr_or_devnull()
    try:
        args = build_parser().parse_args(argv)
    except UsageError as exc:
        print(printable(f"usage error: {exc}"), file=sys.stderr)
        return EXIT_UNKNOWN
    from agent.log import configure

    configure(args.log_level)
    try:
        return COMMANDS[args.command](args)
    except AgentError as exc:
        from agent.secrets import scrub

        print(printable(f"gg-health-agent: {scrub(str(exc))}"), file=sys.stderr)
        return EXIT_UNKNOWN
    except KeyboardInterrupt:
        return EXIT_UNKNOWN
    except Exception as exc:  # last line of defence: a message, never a traceback
        from agent.secrets import scrub

        print(
            printable(
                f"gg-health-agent: internal error: {type(exc).__name__}: {scrub(str(exc))} "
                "(please report this with the command you ran)"
            ),
            file=sys.stderr,
        )
        return EXIT_UNKNOWN
