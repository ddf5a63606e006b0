"""Where an export may be written: never over one of its own inputs.

Writing the ZIP over an input would replace the originals with their de-identified
copy. A destination inside an input folder is allowed: the search of that folder
ignores earlier ustui exports (see :func:`ustui.core.sniff.is_ustui_export`) and
the temporary files, whose names start with a dot.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from ustui.core.inputs import InputFile


def destination_problem(
    out: Path, inputs: Sequence[InputFile], named: Iterable[str | Path] = ()
) -> str | None:
    """Why ``out`` must not be written, or None when it may.

    Parameters
    ----------
    out
        The export's destination.
    inputs
        The files to export (on disk, or members of ZIP archives on disk).
    named
        The paths the user gave, whether or not they held anything to export.
    """
    target = out.resolve()
    if target in {Path(p).resolve() for p in named}:
        return "is one of the inputs; writing it would replace them. Choose another name"
    paths = {f.path.resolve() for f in inputs}
    if target in paths or _same_file(target, paths):
        return "is one of the input files; writing it would replace it. Choose another name"
    return None


def _same_file(target: Path, paths: set[Path]) -> bool:
    """Whether ``target`` exists and is a hard link to one of ``paths``."""
    try:
        st = target.stat()
    except OSError:
        return False
    for path in paths:
        try:
            if os.path.samestat(st, path.stat()):
                return True
        except OSError:
            continue
    return False
