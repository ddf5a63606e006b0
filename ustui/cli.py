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

SUBCOMMANDS = ("demo", "export", "verify", "bench", "profiles", "config")
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
        _error(f"error: {message}")
        raise SystemExit(ExitCode.USAGE)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="ustui",
        usage="ustui [-h] [--version] PATH ... [--profile NAME] [--image-protocol PROTOCOL]\n"
        "       ustui {demo,export,verify,bench,profiles,config} ...",
        description="Prepare ultrasound DICOM exams for AI research: review, crop, tag, "
        "de-identify and export. Without a command, opens the terminal UI on PATHs "
        "(DICOM files, folders searched recursively, ZIP archives).",
        epilog="Keys in the UI: press ? for all of them. Remap them in "
        "~/.config/ustui/config.toml under [keymap]; check that file with: ustui config check",
    )
    parser.add_argument("--version", action="version", version=f"ustui {__version__}")
    _add_ui_options(parser.add_argument_group("terminal UI (ustui PATH ...)"))
    sub = parser.add_subparsers(dest="command", parser_class=_Parser, title="commands")

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
    export.add_argument(
        "--accept-header-tags",
        action="store_true",
        help="tag untagged fields with what the header says (Laterality R -> side right)",
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
    bench.add_argument(
        "--files",
        type=int,
        metavar="N",
        help="only measure the peak memory of exporting N small files (e.g. 10000)",
    )

    profiles = sub.add_parser("profiles", help="list, show or check profiles")
    profiles.add_argument("action", nargs="?", default="list", choices=("list", "show", "check"))
    profiles.add_argument("name", nargs="?", help="profile name (show) or file (check)")

    config = sub.add_parser(
        "config", help="check the UI's config.toml (settings, keymap conflicts with the keys)"
    )
    config.add_argument("action", choices=("check",))
    config.add_argument("--profile", help="check tag keys of this profile only (default: all)")
    return parser


def _add_ui_options(group: Any) -> None:
    group.add_argument(
        "--profile",
        metavar="NAME",
        help="profile: tags, presets, de-identification (default: the session's, else "
        "generic-us; list them with: ustui profiles list)",
    )
    group.add_argument(
        "--image-protocol",
        choices=IMAGE_PROTOCOLS,
        metavar="PROTOCOL",
        help="how frames are drawn: auto (detected), tgp, sixel, halfcell or unicode "
        "(default: config.toml's image_protocol, else auto)",
    )


def _ui_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="ustui", description=_parser().description)
    parser.add_argument("paths", nargs="*", metavar="PATH", help="files, folders or ZIPs")
    _add_ui_options(parser)
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
                "config": _config,
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
        _error(str(exc))
        return ExitCode.USAGE
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        _error(f"{where}{exc.strerror or type(exc).__name__}")
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


def _error(message: str) -> None:
    """One line on stderr, names from the inputs escaped (see ustui.core.printable)."""
    from ustui.core.printable import printable

    print(f"ustui: {printable(message)}", file=sys.stderr)


def _open_ui(paths: list[str], profile: str | None, image_protocol: str | None) -> int:
    missing = [p for p in paths if not os.path.lexists(p)]
    if missing:
        _error(f"{missing[0]}: no such file or folder")
        return ExitCode.USAGE
    # Textual reads keys from stdin and draws on stderr; without a terminal it would
    # wait for keys forever (from cron, or with stdin from /dev/null).
    if not (sys.stdin.isatty() and sys.stderr.isatty()):
        _error(
            "the terminal UI needs a terminal; for batch work use: "
            "ustui export PATH ... --out OUT.zip"
        )
        return ExitCode.USAGE
    from ustui.tui.app import run_app

    return run_app(paths, profile=profile, image_protocol=image_protocol)


def _demo(args: argparse.Namespace) -> int:
    from ustui.core.demo import write_demo_exam

    folder = write_demo_exam((args.dir or Path("ustui-demo")).resolve())
    _error(f"demo exam (synthetic, fake PHI) written to {folder}")
    if not sys.stdin.isatty() or not sys.stdout.isatty():
        _error(f"not a terminal; open it with: ustui {folder}")
        return ExitCode.OK
    return _open_ui([str(folder)], args.profile or "dvt", args.image_protocol)


def _export(args: argparse.Namespace) -> int:
    from ustui.core import jit_cache, shards, text_reader
    from ustui.core.destination import destination_problem
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
    problem = destination_problem(args.out, found.files, args.paths)
    if problem:
        _error(f"--out {args.out} {problem}")
        return ExitCode.USAGE
    session = Session.load(args.paths)
    if session.notice:
        _error(session.notice)
    if profile.export.pixel_text != "off" and not text_reader.available():
        _error(text_reader.MISSING_NOTICE)
    if not jit_cache.numba_installed():
        _error(jit_cache.MISSING_NOTICE)
    request = ExportRequest(
        inputs=found.files,
        profile=profile,
        out=args.out,
        decisions=session.files,
        subject=args.subject,
        require_tags=not args.no_require_tags,
        workers=args.workers,
        accept_header_tags=args.accept_header_tags,
        scheduler=args.scheduler,
        shard_size=shard_size,
    )
    try:
        with _stop_on_signals():
            result = run_export(request)
    except UstuiError as exc:
        _error(str(exc))
        return ExitCode.NOTHING
    skipped = [(p.source or "", p.reason) for p in found.problems]
    ignored = [(p.source or "", p.reason) for p in found.ignored]
    skipped += [(s.label, s.reason) for s in result.skipped]
    if args.json:
        summary: dict[str, Any] = {
            "out": str(args.out) if result.out else None,
            "profile": profile.name,
            "exported": [
                {
                    "input": e.label,
                    "path": e.path_in_zip,
                    "crop_source": e.crop_source,
                    "transfer_syntax_out": e.transfer_syntax_out,
                    "lossy": e.lossy,
                    "pixel_text": e.pixel_text,
                    "text_masks": e.text_masks,
                }
                for e in result.exported
            ],
            "skipped": [{"input": label, "reason": reason} for label, reason in skipped],
            "ignored": [{"input": label, "reason": reason} for label, reason in ignored],
            "crosswalk": str(result.crosswalk) if result.crosswalk else None,
            "shards": [str(p) for p in result.shards],
        }
        print(json.dumps(summary, indent=1))
    else:
        _print_export_table(result, skipped, ignored, profile.name, args.out)
    if not result.exported:
        return ExitCode.NOTHING
    return ExitCode.PROBLEMS if skipped else ExitCode.OK


def _print_export_table(
    result: Any,
    skipped: list[tuple[str, str]],
    ignored: list[tuple[str, str]],
    profile: str,
    out: Path,
) -> None:
    from ustui.core.inputs import ignored_summary
    from ustui.core.printable import printable

    rows = [
        (
            printable(e.label),
            printable(e.path_in_zip),
            e.crop_source,
            "lossy" if e.lossy else "lossless",
        )
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
            print(printable(f"  {label}: {reason}"))
    if ignored:
        print(ignored_summary(ignored))
    if result.shards:
        print(
            printable(
                f"Wrote {len(result.shards)} shard(s), {result.shards[0].name} to "
                f"{result.shards[-1].name}, and their manifest {result.out}"
            )
        )
    elif result.out:
        print(printable(f"Wrote {out}"))
    if result.crosswalk:
        print(printable(f"Crosswalk (keep it safe): {result.crosswalk}"))


def _verify(args: argparse.Namespace) -> int:
    from ustui.core.printable import printable
    from ustui.core.verify import Kind, verify_export

    report = verify_export(
        args.export, args.against, key_file=args.key_file, pixels=not args.no_pixels
    )
    if args.json:
        print(json.dumps(report.as_json(), indent=1))
        return ExitCode.OK if report.passed else ExitCode.PROBLEMS
    for problem in report.problems:
        _error(f"not searched: {problem}")
    for finding in report.of(Kind.UNREADABLE, Kind.NOT_SEARCHED, Kind.MISMATCH):
        print(printable(f"{finding.kind}  {finding.where}: {finding.source}"))
    for finding in report.of(Kind.LEAK, Kind.UNCONFIRMED):
        print(printable(f"{finding.kind}  {finding.where}  <- {finding.source}"))
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

    if args.files is not None and args.files < 1:
        _parser().error("--files must be at least 1")
    return run_bench(as_json=args.json, quick=args.quick, files=args.files)


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


def _config(args: argparse.Namespace) -> int:
    from ustui.core.errors import UstuiError
    from ustui.core.profiles import get_profile, load_profiles
    from ustui.tui.config import config_file, load_settings
    from ustui.tui.keymap import keymap_problems
    from ustui.tui.screens.review import review_bindings

    path = config_file()
    try:
        settings = load_settings(path)
    except UstuiError as exc:
        print(f"{path}: {exc.reason}")
        return ExitCode.PROBLEMS
    profiles = [get_profile(args.profile)] if args.profile else list(load_profiles().values())
    problems: list[str] = []
    for profile in profiles:
        for problem in keymap_problems(review_bindings(profile), settings.keymap):
            if problem not in problems:
                problems.append(problem)
                print(f"{path}: {problem} (profile {profile.name})")
    if not problems:
        state = "ok" if path.is_file() else "ok (no file: the default keys)"
        print(f"{path}: {state}")
    return ExitCode.PROBLEMS if problems else ExitCode.OK


def _show_profile(profile: Any) -> None:
    print(f"{profile.name}: {profile.description}")
    files = profile.layers or (profile.source,)
    print(f"  file{'s' if len(files) > 1 else ''}: {' + '.join(str(f) for f in files)}")
    print(f"  de-identification: Basic Profile + {', '.join(profile.deid.options) or 'no options'}")
    print(
        f"  export: {profile.export.template}; lossy input: {profile.export.lossy}; "
        f"lossless input: {profile.export.lossless}"
    )
    from ustui.core.tag_dicom import describe_mapping

    for tag in profile.tags:
        keys = ", ".join(f"{value} [{key}]" for value, key in tag.values.items())
        print(f"  tag {tag.name}{' (required)' if tag.required else ''}: {keys}")
        if tag.dicom:
            print(f"    written to {describe_mapping(tag)}")
    for device in profile.devices:
        print(f"  device {device.name}: crop {device.crop.as_list()}, {len(device.masks)} mask(s)")
