"""Checks a user's ``[keymap]`` against the screen's bindings (plain Python).

A keymap that gives a key already used by another action takes it from that
action (Textual lets the remapped binding win): ``"file.next" = "n,down"`` leaves
the crop box without Down. This finds such conflicts, and ids that name nothing,
so the app can say so at start, in help, and in ``ustui config check``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from textual.binding import Binding


@dataclass(frozen=True)
class Conflict:
    """``key`` is bound to several actions; ``winner`` gets it, the others lose it."""

    key: str
    winner: str
    losers: tuple[str, ...]

    def describe(self) -> str:
        return f"key {self.key!r}: {self.winner} takes it from {', '.join(self.losers)}"


def keys_by_id(bindings: Iterable[Binding], keymap: Mapping[str, str]) -> dict[str, list[str]]:
    """The keys of every binding id once the keymap is applied."""
    keys: dict[str, list[str]] = {}
    for binding in bindings:
        if binding.id is None:
            continue
        wanted = keymap.get(binding.id, binding.key)
        shown = keys.setdefault(binding.id, [])
        shown.extend(k.strip() for k in wanted.split(",") if k.strip() not in shown)
    return keys


def conflicts(bindings: Iterable[Binding], keymap: Mapping[str, str]) -> list[Conflict]:
    """Keys that two or more binding ids claim after the keymap; a remapped id wins."""
    bindings = list(bindings)
    claimed: dict[str, list[str]] = {}
    for binding_id, keys in keys_by_id(bindings, keymap).items():
        for key in keys:
            claimed.setdefault(key, []).append(binding_id)
    found = []
    for key, ids in claimed.items():
        if len(ids) < 2:
            continue
        remapped = [i for i in ids if i in keymap]
        winner = remapped[-1] if remapped else ids[0]
        found.append(Conflict(key, winner, tuple(i for i in ids if i != winner)))
    return found


def unknown_ids(bindings: Iterable[Binding], keymap: Mapping[str, str]) -> list[str]:
    known = {b.id for b in bindings}
    return [binding_id for binding_id in keymap if binding_id not in known]


def keymap_problems(bindings: Iterable[Binding], keymap: Mapping[str, str]) -> list[str]:
    """One line per problem of ``keymap`` with these bindings (empty when it is fine)."""
    bindings = list(bindings)
    problems = [
        f"keymap: no action has the id {binding_id!r} (press ? in the app for the ids)"
        for binding_id in unknown_ids(bindings, keymap)
    ]
    problems += [f"keymap: {conflict.describe()}" for conflict in conflicts(bindings, keymap)]
    return problems


def lost_keys(bindings: Iterable[Binding], keymap: Mapping[str, str]) -> dict[str, list[str]]:
    """Binding id -> the keys it lost to another binding (for the help table)."""
    lost: dict[str, list[str]] = {}
    for conflict in conflicts(bindings, keymap):
        for loser in conflict.losers:
            lost.setdefault(loser, []).append(conflict.key)
    return lost
