"""The ustui terminal UI: ``run_app`` for the command line, ``make_app`` for it and the tests."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

from textual.app import App
from textual.binding import Binding, BindingType

from ustui.core.profiles import get_profile
from ustui.core.session import Session
from ustui.tui.config import Settings, load_settings
from ustui.tui.model import Workspace
from ustui.tui.screens.help import HelpScreen
from ustui.tui.screens.review import ReviewScreen, tag_bindings


class UstuiApp(App[int]):
    """Review, crop, tag and export one set of inputs."""

    CSS_PATH = "app.tcss"
    TITLE = "ustui"
    BINDINGS: list[BindingType] = [
        Binding("question_mark", "help", "help", id="app.help"),
        Binding("q", "quit", "quit", id="app.quit"),
    ]

    def __init__(self, workspace: Workspace, *, protocol: str, settings: Settings) -> None:
        super().__init__()
        self.workspace = workspace
        self.protocol = protocol
        self.settings = settings
        self.handle_hangup = False
        """Set by run_app: save and exit on SIGHUP/SIGTERM (a dropped SSH link)."""

    def on_mount(self) -> None:
        self.set_keymap(self.settings.keymap)
        if self.handle_hangup:
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGHUP, signal.SIGTERM):
                loop.add_signal_handler(signum, self._hang_up)
        self.push_screen(ReviewScreen(self.workspace, self.protocol))
        if self.workspace.session.notice:
            self.notify(self.workspace.session.notice, severity="warning", timeout=10)

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            bindings = [
                *ReviewScreen.BINDINGS,
                *tag_bindings(self.workspace.profile),
                *self.BINDINGS,
            ]
            shown = list(Binding.make_bindings(bindings))
            self.push_screen(HelpScreen(shown, self.workspace.profile, self._keymap))

    async def action_quit(self) -> None:
        self.workspace.session.save()
        self.exit(0)

    def _hang_up(self) -> None:
        # Every decision is saved when made; this keeps the cine frame too.
        self.workspace.session.save()
        self.exit(0)


def make_app(
    paths: list[str], *, profile: str | None, image_protocol: str = "halfcell"
) -> UstuiApp:
    """The app for ``paths``, resuming their session; ``image_protocol`` is already resolved.

    Raises
    ------
    UstuiError
        When the profile or the user's config cannot be used.
    """
    session = Session.load(paths)
    chosen = get_profile(profile or session.profile)
    session.profile = chosen.name
    session.save()
    workspace = Workspace(paths=[str(Path(p)) for p in paths], session=session, profile=chosen)
    app = UstuiApp(workspace, protocol=image_protocol, settings=load_settings())
    return app


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
    """Open the terminal UI on ``paths`` and return the exit code when the user quits.

    The image protocol comes from ``image_protocol``, else the config file, else
    detection.
    """
    settings = load_settings()
    protocol = resolve_protocol(image_protocol or settings.image_protocol)
    app = make_app(paths, profile=profile, image_protocol=protocol)
    app.handle_hangup = True
    result = app.run()
    return int(result or 0)
