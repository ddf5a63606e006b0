"""`e`: where to write the export, what goes in it and what not, progress, then the
result with its verification."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Input, ProgressBar, Static
from textual.worker import get_current_worker

from ustui.core.destination import destination_problem
from ustui.core.errors import UstuiError
from ustui.core.export import ExportRequest, ExportResult, run_export
from ustui.core.printable import printable
from ustui.core.verify import VerifyReport, verify_export
from ustui.tui import tag_prefill
from ustui.tui.eta import Eta
from ustui.tui.messages import ExportFinished, ExportProgressed
from ustui.tui.model import Workspace, missing_tags
from ustui.tui.widgets.key_bar import KeyBar

#: Files at which the export starts using worker processes (they cost a second to start).
PARALLEL_FROM = 8


def default_destination() -> Path:
    """``./ustui-export-<date>-<time>.zip`` in the current folder."""
    return Path.cwd() / time.strftime("ustui-export-%Y%m%d-%H%M.zip")


@dataclass(frozen=True)
class Plan:
    """What an export of the workspace will do, as far as the UI knows before it runs."""

    exported: list[str]
    skipped: list[tuple[str, str]]
    """(file, reason) for each file that will not be exported."""


def plan_export(workspace: Workspace) -> Plan:
    """Which files will be exported and which not, with the reasons the export will give."""
    exported: list[str] = []
    skipped: list[tuple[str, str]] = [(p, "could not be searched") for p in workspace.problems]
    for index, entry in enumerate(workspace.entries):
        decision = workspace.peek(index)
        missing = missing_tags(decision, workspace.profile, entry.header_tags)
        blocked = tag_prefill.blocking(decision, entry.header_tags, workspace.profile)
        copy_of = workspace.duplicate_of(index)
        if entry.problem and not decision.excluded:
            skipped.append((entry.file.label, entry.problem))
        elif copy_of:
            skipped.append((entry.file.label, f"duplicate of {copy_of}"))
        elif decision.excluded:
            skipped.append((entry.file.label, "excluded by the user"))
        elif missing:
            skipped.append((entry.file.label, f"missing required tags: {', '.join(missing)}"))
        elif blocked:
            skipped.append((entry.file.label, blocked[0].describe()))
        else:
            exported.append(entry.file.label)
    return Plan(exported, skipped)


def _skip_table(skipped: list[tuple[str, str]]) -> Table:
    table = Table(box=None, show_header=False, pad_edge=False)
    table.add_column(style="bold", overflow="fold")
    table.add_column(style="yellow", overflow="fold")
    for label, reason in skipped:
        table.add_row(printable(label), printable(reason))
    return table


def plan_text(plan: Plan) -> Group:
    head = Text()
    head.append(f"{len(plan.exported)} file(s) will be exported", style="bold green")
    if plan.skipped:
        head.append(f", {len(plan.skipped)} will not:", style="bold yellow")
    return Group(head, _skip_table(plan.skipped)) if plan.skipped else Group(head)


def outcome_text(result: ExportResult) -> Text:
    """The one line that says how the export ended (shown at the top)."""
    if result.out is None:
        return Text("Nothing could be exported.", style="bold red")
    return Text(
        printable(f"Exported {len(result.exported)} file(s) to {result.out}"), style="bold green"
    )


def result_text(
    result: ExportResult, report: VerifyReport | None, not_searched: Sequence[str] = ()
) -> Group:
    """What the export wrote, what it did not (once, with reasons) and the verification;
    ``not_searched`` are inputs that could not be searched at all."""
    parts: list[Table | Text] = []
    head = Text()
    if result.out is not None:
        head.append("manifest.csv and manifest.json are at the root of the ZIP.")
    if result.crosswalk:
        head.append(printable(f"\nRe-identification crosswalk (keep it safe): {result.crosswalk}"))
    parts.append(head)
    skipped = [(p, "could not be searched") for p in not_searched]
    skipped += [(s.label, s.reason) for s in result.skipped]
    if skipped:
        parts.append(Text(f"\nNot exported ({len(skipped)}):", style="bold yellow"))
        parts.append(_skip_table(skipped))
    if report is not None:
        verdict = Text("\nVerification: ")
        if report.leaks:
            verdict.append(
                f"{len(report.leaks)} identifying value(s) of the originals found in the export!",
                style="bold red",
            )
        else:
            verdict.append(
                f"no identifying value of the originals found ({report.values_searched} values "
                f"searched in {report.files_checked} members).",
                style="bold green",
            )
        parts.append(verdict)
        if report.leaks:
            table = Table(box=None, show_header=True, pad_edge=False)
            table.add_column("where in the export", overflow="fold")
            table.add_column("from", overflow="fold")
            for leak in report.leaks[:50]:
                table.add_row(printable(leak.where), printable(leak.source))
            parts.append(table)
        listed = tuple(f"{label}:" for label, _ in skipped)
        for problem in report.problems:
            if not str(problem).startswith(listed):  # a skipped input is listed once, above
                parts.append(Text(printable(f"not checked: {problem}"), style="yellow"))
    parts.append(Text("\nescape: back to the files", style="dim"))
    return Group(*parts)


class ExportScreen(Screen[None]):
    """Destination, summary, progress and result of one export."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "back (cancels a running export)", id="export.back"),
    ]

    def __init__(self, workspace: Workspace) -> None:
        super().__init__()
        self.workspace = workspace
        self.plan = plan_export(workspace)
        self.running = False
        self.result: ExportResult | None = None
        self.report: VerifyReport | None = None
        self.error: str | None = None
        self._replace: Path | None = None
        """A destination that exists and that the user was warned about once."""
        self.cancelling = False
        self._eta = Eta()
        self._ticker: Timer | None = None
        self._counted: tuple[int, int, str] = (0, 0, "")

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="export-body"):
            yield Static(Text("Export", style="bold"), id="export-title")
            yield Static(id="export-outcome")
            yield Static("Destination (enter starts the export):", classes="label")
            yield Input(str(default_destination()), id="destination")
            yield Static(plan_text(self.plan), id="plan")
            yield ProgressBar(id="export-progress", show_eta=False)
            yield Static(id="export-count")
            yield Static(id="export-result")
        yield KeyBar()

    def on_mount(self) -> None:
        self.query_one("#export-body").border_title = f"profile {self.workspace.profile.name}"
        self.query_one("#export-progress").display = False
        self.query_one("#export-outcome").display = False  # until an export starts
        self.query_one("#destination", Input).focus()

    @on(Input.Submitted, "#destination")
    def start(self, event: Input.Submitted) -> None:
        if self.running:
            return
        out = Path(os.path.expanduser(event.value.strip()))
        if not out.name:
            self.notify("give a file name ending in .zip", severity="error")
            return
        if out.suffix.lower() != ".zip":
            out = out.with_name(out.name + ".zip")
        ws = self.workspace
        files = [e.file for e in ws.entries]
        problem = destination_problem(out, files, ws.paths)
        if problem:
            self.notify(printable(f"{out} {problem}"), severity="error", markup=False)
            return
        if out.exists() and self._replace != out:
            self._replace = out
            self.notify(
                printable(f"{out} exists: press enter again to replace it"),
                severity="warning",
                markup=False,
            )
            return
        self._replace = None
        request = ExportRequest(
            inputs=files,
            profile=ws.profile,
            out=out,
            decisions=dict(ws.session.files),
            workers=1 if len(files) < PARALLEL_FROM else min(4, os.cpu_count() or 1),
        )
        self.running = True
        self.query_one("#destination", Input).disabled = True
        bar = self.query_one("#export-progress", ProgressBar)
        bar.display = True
        bar.update(total=len(files), progress=0)
        self.query_one("#export-result", Static).update("")
        outcome = self.query_one("#export-outcome", Static)
        outcome.update(Text("Exporting…", style="bold"))
        outcome.display = True
        self.cancelling = False
        self.app.clear_notifications()  # a toast of an earlier attempt would mislead
        self._eta = Eta()
        self._count(0, len(files), "")
        self._ticker = self.set_interval(0.5, self._tick)
        self._export(request, list(ws.paths))

    @work(thread=True, exclusive=True, group="export", exit_on_error=False)
    def _export(self, request: ExportRequest, paths: list[str]) -> None:
        worker = get_current_worker()
        try:
            result = run_export(
                request,
                progress=lambda p: self._post(ExportProgressed(p)),
                cancelled=lambda: worker.is_cancelled,
            )
            report = verify_export(request.out, paths) if result.out else None
        except UstuiError as exc:
            self.post_message(ExportFinished(None, None, str(exc)))
            return
        except Exception as exc:  # the screen must never wait for an export that died
            self.post_message(ExportFinished(None, None, f"internal error ({type(exc).__name__})"))
            raise
        self.post_message(ExportFinished(result, report, None))

    def _post(self, message: Message) -> None:
        self.post_message(message)

    def on_export_progressed(self, message: ExportProgressed) -> None:
        progress = message.progress
        self.query_one("#export-progress", ProgressBar).update(
            total=progress.total, progress=progress.done
        )
        self._eta.update(progress.done, progress.total)
        self._count(progress.done, progress.total, progress.label)

    def _count(self, done: int, total: int, label: str) -> None:
        self._counted = (done, total, label)
        where = f"  ·  {printable(label)}" if label else ""
        self.query_one("#export-count", Static).update(
            f"{done} / {total} files  ·  {self._eta.text()}{where}"
        )

    def _tick(self) -> None:
        if self.running:
            self._count(*self._counted)

    def on_export_finished(self, message: ExportFinished) -> None:
        self.running = False
        if self._ticker is not None:
            self._ticker.stop()
        self.result, self.report, self.error = message.result, message.report, message.error
        destination = self.query_one("#destination", Input)
        destination.disabled = False
        destination.focus()
        outcome = self.query_one("#export-outcome", Static)
        result_widget = self.query_one("#export-result", Static)
        if message.result is None:
            if self.cancelling:
                line = Text("Export cancelled: nothing was written.", style="bold yellow")
                self.notify("export cancelled: nothing was written", severity="warning")
            else:
                line = Text(printable(f"Export failed: {message.error}"), style="bold red")
                self.notify(
                    printable(f"export failed: {message.error}"), severity="error", timeout=15
                )
            outcome.update(line)
            self.query_one("#export-count", Static).update("")
            self.query_one("#export-progress").display = False
            return
        outcome.update(outcome_text(message.result))
        # The result lists what was not exported: the plan above would repeat it.
        self.query_one("#plan").display = False
        self.query_one("#export-count", Static).update(
            "verified" if message.report is not None else ""
        )
        result_widget.update(result_text(message.result, message.report, self.workspace.problems))

    def action_back(self) -> None:
        if self.running:
            self.cancelling = True
            self.workers.cancel_group(self, "export")
            self.notify("cancelling the export…")
            return
        self.dismiss()
