"""The terminal UI on small terminals and for a newcomer (issue 13): panes fold by size,
every key is reachable from the footer or help, names stay distinguishable, the
export screen says how it ended, keymap conflicts are reported, presets are written
as overrides after a question, the inspector explains de-identification, and tags
take fewer keystrokes (repeat, several files at once)."""

from __future__ import annotations

import io
import tomllib
from pathlib import Path

import pydicom
import pytest
from rich.console import Console
from rich.text import Text
from test_tui import exam as exam
from test_tui import pilot_test, settle, write_exam
from textual.pilot import Pilot

from ustui.cli import main
from ustui.core.boxes import Box
from ustui.core.deid_explain import explain
from ustui.core.profiles import DevicePreset, get_profile, load_profiles, save_device_preset
from ustui.core.pseudonyms import Pseudonyms
from ustui.tui.app import make_app
from ustui.tui.eta import Eta
from ustui.tui.keymap import conflicts, keymap_problems
from ustui.tui.layout import MIN_SIZE
from ustui.tui.model import Status
from ustui.tui.names import distinct_names
from ustui.tui.screens.export import ExportScreen
from ustui.tui.screens.help import HelpScreen
from ustui.tui.screens.review import ReviewScreen, review_bindings
from ustui.tui.screens.too_small import TooSmallScreen
from ustui.tui.widgets.file_list import FileList
from ustui.tui.widgets.inspector import Inspector
from ustui.tui.widgets.key_bar import fit_items, key_items
from ustui.tui.widgets.preview import Preview


def visible(screen: ReviewScreen, selector: str) -> bool:
    widget = screen.query_one(selector)
    return bool(widget.display) and widget.size.width > 0 and widget.size.height > 0


def plain(screen: object, selector: str) -> str:
    """What a widget shows, as plain text."""
    widget = screen.query_one(selector)  # type: ignore[attr-defined]
    if not widget.display:
        return ""
    console = Console(width=widget.size.width or 120, record=True, file=io.StringIO())
    console.print(widget.content)
    return console.export_text()


def footer_text(screen: object) -> str:
    from ustui.tui.widgets.key_bar import KeyBar

    bar = screen.query_one(KeyBar)  # type: ignore[attr-defined]
    return fit_items(key_items(bar.screen), bar.size.width).plain


# --- small terminals -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "files", "side"),
    [
        ((160, 50), True, True),
        ((80, 24), True, True),
        ((60, 20), False, True),
        ((40, 12), False, False),
    ],
)
@pilot_test
async def test_panes_fold_by_width_and_the_preview_keeps_room(
    exam: str, size: tuple[int, int], files: bool, side: bool
) -> None:
    app = make_app([exam], profile="dvt")
    async with app.run_test(size=size) as pilot:
        screen = await settle(pilot)
        assert visible(screen, "#files") is files
        assert visible(screen, "#side") is side
        preview = screen.query_one(Preview)
        # The frame always gets at least half the width and most of the height.
        assert preview.size.width >= size[0] // 2
        assert preview.size.height >= size[1] - 6
        status = screen.query_one("#status-line").render()
        lines = (
            str(status).splitlines() if not isinstance(status, Text) else status.plain.split("\n")
        )
        assert "IMG1.dcm" in lines[0]
        if not files:  # the folded file list leaves its position in the status line
            assert lines[0].startswith("1/4 ")  # four images (notes.txt is ignored)
        if not side:  # the folded tag pane leaves its keys in the status line
            assert "site 1-6" in lines[2] and "side l/r" in lines[2]


@pytest.mark.parametrize("size", [(160, 50), (80, 24), (60, 20), (40, 12)])
@pilot_test
async def test_the_footer_shows_every_action_or_more(exam: str, size: tuple[int, int]) -> None:
    app = make_app([exam], profile="dvt")
    async with app.run_test(size=size) as pilot:
        screen = await settle(pilot)
        text = footer_text(screen)
        assert len(text.rstrip()) <= size[0]
        items = key_items(screen)
        assert len(items) == len([b for b in ReviewScreen.BINDINGS if b.show])  # type: ignore[union-attr]
        labels = ReviewScreen.KEY_LABELS
        every = all(f"{key} {label}" in text for key, label in items)
        assert every or text.rstrip().endswith("? more")
        if size[0] >= 160:
            assert every and "e export" in text and "x exclude" in text
        else:
            assert text.startswith("j next  k prev  e export")  # the most used come first
        assert all(label for label in labels.values())


@pilot_test
async def test_a_terminal_below_the_minimum_says_what_it_needs(exam: str) -> None:
    app = make_app([exam], profile="dvt")
    async with app.run_test(size=(30, 10)) as pilot:
        await pilot.pause(0.3)
        assert isinstance(app.screen, TooSmallScreen)
        message = str(app.screen.query_one("#too-small").render())
        assert f"{MIN_SIZE[0]}x{MIN_SIZE[1]} needed" in message and "30x10" in message
        await pilot.press("j")  # keys of the hidden screen do nothing
        await pilot.resize_terminal(80, 24)
        await pilot.pause(0.3)
        screen = await settle(pilot)
        assert screen.index == 0


# --- the file list ---------------------------------------------------------------------


def test_cut_names_keep_the_part_that_differs() -> None:
    names = [
        "jpeg_baseline_34frame.dcm",
        "jpeg_baseline_65frame.dcm",
        "jpeg_baseline_87frame.dcm",
        "deid_greyscale.dcm",
        "deid_greyscale_cine_j2kr.dcm",
        "short.dcm",
    ]
    for width in (12, 14, 16, 20):
        short = distinct_names(names, width)
        assert all(len(s) <= width for s in short)
        assert len(set(short)) == len(short)
        for frames, name in zip(("34", "65", "87"), short, strict=False):
            assert frames in name
        assert short[-1] == "short.dcm"


def test_every_real_name_stays_distinct_at_every_width(real_dir: Path) -> None:
    names = sorted(p.name for p in real_dir.iterdir())
    for width in range(10, 30):
        short = distinct_names(names, width)
        assert len(set(short)) == len(names), width
        assert all(len(s) <= width for s in short)


@pytest.mark.parametrize("size", [(160, 50), (80, 24), (60, 20)])
@pilot_test
async def test_every_file_takes_one_row_even_with_a_scrollbar(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, size: tuple[int, int]
) -> None:
    monkeypatch.chdir(tmp_path)
    folder = write_exam(tmp_path / "exam")
    source = folder / "IMG1.dcm"
    long_names = [f"jpeg_baseline_{n:02d}frame_with_a_very_long_name.dcm" for n in range(60)]
    for name in long_names:
        (folder / name).write_bytes(source.read_bytes())
    app = make_app(["exam"], profile="dvt")
    async with app.run_test(size=(max(size[0], 80), size[1])) as pilot:
        screen = await settle(pilot)
        files = screen.query_one(FileList)
        assert files.max_scroll_y > 0  # the list scrolls
        lines = [files.render_line(y).text for y in range(files.size.height)]
        marks = {s.value for s in Status}
        # Below the exam's heading every row is one file: a mark, then its name.
        assert lines[0].startswith("exam")
        assert all(line[:1] in marks and line[2:].strip() for line in lines[1:])
        seen = {line[2:].strip() for line in lines[1:]}
        assert len(seen) == len(lines) - 1  # distinguishable
        assert all(len(line.rstrip()) <= files.scrollable_content_region.width for line in lines)


# --- the export screen -----------------------------------------------------------------


async def _export_to(pilot: Pilot[int], destination: str) -> ExportScreen:
    await pilot.press("e")
    export = pilot.app.screen
    assert isinstance(export, ExportScreen)
    field = export.query_one("#destination")
    field.value = destination  # type: ignore[attr-defined]
    await pilot.press("enter")
    for _ in range(500):
        await pilot.pause(0.05)
        if not export.running:
            break
    return export


@pilot_test
async def test_a_failed_export_is_a_toast_and_the_top_line(exam: str) -> None:
    app = make_app([exam], profile="dvt")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        export = await _export_to(pilot, "no/such/folder/out.zip")
        outcome = str(export.query_one("#export-outcome").render())
        assert outcome.startswith("Export failed:")
        assert any("export failed" in n.message for n in app._notifications)
        # The outcome comes before the (long) list of what will not be exported.
        assert export.query_one("#export-outcome").region.y < export.query_one("#plan").region.y


@pilot_test
async def test_after_an_export_the_skip_list_is_shown_once(exam: str) -> None:
    app = make_app([exam], profile="dvt")
    async with app.run_test(size=(120, 50)) as pilot:
        await settle(pilot)
        await pilot.press("1", "l", "d")  # IMG1 tagged; the others are skipped
        export = await _export_to(pilot, "out.zip")
        assert export.result is not None and Path("out.zip").is_file()
        assert str(export.query_one("#export-outcome").render()).startswith("Exported 1 file(s)")
        assert not export.query_one("#plan").display
        text = plain(export, "#export-result") + plain(export, "#plan")
        # A text file met in the folder is ignored, so it is not in the skip list at all.
        assert text.count("IMG2.dcm") == 1 and text.count("notes.txt") == 0


@pilot_test
async def test_escape_during_an_export_says_cancelled(
    exam: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ustui.tui.screens.export as export_module
    from ustui.core.export import ExportFailed

    def slow_export(request: object, *, progress: object, cancelled: object) -> object:
        import time

        while not cancelled():  # type: ignore[operator]
            time.sleep(0.01)
        raise ExportFailed("export cancelled; nothing was written")

    monkeypatch.setattr(export_module, "run_export", slow_export)
    app = make_app([exam], profile="dvt")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("e")
        export = app.screen
        assert isinstance(export, ExportScreen)
        await pilot.press("enter")
        await pilot.pause(0.2)
        assert export.running
        assert "elapsed 0:00 · estimating time left" in plain(export, "#export-count")
        await pilot.pause(1.3)  # no progress report came: the clock still moves
        later = plain(export, "#export-count")
        assert "elapsed 0:00" not in later and "elapsed 0:0" in later
        await pilot.press("escape")
        for _ in range(200):
            await pilot.pause(0.02)
            if not export.running:
                break
        outcome = str(export.query_one("#export-outcome").render())
        assert outcome.startswith("Export cancelled") and "failed" not in outcome


def test_the_time_left_counts_down_between_reports() -> None:
    now = [0.0]
    eta = Eta(lambda: now[0])
    assert "estimating" in eta.text()
    now[0] = 10.0
    eta.update(1, 5)  # 10 s per file, 4 files left
    assert eta.text() == "elapsed 0:10 · about 0:40 left"
    now[0] = 25.0  # no report for 15 s: the estimate still moves
    assert eta.text() == "elapsed 0:25 · about 0:25 left"
    eta.update(5, 5)
    assert eta.text() == "elapsed 0:25"


# --- keymap conflicts ------------------------------------------------------------------


def test_the_readme_keymap_example_is_a_conflict() -> None:
    bindings = review_bindings(get_profile("dvt"))
    found = conflicts(bindings, {"file.next": "n,down"})
    described = {c.key: (c.winner, c.losers) for c in found}
    assert described["down"] == ("file.next", ("crop.down",))
    assert described["n"] == ("file.next", ("tag.purpose.non-diagnostic",))
    assert conflicts(bindings, {}) == []  # the default keys never collide
    assert keymap_problems(bindings, {"no.such": "z"}) == [
        "keymap: no action has the id 'no.such' (press ? in the app for the ids)"
    ]


@pilot_test
async def test_keymap_conflicts_are_reported_at_start_and_in_help(
    exam: str, isolated_home: Path
) -> None:
    config = isolated_home / "xdg_config_home" / "ustui" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text('[keymap]\n"file.next" = "n,down"\n')
    app = make_app([exam], profile="generic-us")
    async with app.run_test(size=(160, 50)) as pilot:
        screen = await settle(pilot)
        assert any("crop.down" in n.message for n in app._notifications)
        await pilot.press("down")
        screen = await settle(pilot)
        assert screen.index == 1  # the keymap took Down, as reported
        await pilot.press("?")
        help_screen = app.screen
        assert isinstance(help_screen, HelpScreen)
        rows = {row[3]: row for row in help_screen.rows()}
        assert rows["file.next"][1] == "n / ↓"
        assert rows["crop.down"][1] == "" and "lost ↓" in rows["crop.down"][2]
        problems = str(help_screen.query_one("#help-problems").render())
        assert "file.next takes it from crop.down" in problems


def test_config_check_reports_conflicts(
    isolated_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["config", "check"]) == 0
    assert "ok" in capsys.readouterr().out
    config = isolated_home / "xdg_config_home" / "ustui" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text('[keymap]\n"file.next" = "n,down"\n')
    assert main(["config", "check", "--profile", "dvt"]) == 1
    out = capsys.readouterr().out
    assert "key 'down': file.next takes it from crop.down" in out
    assert "key 'n': file.next takes it from tag.purpose.non-diagnostic" in out
    config.write_text("image_protocol = 'nope'\n")
    assert main(["config", "check"]) == 1
    assert "image_protocol must be one of" in capsys.readouterr().out


# --- presets layered on the shipped profile --------------------------------------------


def test_a_saved_preset_layers_on_the_shipped_profile(isolated_home: Path) -> None:
    shipped = get_profile("dvt")
    preset = DevicePreset(name="acme", crop=Box(1, 2, 30, 40), rows=50, columns=60)
    path = save_device_preset(shipped, preset)
    data = tomllib.loads(path.read_text())
    assert data == {
        "dvt": {
            "devices": [
                {"name": "acme", "crop": [1, 2, 30, 40], "rows": 50, "columns": 60, "frames": "any"}
            ]
        }
    }
    layered = get_profile("dvt")
    assert layered.tags == shipped.tags and layered.deid == shipped.deid
    assert [d.name for d in layered.devices] == ["acme"]
    assert layered.layers[-1] == path and len(layered.layers) == 2
    # A later save of the same device replaces it; other profiles are untouched.
    save_device_preset(layered, DevicePreset(name="acme", crop=Box(0, 0, 10, 10)))
    assert [d.crop for d in get_profile("dvt").devices] == [Box(0, 0, 10, 10)]
    assert load_profiles()["generic-us"].devices == ()


# --- the header inspector --------------------------------------------------------------


def test_explain_tells_what_each_attribute_becomes_and_why(real_dir: Path) -> None:
    header = pydicom.dcmread(real_dir / "us1_uncr.dcm", stop_before_pixels=True)
    before = header.to_json_dict()
    settings = get_profile("dvt").deid
    fates = {
        f.keyword: f
        for f in explain(
            header,
            settings,
            pseudonyms=Pseudonyms(b"k" * 32),
            subject="DVT-1",
            pixels_cleaned=False,
        )
    }
    assert header.to_json_dict() == before  # the original is not changed
    assert fates["InstitutionName"].becomes == "removed"
    assert "Table E.1-1" in fates["InstitutionName"].why
    assert fates["StudyDate"].becomes not in ("kept", "removed", fates["StudyDate"].original)
    assert "retain-modified-dates: C" in fates["StudyDate"].why
    assert (
        fates["PatientName"].becomes == "DVT-1" and "subject pseudonym" in fates["PatientName"].why
    )
    assert fates["SOPInstanceUID"].becomes.startswith("2.25.")
    assert (
        fates["PatientSex"].becomes == "kept"
        and "retain-patient-characteristics: K" in fates["PatientSex"].why
    )
    assert (
        fates["PatientIdentityRemoved"].original == ""
        and fates["PatientIdentityRemoved"].becomes == "YES"
    )


@pilot_test
async def test_the_inspector_closes_with_escape_and_shows_the_deidentified_header(
    exam: str,
) -> None:
    app = make_app([exam], profile="dvt")
    async with app.run_test(size=(160, 50)) as pilot:
        screen = await settle(pilot)
        await pilot.press("l")  # side = left: written to ImageLaterality
        await pilot.press("i")
        inspector = screen.query_one(Inspector)
        assert inspector.display
        await pilot.press("d")
        columns = [c.label.plain for c in inspector.columns.values()]
        assert columns == ["keyword", "original", "export writes", "why"]
        rows = {
            inspector.get_row_at(r)[0]: inspector.get_row_at(r) for r in range(inspector.row_count)
        }
        assert rows["PatientName"][2].startswith("DVT-")
        assert rows["ImageLaterality"][2] == "L" and "tag side = left" in rows["ImageLaterality"][3]
        assert rows["Rows"][3].startswith("crop [")
        assert "Table E.1-1" in rows["InstitutionName"][3]
        await pilot.press("d")
        assert [c.label.plain for c in inspector.columns.values()][2] == "VR"
        await pilot.press("escape")
        assert not inspector.display and app.focused is None


@pilot_test
async def test_long_header_values_are_not_cut(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    folder = write_exam(tmp_path / "exam")
    ds = pydicom.dcmread(folder / "IMG1.dcm")
    ds.ImageComments = "x" * 300 + "END"
    ds.save_as(folder / "IMG1.dcm")
    app = make_app(["exam"], profile="dvt")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await settle(pilot)
        await pilot.press("i")
        inspector = screen.query_one(Inspector)
        values = [inspector.get_row_at(r)[3] for r in range(inspector.row_count)]
        assert any(v.endswith("END") and len(v) == 303 for v in values)
        # Wrapped in its column: the row is as tall as the value needs, nothing hidden.
        column = list(inspector.columns.values())[3]
        row_key = next(k for k in inspector.rows if inspector.get_row(k)[3].endswith("END"))
        assert inspector.rows[row_key].height >= 303 // column.width
        assert inspector.virtual_size.width <= inspector.size.width


# --- discoverability -------------------------------------------------------------------


def test_help_shows_the_options_of_the_ui(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    for option in ("--profile NAME", "--image-protocol", "PATH", "config", "ustui config check"):
        assert option in out


@pilot_test
async def test_chosen_tags_are_marked_by_a_symbol(exam: str) -> None:
    app = make_app([exam], profile="dvt")
    async with app.run_test(size=(160, 50)) as pilot:
        screen = await settle(pilot)
        await pilot.press("2")
        text = screen.query_one("#tags").render()
        plain = text.plain if isinstance(text, Text) else str(text)
        assert "✓2 GSV" in plain and " 1 CFV" in plain


@pilot_test
async def test_one_crop_notation_and_the_frame_count_before_decoding(exam: str) -> None:
    app = make_app([exam], profile="dvt")
    async with app.run_test(size=(160, 50)) as pilot:
        screen = await settle(pilot)
        box = screen.workspace.entries[0].info.auto.box  # type: ignore[union-attr]
        notation = f"{box.as_list()} {box.width}x{box.height}"
        status = screen.query_one("#status-line").render()
        assert notation in (status.plain if isinstance(status, Text) else str(status))
        await pilot.press("tab")
        zoom = screen.query_one("#zoom-label").render()
        assert "crop top y=" in (zoom.plain if isinstance(zoom, Text) else str(zoom))
        screen.open_file(1)  # the cine: its count shows at once, from the header
        status = screen.query_one("#status-line").render()
        assert "frame 1/6" in (status.plain if isinstance(status, Text) else str(status))


# --- fewer keystrokes ------------------------------------------------------------------


@pilot_test
async def test_dot_repeats_the_previous_files_tags_and_moves_on(exam: str) -> None:
    app = make_app([exam], profile="dvt")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await settle(pilot)
        await pilot.press("3", "r", "n")
        screen = await settle(pilot)
        assert screen.index == 1
        await pilot.press("full_stop")
        screen = await settle(pilot)
        ws = screen.workspace
        assert ws.peek(1).tags == {
            "site": "FV-proximal",
            "side": "right",
            "purpose": "non-diagnostic",
        }
        assert ws.status(1)[0] is Status.READY
        assert screen.index == 2  # moved on to the next file that needs work


@pilot_test
async def test_picked_files_are_tagged_together(exam: str) -> None:
    app = make_app([exam], profile="dvt")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await settle(pilot)
        await pilot.press("J", "J")  # IMG1, IMG2 and IMG3 picked; IMG3 shown
        screen = await settle(pilot)
        assert screen.picked.indices == [0, 1, 2] and screen.index == 2
        files = screen.query_one(FileList)
        assert all("▪" in files._prompts[i].plain for i in (0, 1, 2))
        await pilot.press("1", "l", "d")
        screen = await settle(pilot)
        ws = screen.workspace
        for index in (0, 1, 2):
            assert ws.peek(index).tags == {"site": "CFV", "side": "left", "purpose": "diagnostic"}
        assert ws.peek(3).tags == {}
        assert not screen.picked and screen.index == 3
        await pilot.press("J", "escape")  # escape unpicks
        assert not screen.picked


# --- keystrokes per file on the real exam ----------------------------------------------

#: A DVT exam as recorded: three images per site, left leg then right, all diagnostic.
SITES = ("1", "2", "3", "4", "5")


def planned_tags(position: int) -> tuple[str, str, str]:
    """The hotkeys of the file at ``position`` among the exportable files."""
    run = position // 3
    return SITES[run % len(SITES)], "l" if run < len(SITES) else "r", "d"


async def review_exam(pilot: Pilot[int], *, repeat: bool) -> dict[str, int]:
    """Tag every file of the real exam as a user would; count the keys pressed.

    With ``repeat``, a file whose tags equal the previous file's gets ``.``; else its
    three tag keys. A file nothing found the crop of gets ``a`` (accept) and ``j``.
    """
    screen = await settle(pilot)
    ws = screen.workspace
    # Copies of one instance are exported once: only the first needs tags.
    exportable = [i for i in range(len(ws.entries)) if ws.status(i)[0] is not Status.UNSUPPORTED]
    position = {index: n for n, index in enumerate(exportable)}
    counts = {"keys": 0, "files": len(exportable), "crop_keys": 0, "crop_files": 0}
    last: tuple[str, str, str] | None = None
    for _ in range(4 * len(ws.entries)):
        index = screen.index
        status = ws.status(index)[0]
        if status is Status.NEEDS_TAGS:
            wanted = planned_tags(position[index])
            keys = ["full_stop"] if repeat and wanted == last else list(wanted)
            last = wanted
        elif status is Status.NEEDS_CROP:
            keys = ["a", "j"]
            counts["crop_keys"] += 2
            counts["crop_files"] += 1
        else:
            following = ws.next_needing_work(index)
            if following is None:
                break
            keys = ["j"] * ((following - index) % len(ws.entries))
        counts["keys"] += len(keys)
        await pilot.press(*keys)
        screen = await settle(pilot)
    assert all(not ws.status(i)[0].needs_work for i in range(len(ws.entries)))
    for index in exportable:
        info = ws.entries[index].info
        source = "session" if ws.peek(index).crop else info.auto.source if info else "?"
        counts[f"crop_{source}"] = counts.get(f"crop_{source}", 0) + 1
    return counts


@pytest.mark.parametrize("repeat", [False, True])
@pilot_test
async def test_keystrokes_per_file_on_the_real_exam(real_dir: Path, repeat: bool) -> None:
    app = make_app([str(real_dir)], profile="dvt")
    async with app.run_test(size=(160, 50)) as pilot:
        counts = await review_exam(pilot, repeat=repeat)
    per_file = counts["keys"] / counts["files"]
    tag_keys = counts["keys"] - counts["crop_keys"]
    print(f"\nrepeat={repeat}: {counts} -> {per_file:.2f} keys per file")
    if repeat:
        assert tag_keys / counts["files"] <= 2  # where the crop needs no hand
    else:
        assert tag_keys == 3 * counts["files"]
