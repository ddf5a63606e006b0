"""Axis-aligned pixel boxes used for crops and masks."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Box:
    """A box in pixel coordinates: ``left``/``top`` inclusive, ``right``/``bottom`` exclusive."""

    left: int
    top: int
    right: int
    bottom: int

    @property
    def width(self) -> int:
        return self.right - self.left

    @property
    def height(self) -> int:
        return self.bottom - self.top

    @property
    def is_empty(self) -> bool:
        return self.width <= 0 or self.height <= 0

    def as_list(self) -> list[int]:
        return [self.left, self.top, self.right, self.bottom]

    @classmethod
    def from_list(cls, values: list[int] | tuple[int, ...]) -> Box:
        if len(values) != 4 or not all(isinstance(v, int) for v in values):
            raise ValueError(f"a box is four integers [left, top, right, bottom], got {values!r}")
        return cls(*values)

    @classmethod
    def full(cls, columns: int, rows: int) -> Box:
        return cls(0, 0, columns, rows)

    def clip(self, columns: int, rows: int) -> Box:
        """This box limited to an image of ``columns`` x ``rows``."""
        return Box(
            max(0, min(self.left, columns)),
            max(0, min(self.top, rows)),
            max(0, min(self.right, columns)),
            max(0, min(self.bottom, rows)),
        )

    def intersect(self, other: Box) -> Box:
        return Box(
            max(self.left, other.left),
            max(self.top, other.top),
            min(self.right, other.right),
            min(self.bottom, other.bottom),
        )

    def union(self, other: Box) -> Box:
        return Box(
            min(self.left, other.left),
            min(self.top, other.top),
            max(self.right, other.right),
            max(self.bottom, other.bottom),
        )

    def translate(self, dx: int, dy: int) -> Box:
        return Box(self.left + dx, self.top + dy, self.right + dx, self.bottom + dy)
