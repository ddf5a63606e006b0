"""The main screen: go through the files, fix each crop, add masks, tag, exclude.

Every change goes to the session file at once. Reading headers and decoding
frames happen in workers that post messages back (see ``ustui.tui.loading``).
"""

from __future__ import annotations

import queue
from typing import ClassVar

import numpy as np
from pydicom import Dataset
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import ProgressBar
from textual.worker import Worker, WorkerState, get_current_worker

from ustui.core.boxes import Box
from ustui.core.cropping import CropChoice
from ustui.core.errors import UstuiError
from ustui.core.inputs import InputFile, discover, ignored_summary
from ustui.core.pixel_text import TextScan
from ustui.core.printable import printable
from ustui.core.profiles import DevicePreset, Profile, get_profile, save_device_preset, user_file
from ustui.core.text_reader import MISSING_NOTICE
from ustui.tui import layout, loading, presets, tag_prefill, tagging
from ustui.tui.commands import FileCommands
from ustui.tui.editing import Handle, cycle, new_mask, nudge
from ustui.tui.inspecting import header_fates
from ustui.tui.messages import (
    FileFailed,
    FileOpened,
    FilesFound,
    FrameDecoded,
    HeadersRead,
    TextRead,
)
from ustui.tui.model import Entry, FileInfo, Status, Workspace, effective_crop, missing_tags
from ustui.tui.screens.confirm import ConfirmScreen
from ustui.tui.screens.export import ExportScreen
from ustui.tui.screens.too_small import TooSmallScreen
from ustui.tui.status_text import SOURCE_NAMES, status_text, summary_text
from ustui.tui.text_review import TextBox, describe, text_boxes, toggled
from ustui.tui.widgets.file_list import FileList
from ustui.tui.widgets.inspector import Inspector
from ustui.tui.widgets.key_bar import KeyBar
from ustui.tui.widgets.preview import Boxes, Preview
from ustui.tui.widgets.tag_panel import TagPanel
from ustui.tui.widgets.text_view import TextView
from ustui.tui.widgets.zoom import ZoomView, zoom_label
from ustui.tui.written import fan_mask_on, written_boxes, written_note

#: A nudge moves the active handle by this many original pixels; shift multiplies by 10.
STEP = 1
FAST = 10


def tag_bindings(profile: Profile) -> list[Binding]:
    """One hidden binding per tag value, from the profile's hotkeys."""
    return [
        Binding(
            hotkey,
            f"tag({field.name!r}, {value!r})",
            f"{field.name} = {value}",
            show=False,
            id=f"tag.{field.name}.{value}",
        )
        for field in profile.tags
        for value, hotkey in field.values.items()
    ]


def review_bindings(profile: Profile) -> list[Binding]:
    """Every binding of the review screen with ``profile``'s tag keys (help, keymap checks)."""
    return list(Binding.make_bindings([*ReviewScreen.BINDINGS, *tag_bindings(profile)]))


class ReviewScreen(Screen[None]):
    """Files on the left, the frame with its boxes in the middle, zoom and tags on the right.

    Nothing has focus, so every key reaches the screen's bindings; only the header
    inspector takes focus while it is open (arrows then scroll it).
    """

    AUTO_FOCUS = ""
    COMMANDS = Screen.COMMANDS | {FileCommands}

    #: Shown bindings come first, in the order the footer shows them (the most used
    #: first; what does not fit is behind ``? more``).
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("j", "step_file(1)", "next file", id="file.next"),
        Binding("k", "step_file(-1)", "previous file", id="file.previous"),
        Binding("e", "open_export", "open the export screen", id="export.open"),
        Binding("x", "toggle_exclude", "exclude / include the file", id="file.exclude"),
        Binding("a", "auto_crop", "auto crop", id="crop.auto"),
        Binding(
            "full_stop", "repeat_tags", "same tags as the previous tagged file", id="tags.repeat"
        ),
        Binding("tab", "cycle_handle(1)", "next handle", id="handle.next"),
        Binding("m", "add_mask", "add a mask", id="mask.add"),
        Binding("v", "toggle_export_view", "export view", id="view.export"),
        Binding("t", "next_text", "next text found in the image", id="text.next"),
        Binding("i", "toggle_inspector", "header inspector", id="view.inspector"),
        Binding("J", "pick(1)", "pick this file and the next", id="tags.pick_next"),
        Binding("s", "save_preset", "save the crop as device preset", id="crop.save_preset"),
        Binding("space", "play", "play / pause", id="frame.play"),
        Binding("question_mark", "app.help", "help", id="app.help"),
        Binding("q", "app.quit", "quit", id="app.quit"),
        Binding(
            "K", "pick(-1)", "pick this file and the previous", show=False, id="tags.pick_previous"
        ),
        Binding("T", "toggle_text", "mask / unmask that text", show=False, id="text.toggle"),
        Binding("f", "toggle_fan_mask", "fan mask", show=False, id="mask.fan"),
        Binding(
            "enter",
            "accept_header_tags",
            "accept the header's tags",
            show=False,
            id="tag.accept_header",
        ),
        Binding("up", "nudge(0, -1)", "move up", show=False, id="crop.up"),
        Binding("down", "nudge(0, 1)", "move down", show=False, id="crop.down"),
        Binding("left", "nudge(-1, 0)", "move left", show=False, id="crop.left"),
        Binding("right", "nudge(1, 0)", "move right", show=False, id="crop.right"),
        Binding("shift+up", "nudge(0, -1, True)", "up 10", show=False, id="crop.up_fast"),
        Binding("shift+down", "nudge(0, 1, True)", "down 10", show=False, id="crop.down_fast"),
        Binding("shift+left", "nudge(-1, 0, True)", "left 10", show=False, id="crop.left_fast"),
        Binding("shift+right", "nudge(1, 0, True)", "right 10", show=False, id="crop.right_fast"),
        Binding("shift+tab", "cycle_handle(-1)", "prev handle", show=False, id="handle.previous"),
        Binding(
            "escape", "select_crop", "unpick files / back to the crop", show=False, id="handle.crop"
        ),
        Binding(
            "left_square_bracket", "step_frame(-1)", "prev frame", show=False, id="frame.previous"
        ),
        Binding("right_square_bracket", "step_frame(1)", "next frame", show=False, id="frame.next"),
        Binding("delete,backspace", "delete_mask", "delete mask", show=False, id="mask.delete"),
    ]

    #: Short words for the footer (the help shows the descriptions).
    KEY_LABELS: ClassVar[dict[str, str]] = {
        "file.next": "next",
        "file.previous": "prev",
        "export.open": "export",
        "file.exclude": "exclude",
        "crop.auto": "auto",
        "tags.repeat": "same tags",
        "handle.next": "handle",
        "mask.add": "mask",
        "view.export": "view",
        "text.next": "text",
        "view.inspector": "header",
        "tags.pick_next": "pick",
        "crop.save_preset": "preset",
        "frame.play": "play",
    }

    def __init__(self, workspace: Workspace, protocol: str) -> None:
        super().__init__()
        self.workspace = workspace
        self.protocol = protocol
        self.index = -1
        self.frame = 0
        self.frame_count = 1
        self.handle = Handle()
        self.playing = False
        self._rgb: np.ndarray | None = None
        self._header: Dataset | None = None
        self._opened: str | None = None
        """Key of the file whose analysed crop is known (FileOpened arrived)."""
        self._requests: queue.Queue[int] = queue.Queue()
        self._waiting = False
        self._wanted: int | None = None
        """The frame last asked of the worker, until it arrives."""
        self._player: Timer | None = None
        self._found = False
        self._headers: Worker[None] | None = None
        """The worker reading headers (then analysing frames), while it runs."""
        self._progress = ""
        """What that worker is doing, for the summary line."""
        self._text: TextScan | None = None
        self._text_area: Box | None = None
        """The crop the text was (or is being) read in."""
        self._text_read: Box | None = None
        """The crop of the last reading that came back."""
        self._text_selected: int | None = None
        self._text_timer: Timer | None = None
        self.picked = tagging.Picked()
        """Files picked (J/K) to be tagged together."""
        for binding in Binding.make_bindings(tag_bindings(workspace.profile)):
            self._bindings._add_binding(binding)

    # --- layout -------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        with Horizontal(id="top"):
            yield TextView(id="summary")
            yield ProgressBar(id="reading", show_eta=True)
        with Horizontal(id="main"):
            yield FileList(id="files")
            with Vertical(id="centre"):
                yield Preview(self.protocol, id="preview")
                yield TextView(id="status-line")
            with Vertical(id="side"):
                yield ZoomView(id="zoom")
                yield TextView(id="zoom-label")
                yield TagPanel(id="tags")
            yield Inspector(id="inspector")
        yield KeyBar()

    def on_mount(self) -> None:
        self.query_one("#zoom", ZoomView).border_title = "zoom"
        self.query_one("#tags", TagPanel).border_title = "tags"
        self.query_one("#files", FileList).border_title = "files"
        self.query_one("#preview", Preview).show_message("searching the inputs…")
        self._summary()
        self._find_files(self.workspace.paths)

    def on_resize(self) -> None:
        width, height = self.size
        for name, applies in layout.size_classes(width, height).items():
            self.set_class(applies, name)
        if layout.too_small(width, height) and self.app.screen is self:
            self.app.push_screen(TooSmallScreen())
        self._summary()
        self._status_line()

    # --- workers ------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="find", exit_on_error=False)
    def _find_files(self, paths: list[str]) -> None:
        found = discover(paths)
        ignored = [(p.source or "", p.reason) for p in found.ignored]
        self.post_message(
            FilesFound(
                found.files,
                [str(p) for p in found.problems],
                ignored_summary(ignored) if ignored else "",
            )
        )

    @work(thread=True, exclusive=True, group="headers", exit_on_error=False)
    def _read_headers(self, files: list[InputFile], profile: Profile) -> None:
        worker = get_current_worker()
        loading.read_headers(
            files,
            profile,
            lambda batch, stage, done, total: self.post_message(
                HeadersRead(batch, stage, done, total)
            ),
            lambda: worker.is_cancelled,
        )

    @work(thread=True, exclusive=True, group="file", exit_on_error=False)
    def _serve_file(
        self, source: InputFile, profile: Profile, frame: int, requests: queue.Queue[int]
    ) -> None:
        worker = get_current_worker()
        loading.serve_file(
            source, profile, frame, requests, self.post_message, lambda: worker.is_cancelled
        )

    @work(thread=True, exclusive=True, group="text", exit_on_error=False)
    def _read_text(self, source: InputFile, area: Box) -> None:
        loading.read_text(source, area, self.post_message)

    # --- messages from the workers --------------------------------------------------

    @property
    def busy(self) -> bool:
        """Whether a worker still has something to report (headers, the file, a frame)."""
        ws = self.workspace
        if not self._found or self._headers is not None:
            return True
        if self.index < 0 or ws.entries[self.index].problem:
            return False
        if self._text_area is not None and self._text_read != self._text_area:
            return True
        return self._opened != ws.entries[self.index].file.key or self._wanted is not None

    def on_files_found(self, message: FilesFound) -> None:
        self._found = True
        ws = self.workspace
        ws.set_entries([Entry(f) for f in message.files])
        ws.problems = message.problems
        for problem in message.problems:
            self.notify(printable(problem), severity="warning", timeout=8, markup=False)
        if message.ignored:
            self.notify(message.ignored, timeout=8, markup=False)
        files = self.query_one("#files", FileList)
        files.set_entries(ws.entries, [ws.status(i) for i in range(len(ws.entries))])
        if not ws.entries:
            self.query_one("#preview", Preview).show_message("no files found in the inputs")
            self._summary()
            return
        cursor = ws.session.cursor_file
        start = ws.position.get(cursor or "")
        self._open(start or 0, ws.session.cursor_frame if start is not None else 0)
        self._start_reading()

    def on_headers_read(self, message: HeadersRead) -> None:
        ws = self.workspace
        files = self.query_one("#files", FileList)
        current = ws.entries[self.index].file.key if self.index >= 0 else None
        for result in message.results:
            index = ws.position.get(result.key)
            if index is None or result.key == self._opened:
                continue  # the open file already knows more (its analysed crop)
            for changed in ws.learn(index, result.info, result.problem):
                files.update_entry(changed, ws.entries[changed], *ws.status(changed))
        self.query_one("#reading", ProgressBar).update(total=message.total, progress=message.done)
        doing = "reading headers" if message.stage == "headers" else "analysing frames"
        self._progress = f"{doing} {message.done}/{message.total}"
        self._summary()
        if any(r.key == current for r in message.results):
            self._show_state()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker is self._headers and event.state in (
            WorkerState.SUCCESS,
            WorkerState.ERROR,
            WorkerState.CANCELLED,
        ):
            self._headers = None
            self.query_one("#reading", ProgressBar).display = False
            self._summary()

    def on_file_opened(self, message: FileOpened) -> None:
        if not self._is_current(message.key):
            return
        self._learn(message.info, None)
        self._opened = message.key
        self._header = message.header
        self._show_inspector()
        self._file_changed()

    def on_frame_decoded(self, message: FrameDecoded) -> None:
        if not self._is_current(message.key):
            return
        self._waiting = False
        if self._rgb is None or message.index == self._wanted:
            self._wanted = None  # the first frame may be clamped to the file's count
        self._rgb = message.rgb
        self.frame, self.frame_count = message.index, message.count
        self.query_one("#preview", Preview).show_frame(message.rgb)
        self._show_boxes()
        if not self.playing and self.workspace.session.cursor_frame != self.frame:
            self.workspace.session.cursor_frame = self.frame
            self.workspace.session.save()

    def on_text_read(self, message: TextRead) -> None:
        if not self._is_current(message.key) or message.area != self._text_area:
            return
        if message.scan is None and not self.workspace.text_notice_given:
            self.workspace.text_notice_given = True
            self.notify(MISSING_NOTICE, severity="warning", timeout=10)
        self._text, self._text_read = message.scan, message.area
        self._show_boxes()

    def on_file_failed(self, message: FileFailed) -> None:
        if not self._is_current(message.key):
            return
        entry = self.workspace.entries[self.index]
        if message.unsupported:
            self._learn(entry.info, message.reason)
        self._stop()
        self._wanted = None
        self.query_one("#preview", Preview).show_message(f"cannot show this file: {message.reason}")
        self._file_changed()

    def on_file_list_clicked(self, message: FileList.Clicked) -> None:
        self.open_file(message.index)

    def open_file(self, index: int) -> None:
        """Show file ``index`` from its first frame (a click, the command palette)."""
        if 0 <= index < len(self.workspace.entries):
            self._open(index, 0)

    # --- actions ----------------------------------------------------------------------

    def action_step_file(self, step: int) -> None:
        if self.workspace.entries:
            self._open((self.index + step) % len(self.workspace.entries), 0)

    def action_step_frame(self, step: int) -> None:
        if self.frame_count > 1 and self._rgb is not None:
            self._stop()
            base = self.frame if self._wanted is None else self._wanted  # keys outrun decoding
            self._wanted = (base + step) % self.frame_count
            self._requests.put(self._wanted)

    def action_play(self) -> None:
        if self.playing:
            self._stop()
            self.workspace.session.cursor_frame = self.frame
            self.workspace.session.save()
        elif self.frame_count > 1 and self._rgb is not None:
            info = self.workspace.entries[self.index].info
            fps = info.fps if info else loading.DEFAULT_FPS
            self.playing = True
            self._player = self.set_interval(1 / fps, self._next_cine_frame)
            self._status_line()

    def action_nudge(self, dx: int, dy: int, fast: bool = False) -> None:
        current = self._editable()
        if current is None:
            return
        entry, choice = current
        assert entry.info is not None
        step = FAST if fast else STEP
        decision = self.workspace.decision(self.index)
        columns, rows = entry.info.columns, entry.info.rows
        if self.handle.is_mask:
            masks = list(choice.masks)
            mask = masks[self.handle.mask_index]
            masks[self.handle.mask_index] = nudge(
                mask, self.handle.part, dx * step, dy * step, columns=columns, rows=rows
            )
            decision.masks = masks
        else:
            decision.crop = nudge(
                choice.box, self.handle.part, dx * step, dy * step, columns=columns, rows=rows
            )
            decision.crop_source = None
            decision.masks = list(choice.masks)
        self._decided()

    def action_cycle_handle(self, step: int) -> None:
        current = self._editable()
        if current is not None:
            self.handle = cycle(self.handle, len(current[1].masks), step)
            self._show_boxes()

    def action_select_crop(self) -> None:
        if self.picked:
            self.picked.clear()
            self._show_picked()
            return
        self.handle = Handle()
        self._show_boxes()

    def action_pick(self, step: int) -> None:
        """Pick this file and the next (J) or previous (K) one, to tag them together."""
        count = len(self.workspace.entries)
        if self.index < 0 or count < 2:
            return
        following = (self.index + step) % count
        self.picked.extend_to(self.index, following)
        self._open(following, 0)
        self._show_picked()

    def _show_picked(self) -> None:
        self.query_one("#files", FileList).show_picked(self.picked.indices)
        self._status_line()

    def action_auto_crop(self) -> None:
        current = self._editable()
        if current is None:
            return
        entry, choice = current
        assert entry.info is not None
        if self._opened != entry.file.key:
            self.notify("still analysing this file's frames; try again in a moment")
            return
        decision = self.workspace.decision(self.index)
        decision.crop = entry.info.auto.box
        decision.crop_source = entry.info.auto.source
        decision.masks = list(choice.masks)
        self.handle = Handle()
        self._decided()
        self.notify(f"crop from {SOURCE_NAMES[entry.info.auto.source]}", timeout=3)

    def action_add_mask(self) -> None:
        current = self._editable()
        if current is None:
            return
        entry, choice = current
        assert entry.info is not None
        info = entry.info
        masks = [*choice.masks, new_mask(choice.box, columns=info.columns, rows=info.rows)]
        self._set_masks(choice, masks)
        self.handle = Handle(len(masks), "box")
        self._decided()

    def action_delete_mask(self) -> None:
        current = self._editable()
        if current is None or not self.handle.is_mask:
            return
        masks = list(current[1].masks)
        del masks[self.handle.mask_index]
        self._set_masks(current[1], masks)
        self.handle = Handle()
        self._decided()

    def _set_masks(self, choice: CropChoice, masks: list[Box]) -> None:
        """Editing masks reviews the crop too: pin it, so that an empty mask list is
        the user's choice rather than a fall-back to the preset's masks."""
        decision = self.workspace.decision(self.index)
        decision.crop = choice.box
        decision.crop_source = None if choice.source == "session" else choice.source
        decision.masks = masks

    def action_toggle_export_view(self) -> None:
        preview = self.query_one("#preview", Preview)
        preview.set_export_mode(not preview.export_mode)
        self._show_boxes()

    def _text_boxes(self) -> list[TextBox]:
        current = self._editable()
        if current is None or self._text is None:
            return []
        entry, _ = current
        assert entry.info is not None
        return text_boxes(
            self._text,
            self.workspace.peek(self.index).text_masks,
            self.workspace.profile.export.pixel_text,
            columns=entry.info.columns,
            rows=entry.info.rows,
        )

    def action_next_text(self) -> None:
        """Select the next text box; stepping past the last one accepts what is masked."""
        boxes = self._text_boxes()
        if not boxes:
            self.notify("no text found in this file's crop" if self._text else "reading text…")
            return
        following = 0 if self._text_selected is None else self._text_selected + 1
        if following >= len(boxes):
            self._text_selected = None
            decision = self.workspace.decision(self.index)
            if decision.text_masks is None:
                decision.text_masks = [b.box for b in boxes if b.masked]
                self.notify("text reviewed", timeout=3)
            self._decided()
            return
        self._text_selected = following
        self._show_boxes()

    def action_toggle_text(self) -> None:
        boxes = self._text_boxes()
        if self._text_selected is None or self._text_selected >= len(boxes):
            self.action_next_text()
            return
        decision = self.workspace.decision(self.index)
        decision.text_masks = toggled(boxes, self._text_selected)
        self._decided()

    def action_toggle_fan_mask(self) -> None:
        if self.index < 0:
            return
        decision = self.workspace.decision(self.index)
        decision.fan_mask = not fan_mask_on(decision, self.workspace.profile)
        self._decided()
        state = "on: black outside the sector" if decision.fan_mask else "off"
        self.notify(f"fan mask {state} (applied on export)", timeout=3)

    def action_toggle_exclude(self) -> None:
        if self.index < 0:
            return
        decision = self.workspace.decision(self.index)
        decision.excluded = not decision.excluded
        self._decided()

    def action_accept_header_tags(self) -> None:
        """Take the header's pre-selected tags and confirm disagreements with it."""
        if self.index < 0:
            return
        entry = self.workspace.entries[self.index]
        was_missing = bool(self._missing(self.index))
        taken = tag_prefill.accept(self.workspace.decision(self.index), entry.header_tags)
        self.notify(
            "from the header: " + ", ".join(f"{k} {v}" for k, v in taken.items())
            if taken
            else "tags confirmed against the header",
            timeout=3,
        )
        self._tagged([self.index], was_missing, always_advance=True)

    def action_tag(self, name: str, value: str) -> None:
        if self.index < 0:
            return
        ws = self.workspace
        indices = self.picked.with_current(self.index)
        was_missing = bool(self._missing(self.index))
        for index in indices:
            # The header's pre-selected answers were on screen while this file was tagged.
            decision = ws.decision(index)
            pending = tag_prefill.pending(decision, ws.entries[index].header_tags)
            decision.tags.update({k: v for k, v in pending.items() if k != name})
            decision.header_reviewed = False  # confirmed against the header anew
        tagging.apply_tag(ws, indices, name, value)
        self._tagged(indices, was_missing)

    def _missing(self, index: int) -> list[str]:
        ws = self.workspace
        return missing_tags(ws.peek(index), ws.profile, ws.entries[index].header_tags)

    def action_repeat_tags(self) -> None:
        """Give this file (and the picked ones) the tags of the previous tagged file."""
        if self.index < 0:
            return
        ws = self.workspace
        source = tagging.previous_tagged(ws, self.index)
        if source is None:
            self.notify("no earlier file has tags yet")
            return
        was_missing = bool(self._missing(self.index))
        indices = [i for i in self.picked.with_current(self.index) if i != source]
        for index in indices:
            tagging.copy_tags(ws, source, index)
        self._tagged(indices, was_missing, always_advance=True)

    def _tagged(
        self, indices: list[int], was_missing: bool, *, always_advance: bool = False
    ) -> None:
        """Tags changed on ``indices``: save, show, and once the current file is complete,
        move on to the next file that needs work."""
        ws = self.workspace
        self.workspace.session.save()
        files = self.query_one("#files", FileList)
        for index in indices:
            files.update_entry(index, ws.entries[index], *ws.refresh(index))
        self._file_changed()
        status, reason = ws.status(self.index)
        if self._missing(self.index) or not (was_missing or always_advance):
            return
        if self.picked:  # the picked files are tagged: the next file starts a new pick
            self.picked.clear()
            self._show_picked()
        if status is Status.READY:
            following = ws.next_needing_work(self.index)
            if following is None:
                self.notify("every file is ready or excluded — press e to export")
            else:
                self._open(following, 0)
        elif status is Status.NEEDS_CROP:
            self.notify(f"tags complete, but {reason}: set the crop (arrows) or press a")

    def action_save_preset(self) -> None:
        current = self._editable()
        if current is None:
            return
        entry, choice = current
        assert entry.info is not None
        ws = self.workspace
        preset = presets.preset_from(entry.info, choice)
        question = presets.preset_question(preset, ws.profile.name, user_file())

        def answered(yes: bool | None) -> None:
            if yes:
                self._save_preset(preset)
            else:
                self.notify("preset not saved")

        self.app.push_screen(ConfirmScreen("save device preset?", question), answered)

    def _save_preset(self, preset: DevicePreset) -> None:
        ws = self.workspace
        try:
            path = save_device_preset(ws.profile, preset)
            ws.profile = get_profile(ws.profile.name)
        except (UstuiError, OSError) as exc:
            self.notify(printable(f"preset not saved: {exc}"), severity="error", markup=False)
            return
        self.notify(printable(f"preset {preset.name} saved to {path}"), markup=False)
        # Presets change the automatic crop of matching files: read the headers again.
        self._opened = None
        self._start_reading()
        self._open(self.index, self.frame)

    def action_toggle_inspector(self) -> None:
        self.toggle_class("-inspecting")
        self._show_inspector()
        inspector = self.query_one("#inspector", Inspector)
        self.set_focus(inspector if self.has_class("-inspecting") else None)

    def on_inspector_closed(self) -> None:
        if self.has_class("-inspecting"):
            self.action_toggle_inspector()

    def on_inspector_deid_toggled(self) -> None:
        self._show_inspector()

    def action_open_export(self) -> None:
        self._stop()
        self.app.push_screen(ExportScreen(self.workspace))

    # --- helpers ----------------------------------------------------------------------

    def _is_current(self, key: str) -> bool:
        return 0 <= self.index < len(self.workspace.entries) and (
            self.workspace.entries[self.index].file.key == key
        )

    def _learn(self, info: FileInfo | None, problem: str | None) -> None:
        """What the current file's worker found; its copies' marks may change too."""
        ws = self.workspace
        files = self.query_one("#files", FileList)
        for changed in ws.learn(self.index, info, problem):
            files.update_entry(changed, ws.entries[changed], *ws.status(changed))

    def _editable(self) -> tuple[Entry, CropChoice] | None:
        """The current entry and its effective crop, when the file can be edited."""
        if self.index < 0:
            return None
        entry = self.workspace.entries[self.index]
        choice = effective_crop(entry, self.workspace.peek(self.index))
        if choice is None or entry.problem or self.workspace.duplicate_of(self.index):
            return None
        return entry, choice

    def _open(self, index: int, frame: int) -> None:
        ws = self.workspace
        self._stop()
        self.index = index
        self.frame = frame
        info = ws.entries[index].info
        self.frame_count = info.frames if info is not None else 1
        self.handle = Handle()
        self._rgb, self._header, self._opened = None, None, None
        self._text, self._text_selected = None, None
        self._text_area = self._text_read = None
        entry = ws.entries[index]
        ws.session.cursor_file, ws.session.cursor_frame = entry.file.key, frame
        ws.session.save()
        self.query_one("#files", FileList).select_file(index)
        preview = self.query_one("#preview", Preview)
        if entry.problem:
            preview.show_message(f"cannot show this file: {entry.problem}")
            self.workers.cancel_group(self, "file")
        else:
            preview.show_message(f"reading {entry.name}…")
            self._wanted = frame
            self._requests = queue.Queue()
            self._serve_file(entry.file, ws.profile, frame, self._requests)
        self._show_inspector()
        self._file_changed()

    def _start_reading(self) -> None:
        """Read every header (again, after the profile changed), with a progress bar."""
        bar = self.query_one("#reading", ProgressBar)
        bar.update(total=len(self.workspace.entries), progress=0)
        bar.display = True
        self._progress = ""
        ws = self.workspace
        self._headers = self._read_headers([e.file for e in ws.entries], ws.profile)

    def _decided(self) -> None:
        """A decision changed: save it, then show it everywhere."""
        self.workspace.session.save()
        self._file_changed()

    def _file_changed(self) -> None:
        ws = self.workspace
        if self.index < 0:
            return
        entry = ws.entries[self.index]
        self.query_one("#files", FileList).update_entry(self.index, entry, *ws.refresh(self.index))
        self._show_state()
        self._summary()

    def _show_state(self) -> None:
        self.query_one("#tags", TagPanel).show_tags(
            self.workspace.profile,
            self.workspace.peek(self.index),
            self.workspace.entries[self.index].header_tags,
        )
        self._show_boxes()

    def _boxes(self) -> Boxes | None:
        if self.index < 0:
            return None
        entry = self.workspace.entries[self.index]
        choice = effective_crop(entry, self.workspace.peek(self.index))
        if choice is None or entry.problem:
            return None
        if self.handle.target > len(choice.masks):
            self.handle = Handle()
        texts = tuple(self._text_boxes())
        if self._text_selected is not None and self._text_selected >= len(texts):
            self._text_selected = None
        boxes = Boxes(
            choice.box,
            choice.masks,
            self.handle,
            choice.reviewed,
            texts=texts,
            text_selected=self._text_selected,
        )
        return written_boxes(boxes, entry, self.workspace.peek(self.index), self.workspace.profile)

    def _want_text(self) -> None:
        """Read the text in the current crop once the crop has settled (nudges come fast)."""
        current = self._editable()
        if (
            current is None
            or self._opened != current[0].file.key
            or self.workspace.profile.export.pixel_text == "off"
            or current[1].box == self._text_area
        ):
            return
        entry, choice = current
        self._text_area = choice.box
        if self._text_timer is not None:
            self._text_timer.stop()
        self._text_timer = self.set_timer(0.4, lambda: self._read_text(entry.file, choice.box))

    def _show_boxes(self) -> None:
        self._want_text()
        boxes = self._boxes()
        self.query_one("#preview", Preview).show_boxes(boxes)
        self.query_one("#zoom", ZoomView).show(self._rgb, boxes)
        label = Text(zoom_label(boxes), style="bold yellow") if boxes else Text()
        self.query_one("#zoom-label", TextView).show(label)
        self._status_line()

    def _status_line(self) -> None:
        """Three lines under the frame: file and frame; status; crop (or the tag keys)."""
        if self.index < 0:
            self.query_one("#status-line", TextView).show(Text())
            return
        ws = self.workspace
        entry = ws.entries[self.index]
        width = self.size.width
        choice = effective_crop(entry, ws.peek(self.index))
        line = status_text(
            workspace=ws,
            index=self.index,
            frame=self.frame,
            frame_count=self.frame_count,
            playing=self.playing,
            export_view=self.query_one("#preview", Preview).export_mode,
            picked=len(self.picked.indices),
            show_position=layout.files_folded(width),
            show_tags=layout.tags_folded(width),
            choice=choice,
            written=written_note(entry, choice.box) if choice is not None else "",
            fan_mask=fan_mask_on(ws.peek(self.index), ws.profile),
            text_found=None
            if self._text is None
            else describe(self._text_boxes(), ws.peek(self.index).text_masks is not None),
        )
        self.query_one("#status-line", TextView).show(line)

    def _summary(self) -> None:
        progress = self._progress if self._headers is not None else ""
        text = summary_text(self.workspace, progress, self.size.width)
        self.query_one("#summary", TextView).show(text)

    def _show_inspector(self) -> None:
        if not self.has_class("-inspecting"):
            return
        inspector = self.query_one("#inspector", Inspector)
        name = self.workspace.entries[self.index].name if self.index >= 0 else ""
        if self._header is None:
            inspector.show(None, f"{name}: header not read yet")
            return
        if not inspector.deid_view:
            inspector.show(self._header, f"{name}: original header")
            return
        try:
            fates = header_fates(self.workspace, self.index, self._header)
        except (UstuiError, OSError) as exc:
            self.notify(f"cannot de-identify this header: {exc}", severity="error")
            inspector.show(self._header, f"{name}: original header")
            return
        inspector.show(self._header, f"{name}: original → what the export writes", fates)

    def _next_cine_frame(self) -> None:
        if not self._waiting:
            self._waiting = True
            self._requests.put(self.frame + 1)

    def _stop(self) -> None:
        if self._player is not None:
            self._player.stop()
            self._player = None
        if self.playing:
            self.playing = False
            self._status_line()
        self._waiting = False
