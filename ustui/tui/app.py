"""The ustui terminal UI: ``run_app`` for the command line, ``make_app`` for it and the tests."""

from __future__ import annotations

import asyncio
import signal
from multiprocessing import resource_tracker
from pathlib import Path

from textual.app import App
from textual.binding import Binding

from ustui.core.profiles import get_profile
from ustui.core.session import Session
from ustui.tui import partial_updates
from ustui.tui.config import Settings, load_settings
from ustui.tui.keymap import keymap_problems
from ustui.tui.model import Workspace
from ustui.tui.screens.help import HelpScreen
from ustui.tui.screens.review import ReviewScreen, review_bindings


class UstuiApp(App[int]):
    """Review, crop, tag and export one set of inputs."""

    CSS_PATH = "app.tcss"
    TITLE = "ustui"

    def __init__(self, workspace: Workspace, *, protocol: str, settings: Settings) -> None:
        super().__init__()
        partial_updates.install()
        self.workspace = workspace
        self.protocol = protocol
        self.settings = settings
        self.handle_hangup = False
        """Set by run_app: save and exit on SIGHUP/SIGTERM (a dropped SSH link)."""

    def review_bindings(self) -> list[Binding]:
        """Every binding of the review screen, the profile's tag keys included."""
        return review_bindings(self.workspace.profile)

    def on_mount(self) -> None:
        self.set_keymap(self.settings.keymap)
        for problem in keymap_problems(self.review_bindings(), self.settings.keymap):
            self.notify(f"config.toml {problem}", severity="warning", timeout=15)
        if self.handle_hangup:
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGHUP, signal.SIGTERM):
                loop.add_signal_handler(signum, self._hang_up, signum)
        self.push_screen(ReviewScreen(self.workspace, self.protocol))
        if self.workspace.session.notice:
            self.notify(self.workspace.session.notice, severity="warning", timeout=10)

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            shown = self.review_bindings()
            self.push_screen(HelpScreen(shown, self.workspace.profile, self._keymap))

    async def action_quit(self) -> None:
        self.workspace.session.save()
        self.exit(0)

    def _hang_up(self, signum: int) -> None:
        # Every decision is saved when made; this keeps the cine frame too. A hang-up is
        # how an SSH session ends (0); SIGTERM says the app was stopped (128 + 15).
        self.workspace.session.save()
        self.exit(0 if signum == signal.SIGHUP else 128 + signum)


def make_app(
    paths: list[str], *, profile: str | None, image_protocol: str = "halfcell"
) -> UstuiApp:
    """The app for ``paths``, resuming their session (the one factory of the CLI and tests).

    Parameters
    ----------
    paths
        DICOM files, folders and ZIP archives, as the user gave them.
    profile
        Profile name; None takes the session's, else the default profile.
    image_protocol
        How frames are drawn, already resolved: tgp, sixel, halfcell or unicode.

    Raises
    ------
    UstuiError
        When the profile or the user's config cannot be used.
    """
    # Exports use worker processes; their resource tracker must start while
    # sys.stderr is still the terminal's (the running app replaces it, and the
    # tracker then fails to start with "bad value(s) in fds_to_keep").
    resource_tracker.ensure_running()
    session = Session.load(paths)
    chosen = get_profile(profile or session.profile)
    session.profile = chosen.name
    session.save()
    workspace = Workspace(paths=[str(Path(p)) for p in paths], session=session, profile=chosen)
    return UstuiApp(workspace, protocol=image_protocol, settings=load_settings())


def resolve_protocol(requested: str) -> str:
    """The image protocol to use; importing textual_image here, before the app starts,
    lets it query the terminal (protocol support and cell size)."""
    if requested == "halfcell":
        return requested
    import textual_image.renderable as renderables
    import textual_image.widget  # noqa: F401  (caches the terminal's cell size)

    if requested != "auto":
        return requested
    detected = renderables.Image
    return {
        renderables.TGPImage: "tgp",
        renderables.SixelImage: "sixel",
        renderables.UnicodeImage: "unicode",
    }.get(detected, "halfcell")


def run_app(paths: list[str], *, profile: str | None, image_protocol: str | None) -> int:
    """Open the terminal UI on ``paths``; return the exit code (0) when the user quits.

    Parameters
    ----------
    paths
        DICOM files, folders and ZIP archives.
    profile
        Profile name, or None for the session's (else the default).
    image_protocol
        auto, tgp, sixel, halfcell or unicode; None takes the config file's
        setting, else auto. Detection happens here, before the app starts.

    A hang-up (SIGHUP, e.g. a dropped SSH link) saves the session and exits with 0,
    SIGTERM saves it and exits with 143; running the same command again resumes at
    the same file and frame.
    """
    settings = load_settings()
    protocol = resolve_protocol(image_protocol or settings.image_protocol)
    app = make_app(paths, profile=profile, image_protocol=protocol)
    app.handle_hangup = True
    result = app.run()
    return int(result or 0)
