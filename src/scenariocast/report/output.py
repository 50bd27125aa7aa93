"""Writing a report's files into a folder: all of them or none.

The files are written into a new temporary folder beside the target and moved into place only
when every one of them is complete, so a failure (a full disk, a bad figure) leaves no
half-written report. A new folder is moved into place whole. In an existing folder only the
report's own files are replaced (``report.html``, ``report.md``, ``forecast.json`` and the
``figures`` folder; ``compare.html`` and ``compare.json`` for a comparison of trees), each by a
rename, the page last; anything else in it is left alone.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Mapping
from pathlib import Path

from scenariocast.errors import ReportError

#: The report's own files in its folder; the page is moved last.
FIGURES = "figures"
ORDER = ("report.md", "forecast.json", "compare.json", "report.html", "compare.html")


def _why(exc: OSError) -> str:
    return exc.strerror or str(exc)


def _new_folder(parent: Path, name: str) -> Path:
    """A new empty hidden folder in ``parent`` (created with the user's umask, as any folder)."""
    folder = parent / f".{name}.{uuid.uuid4().hex[:12]}.tmp"
    folder.mkdir()
    return folder


def check_output(out: str | os.PathLike[str], *, what: str = "the report") -> Path:
    """Check that a report can be written to ``out``; return it as an absolute path.

    Raises
    ------
    ReportError
        If ``out`` is a file, or the folder it would go in cannot be created or written.
    """
    path = Path(out).expanduser().absolute()
    if path.exists() and not path.is_dir():
        raise ReportError(f"cannot write {what} to {path}: it is a file, not a folder")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _new_folder(path.parent, path.name).rmdir()
        if path.is_dir():
            _new_folder(path, "probe").rmdir()
    except OSError as exc:
        raise ReportError(f"cannot write {what} to {path}: {_why(exc)}") from None
    return path


def write_files(
    out: str | os.PathLike[str], files: Mapping[str, bytes], *, what: str = "the report"
) -> dict[str, Path]:
    """Write ``files`` (relative path -> bytes) into the folder ``out``, all or none.

    Returns the absolute path of every file written.

    Raises
    ------
    ReportError
        If the folder cannot be created or a file cannot be written; nothing is left behind.
    """
    path = check_output(out, what=what)
    try:
        tmp = _new_folder(path.parent, path.name)
    except OSError as exc:
        raise ReportError(f"cannot write {what} to {path}: {_why(exc)}") from None
    try:
        for rel, data in files.items():
            target = tmp / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        if not path.exists():
            tmp.rename(path)
        else:
            _replace_into(tmp, path, files)
    except OSError as exc:
        raise ReportError(f"cannot write {what} to {path}: {_why(exc)}") from None
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return {rel: path / rel for rel in files}


def _replace_into(tmp: Path, path: Path, files: Mapping[str, bytes]) -> None:
    """Move the new files from ``tmp`` into the existing folder ``path``."""
    owns_figures = "report.html" in files or any(rel.startswith(FIGURES + "/") for rel in files)
    if owns_figures and ((tmp / FIGURES).is_dir() or (path / FIGURES).exists()):
        old = tmp / ".old-figures"
        if (path / FIGURES).exists():
            (path / FIGURES).rename(old)
        if (tmp / FIGURES).is_dir():
            (tmp / FIGURES).rename(path / FIGURES)
    rest = [rel for rel in files if not rel.startswith(FIGURES + "/")]
    rest.sort(key=lambda rel: ORDER.index(rel) if rel in ORDER else -1)
    for rel in rest:
        target = path / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp / rel, target)
