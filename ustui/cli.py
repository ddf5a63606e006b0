"""Command line: ``main(argv) -> exit code``; the terminal UI and batch commands.

Errors reach the user as one line naming the file and the reason, never as a
traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import threading
import warnings
from collections.abc import Iterator, Sequence
from enum import IntEnum
from pathlib import Path
from typing import Any, NoReturn

from ustui import __version__

SUBCOMMANDS = ("demo", "export", "verify", "bench", "profiles")
IMAGE_PROTOCOLS = ("auto", "tgp", "sixel", "halfcell", "unicode")


class ExitCode(IntEnum):
    OK = 0
    """Done."""
    PROBLEMS = 1
    """Done, with problems: files skipped, or leaks found."""
    USAGE = 2
    """The command line was wrong."""
    NOTHING = 3
    """Nothing could be exported."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        print(f"ustui: error: {message}", file=sys.stderr)
        raise SystemExit(ExitCode.USAGE)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="ustui",
        description="Prepare ultrasound DICOM exams for AI research: review, crop, tag, "
        "de-identify and export. Without a command, opens the terminal UI on PATHs.",
    )
    parser.add_argument("--version", action="version", version=f"ustui {__version__}")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)

    demo = sub.add_parser("demo", help="write a synthetic demo exam (fake PHI) and open it")
    demo.add_argument("--dir", type=Path, help="where to write it (default: ./ustui-demo)")
    demo.add_argument("--profile", help="profile to use (default: dvt)")
    demo.add_argument("--image-protocol", choices=IMAGE_PROTOCOLS)

    export = sub.add_parser("export", help="export de-identified files without the UI")
    export.add_argument("paths", nargs="+", metavar="PATH", help="files, folders or ZIPs")
    export.add_argument("--out", type=Path, required=True, metavar="OUT.zip")
    export.add_argument("--profile", help="profile name (default: generic-us)")
    export.add_argument("--subject", help="one subject pseudonym for all files")
    export.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    export.add_argument(
        "--no-require-tags",
        action="store_true",
        help="export files even when required tags are missing",
    )
    export.add_argument("--json", action="store_true", help="print the summary as JSON")
    export.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="run the files on this Dask scheduler's workers (tcp://host:8786); inputs and "
        "the output folder must be on a file system they share",
    )
    export.add_argument(
        "--shard-size",
        metavar="SIZE",
        help="write OUT-0001.zip, OUT-0002.zip, ... of about SIZE each (e.g. 2GB), no "
        "subject split between them, and a combined OUT-manifest.json/.csv",
    )

    verify = sub.add_parser("verify", help="search an export for the originals' identifiers")
    verify.add_argument("export", type=Path, metavar="OUT.zip")
    verify.add_argument("--against", nargs="+", required=True, metavar="PATH")
    verify.add_argument(
        "--key-file",
        type=Path,
        metavar="FILE",
        help="the pseudonym key the export used (default: the profile's, else yours); "
        "pairs each exported file with its original",
    )
    verify.add_argument("--json", action="store_true", help="print the report as JSON")
    verify.add_argument(
        "--no-pixels",
        action="store_true",
        help="do not read the exported images for burned-in text (faster)",
    )

    bench = sub.add_parser("bench", help="time the export pipeline on synthetic exams")
    bench.add_argument("--json", action="store_true")
    bench.add_argument("--quick", action="store_true", help="fewer, smaller runs")

    profiles = sub.add_parser("profiles", help="list, show or check profiles")
    profiles.add_argument("action", nargs="?", default="list", choices=("list", "show", "check"))
    profiles.add_argument("name", nargs="?", help="profile name (show) or file (check)")
    return parser


def _ui_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="ustui", description=_parser().description)
    parser.add_argument("paths", nargs="*", metavar="PATH", help="files, folders or ZIPs")
    parser.add_argument("--profile", help="profile name")
    parser.add_argument("--image-protocol", choices=IMAGE_PROTOCOLS)
    parser.add_argument("--version", action="version", version=f"ustui {__version__}")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ustui with ``argv`` (default: sys.argv[1:]) and return the exit code."""
    with warnings.catch_warnings():
        # Libraries warn about odd files on stderr: not for users (every problem they can
        # act on is one line already), and it would garble the terminal UI.
        warnings.simplefilter("ignore")
        return _main(list(sys.argv[1:] if argv is None else argv))


def _main(args_list: list[str]) -> int:
    from ustui.core.errors import UstuiError

    try:
        if args_list and args_list[0] in SUBCOMMANDS:
            args = _parser().parse_args(args_list)
            handler = {
                "demo": _demo,
                "export": _export,
                "verify": _verify,
                "bench": _bench,
                "profiles": _profiles,
            }[args.command]
            return int(handler(args))
        if not args_list or args_list[0] in ("-h", "--help"):
            _parser().print_help()
            return ExitCode.OK if args_list else ExitCode.USAGE
        args = _ui_parser().parse_args(args_list)
        if not args.paths:
            _ui_parser().error("give at least one file, folder or ZIP (or try: ustui demo)")
        return _open_ui(args.paths, args.profile, args.image_protocol)
    except SystemExit as exc:
        return int(exc.code) if isinstance(exc.code, int) else ExitCode.USAGE
    except UstuiError as exc:
        print(f"ustui: {exc}", file=sys.stderr)
        return ExitCode.USAGE
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"ustui: {where}{exc.strerror or type(exc).__name__}", file=sys.stderr)
        return ExitCode.PROBLEMS
    except KeyboardInterrupt as exc:
        print("ustui: interrupted", file=sys.stderr)
        return 128 + (exc.signum if isinstance(exc, Stopped) else signal.SIGINT)


class Stopped(KeyboardInterrupt):
    """SIGTERM or SIGHUP arrived: unwind like Ctrl-C, so that nothing partial is left."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


@contextlib.contextmanager
def _stop_on_signals() -> Iterator[None]:
    """Raise :class:`Stopped` on SIGTERM and SIGHUP while the block runs.

    By default these end Python at once, leaving temporary files behind. Signals
    already ignored (``nohup``) stay ignored.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, _frame: object) -> None:
        raise Stopped(signum)

    previous = {}
    for signum in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(signum) is not signal.SIG_IGN:
            previous[signum] = signal.signal(signum, stop)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())


def _open_ui(paths: list[str], profile: str | None, image_protocol: str | None) -> int:
    from ustui.tui.app import run_app

    return run_app(paths, profile=profile, image_protocol=image_protocol)


def _demo(args: argparse.Namespace) -> int:
    from ustui.core.demo import write_demo_exam

    folder = write_demo_exam((args.dir or Path("ustui-demo")).resolve())
    print(f"ustui: demo exam (synthetic, fake PHI) written to {folder}", file=sys.stderr)
    if not sys.stdin.isatty() or not sys.stdout.isatty():
        print(f"ustui: not a terminal; open it with: ustui {folder}", file=sys.stderr)
        return ExitCode.OK
    return _open_ui([str(folder)], args.profile or "dvt", args.image_protocol)


def _export(args: argparse.Namespace) -> int:
    from ustui.core import jit_cache, shards, text_reader
    from ustui.core.errors import UstuiError
    from ustui.core.export import ExportRequest, run_export
    from ustui.core.inputs import discover
    from ustui.core.profiles import get_profile
    from ustui.core.session import Session

    if args.workers < 1:
        _parser().error("--workers must be at least 1")
    if args.out.suffix.lower() != ".zip":
        _parser().error("--out must name a .zip file")
    try:
        shard_size = None if args.shard_size is None else shards.parse_size(args.shard_size)
    except ValueError as exc:
        _parser().error(f"--shard-size: {exc}")
    profile = get_profile(args.profile)
    found = discover(args.paths)
    session = Session.load(args.paths)
    if session.notice:
        print(f"ustui: {session.notice}", file=sys.stderr)
    if profile.export.pixel_text != "off" and not text_reader.available():
        print(f"ustui: {text_reader.MISSING_NOTICE}", file=sys.stderr)
    if not jit_cache.numba_installed():
        print(f"ustui: {jit_cache.MISSING_NOTICE}", file=sys.stderr)
    request = ExportRequest(
        inputs=found.files,
        profile=profile,
        out=args.out,
        decisions=session.files,
        subject=args.subject,
        require_tags=not args.no_require_tags,
        workers=args.workers,
        scheduler=args.scheduler,
        shard_size=shard_size,
    )
    try:
        with _stop_on_signals():
            result = run_export(request)
    except UstuiError as exc:
        print(f"ustui: {exc}", file=sys.stderr)
        return ExitCode.NOTHING
    skipped = [(p.source or "", p.reason) for p in found.problems]
    skipped += [(s.label, s.reason) for s in result.skipped]
    if args.json:
        summary: dict[str, Any] = {
            "out": str(args.out) if result.out else None,
            "profile": profile.name,
            "exported": [
                {
                    "input": e.label,
                    "path": e.path_in_zip,
                    "crop_source": e.row.crop_source,
                    "transfer_syntax_out": e.row.transfer_syntax_out,
                    "lossy": e.row.lossy,
                    "pixel_text": e.row.pixel_text,
                    "text_masks": len(e.row.text_masks),
                }
                for e in result.exported
            ],
            "skipped": [{"input": label, "reason": reason} for label, reason in skipped],
            "crosswalk": str(result.crosswalk) if result.crosswalk else None,
            "shards": [str(p) for p in result.shards],
        }
        print(json.dumps(summary, indent=1))
    else:
        _print_export_table(result, skipped, profile.name, args.out)
    if not result.exported:
        return ExitCode.NOTHING
    return ExitCode.PROBLEMS if skipped else ExitCode.OK


def _print_export_table(
    result: Any, skipped: list[tuple[str, str]], profile: str, out: Path
) -> None:
    rows = [
        (e.label, e.path_in_zip, e.row.crop_source, "lossy" if e.row.lossy else "lossless")
        for e in result.exported
    ]
    if rows:
        width = min(max(len(r[0]) for r in rows), 60)
        print(f"Exported {len(rows)} file(s) with profile {profile}:")
        for label, path, source, lossy in rows:
            print(f"  {label[-width:]:<{width}}  ->  {path}  [crop: {source}, {lossy}]")
    if skipped:
        print(f"Skipped {len(skipped)} file(s):")
        for label, reason in skipped:
            print(f"  {label}: {reason}")
    if result.shards:
        print(
            f"Wrote {len(result.shards)} shard(s), {result.shards[0].name} to "
            f"{result.shards[-1].name}, and their manifest {result.out}"
        )
    elif result.out:
        print(f"Wrote {out}")
    if result.crosswalk:
        print(f"Crosswalk (keep it safe): {result.crosswalk}")


def _verify(args: argparse.Namespace) -> int:
    from ustui.core.verify import Kind, verify_export

    report = verify_export(
        args.export, args.against, key_file=args.key_file, pixels=not args.no_pixels
    )
    if args.json:
        print(json.dumps(report.as_json(), indent=1))
        return ExitCode.OK if report.passed else ExitCode.PROBLEMS
    for problem in report.problems:
        print(f"ustui: not searched: {problem}", file=sys.stderr)
    for finding in report.of(Kind.UNREADABLE, Kind.NOT_SEARCHED, Kind.MISMATCH):
        print(f"{finding.kind}  {finding.where}: {finding.source}")
    for finding in report.of(Kind.LEAK, Kind.UNCONFIRMED):
        print(f"{finding.kind}  {finding.where}  <- {finding.source}")
    counts = {kind: len(report.of(kind)) for kind in Kind}
    verdict = f"{counts[Kind.LEAK]} leak(s)" if counts[Kind.LEAK] else "no leaks"
    if counts[Kind.UNCONFIRMED]:
        verdict += (
            f", {counts[Kind.UNCONFIRMED]} date(s) equal to an original date that only the "
            "key can tell from shifted ones (give --key-file)"
        )
    unsearched = counts[Kind.UNREADABLE] + counts[Kind.NOT_SEARCHED]
    if unsearched:
        verdict += f", {unsearched} member(s) not searched"
    if counts[Kind.MISMATCH]:
        verdict += f", {counts[Kind.MISMATCH]} manifest field(s) not matching their file"
    if counts[Kind.KEPT]:
        verdict += f"; {counts[Kind.KEPT]} value(s) kept by the profile's declared options"
    print(
        f"Checked {report.files_checked} member(s) for {report.values_searched} "
        f"identifying value(s): {verdict}."
    )
    return ExitCode.OK if report.passed else ExitCode.PROBLEMS


def _bench(args: argparse.Namespace) -> int:
    from ustui.core.bench import run_bench

    return run_bench(as_json=args.json, quick=args.quick)


def _profiles(args: argparse.Namespace) -> int:
    from ustui.core.profiles import check_file, get_profile, load_profiles, profile_files

    if args.action == "check":
        files = [Path(args.name)] if args.name else profile_files()
        bad = 0
        for path in files:
            problems = check_file(path)
            bad += len(problems)
            for problem in problems:
                print(f"{path}: {problem}")
            if not problems:
                print(f"{path}: ok")
        return ExitCode.PROBLEMS if bad else ExitCode.OK
    if args.action == "show":
        profile = get_profile(args.name)
        _show_profile(profile)
        return ExitCode.OK
    for name, profile in load_profiles().items():
        print(f"{name:<16} {profile.description}  [{profile.source}]")
    return ExitCode.OK


def _show_profile(profile: Any) -> None:
    print(f"{profile.name}: {profile.description}")
    print(f"  file: {profile.source}")
    print(f"  de-identification: Basic Profile + {', '.join(profile.deid.options) or 'no options'}")
    print(
        f"  export: {profile.export.template}; lossy input: {profile.export.lossy}; "
        f"lossless input: {profile.export.lossless}"
    )
    for tag in profile.tags:
        keys = ", ".join(f"{value} [{key}]" for value, key in tag.values.items())
        print(f"  tag {tag.name}{' (required)' if tag.required else ''}: {keys}")
    for device in profile.devices:
        print(f"  device {device.name}: crop {device.crop.as_list()}, {len(device.masks)} mask(s)")
