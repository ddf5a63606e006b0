"""The footer: every action the screen shows, in one line; when they do not all fit,
as many as fit and ``? more`` (the help lists everything). A screen may give short
footer words per binding id in ``KEY_LABELS``."""

from __future__ import annotations

from rich.text import Text
from textual.binding import Binding
from textual.screen import Screen
from textual.widget import Widget

MORE = "more"


def key_items(screen: Screen[object]) -> list[tuple[str, str]]:
    """(keys, description) per shown binding of ``screen``, in the order the screen
    declares them, with the user's keymap applied (``j/↓`` when two keys do one thing)."""
    app = screen.app
    keys_of: dict[str, list[str]] = {}
    binding_of: dict[str, Binding] = {}
    for active in screen.active_bindings.values():
        binding = active.binding
        if not binding.show or not active.enabled:
            continue
        name = binding.id or binding.action
        binding_of.setdefault(name, binding)
        keys_of.setdefault(name, []).append(app.get_key_display(binding))
    order = {b.id or b.action: n for n, b in enumerate(_declared(screen))}
    names = sorted(binding_of, key=lambda n: order.get(n, len(order)))
    labels: dict[str, str] = getattr(screen, "KEY_LABELS", {})
    return [("/".join(keys_of[n]), labels.get(n, binding_of[n].description)) for n in names]


def _declared(screen: Screen[object]) -> list[Binding]:
    declared = getattr(type(screen), "BINDINGS", [])
    return list(Binding.make_bindings(declared))


def fit_items(items: list[tuple[str, str]], width: int, help_key: str = "?") -> Text:
    """``items`` as ``key description`` pairs in ``width`` cells; those that do not fit
    are replaced by ``? more``."""
    pairs = [f"{key} {description}" for key, description in items]
    text = Text(no_wrap=True, overflow="crop")
    more = f"{help_key} {MORE}"
    total = sum(len(p) + 2 for p in pairs)
    fits = total <= width
    used = 0
    for (key, description), pair in zip(items, pairs, strict=True):
        reserve = 0 if fits else len(more) + 2
        if used + len(pair) + 2 + reserve > width and not fits:
            text.append(help_key, style="bold reverse")
            text.append(f" {MORE}")
            return text
        text.append(key, style="bold reverse")
        text.append(f" {description}  ")
        used += len(pair) + 2
    return text


class KeyBar(Widget, can_focus=False):
    """One line of keys for the screen it is on; follows the user's keymap."""

    DEFAULT_CSS = """
    KeyBar { height: 1; background: $panel; color: $text; }
    """

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self._bindings_changed)

    def on_unmount(self) -> None:
        self.screen.bindings_updated_signal.unsubscribe(self)

    def _bindings_changed(self, screen: Screen[object]) -> None:
        self.refresh()

    def render(self) -> Text:
        return fit_items(key_items(self.screen), self.size.width)
