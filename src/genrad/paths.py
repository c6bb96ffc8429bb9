"""Output-path checks that every command runs before any work, and OS write errors as one-line errors.

`check_output` refuses an output path that cannot be written *before* a command loads data or trains:
a file where a folder is needed (or the reverse), a path below an existing file, or a folder the user
cannot write to. Whether an existing output is resumed or refused stays with each command's own rules.
`os_error` turns an `OSError` raised while writing (disk full, permissions changed mid-run) into the
same `InputError` line.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from genrad.errors import InputError


def check_output(
    path: str | os.PathLike[str], *, kind: Literal["file", "folder"], option: str = "--out", suffix: str = ""
) -> Path:
    """`path` as an output `kind`: refuse a wrong kind, a path under a file and an unwritable folder.

    Nothing is created: the first existing ancestor must be a folder in which a file can be created (tested
    by creating and removing an empty temporary file, which also catches read-only file systems and
    access-control lists that permission bits do not show). `suffix` completes the example file name of an error.
    """
    target = Path(path)
    if target.exists():
        if kind == "folder" and not target.is_dir():
            raise InputError(f"{option} to be a folder", f"an existing file {target}",
                             f"choose another {option} (a folder), or remove the file", source=option)
        if kind == "file" and target.is_dir():
            raise InputError(f"{option} to be a file", f"an existing folder {target}",
                             f"name a file for {option}, e.g. {target / 'out'}{suffix or target.suffix}", source=option)
    ancestor = target if target.is_dir() else target.parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise InputError(f"{option} inside a folder", f"{ancestor} is a file, not a folder",
                         f"choose an {option} that does not pass through a file", source=option)
    try:
        handle, probe = tempfile.mkstemp(dir=ancestor, prefix=".genrad-write-check-")
        os.close(handle)
        os.unlink(probe)
    except OSError as error:
        raise InputError(f"a writable folder for {option}", f"{ancestor} is not writable ({error.strerror})",
                         f"choose an {option} in a folder you can write to, or fix its permissions", source=option) from None
    return target


def os_error(error: OSError) -> InputError:
    """An `OSError` from reading or writing a file as a one-line `InputError` (what, where, what to do)."""
    where = error.filename or "a file"
    reason = error.strerror or type(error).__name__
    return InputError(f"{where} to be readable and writable", reason,
                      "check the path, its permissions and the free disk space, then rerun the same command to resume")


@contextlib.contextmanager
def fresh_output(folder: str | os.PathLike[str]) -> Iterator[Path]:
    """Run a block that writes into `folder`; if the block created the folder and fails with an `InputError`,
    remove it again, so a refused run leaves nothing behind (an interrupted one keeps its resumable state)."""
    target = Path(folder)
    created = not target.exists()
    try:
        yield target
    except InputError:
        if created and target.is_dir():
            shutil.rmtree(target, ignore_errors=True)
        raise


def check_space(path: str | os.PathLike[str], needed: int, what: str, *, option: str) -> None:
    """Refuse, before any work, an output of `needed` bytes that the disk holding `path` (or its first existing
    folder) cannot take."""
    folder = Path(path)
    while not folder.exists():
        folder = folder.parent
    free = shutil.disk_usage(folder if folder.is_dir() else folder.parent).free
    if needed > free:
        raise InputError(f"{what} that fits on the disk ({free / 2**30:.3g} GiB free under {folder})",
                         f"{needed / 2**30:.3g} GiB at the least", f"ask for fewer images ({option})", source=option)


def check_entries(folder: str | os.PathLike[str], *, files: tuple[str, ...] = (), folders: tuple[str, ...] = ()) -> None:
    """Refuse, before any work, an output folder holding a folder where a command will write one of its `files` (or a
    file where it needs one of its `folders`): found after the work, it would lose it."""
    root = Path(folder)
    for names, wrong, kind in ((files, Path.is_dir, "a file"), (folders, Path.is_file, "a folder")):
        for name in names:
            path = root / name
            if path.exists() and wrong(path):
                raise InputError(f"{kind} (or nothing) at {path}", "a folder" if kind == "a file" else "a file",
                                 f"remove or rename {path}, or choose another output folder", source=str(root))
