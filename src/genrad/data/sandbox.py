"""The data sandbox: every file a folder loader opens lies inside the data folder, is a regular file and is
small enough to read.

A dataset folder is untrusted input. Without these rules a labels CSV row ``../../etc/passwd``, a symlink, a
class folder linked to ``/etc``, or an MHD / NRRD header whose detached data file (``ElementDataFile``,
``data file:``) names a file elsewhere would read that file's bytes as pixels, and a FIFO or ``/dev/zero``
would never end. `DataRoot` resolves every path (links included) and refuses, in one line, anything that
leaves the folder, anything that is not a regular file or folder, and images whose header declares more than
`MAX_VOXELS` values. ``allow_outside_root=True`` lifts only the folder rule, for a layout the user trusts
(shared image stores linked into a dataset folder); it is recorded in the cohort's preprocessing.
"""

from __future__ import annotations

import re
import stat
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from genrad.errors import InputError

MAX_VOXELS = 2**27
"""Values per image (pixels x channels) read at most: a 512^3 volume or an 11,585^2 RGB image. Checked from
the file's header, before its pixels are decoded."""
HEADER_BYTES = 1 << 16
"""How much of an MHD / NRRD header is read to find its detached data file."""
ALLOW_FLAG = "allow_outside_root=True (genrad data prepare --allow-outside-root)"

_MHD_DATA = re.compile(r"^\s*ElementDataFile\s*=\s*(.*?)\s*$", re.IGNORECASE | re.MULTILINE)
_NRRD_DATA = re.compile(r"^\s*data\s?file\s*:\s*(.*?)\s*$", re.IGNORECASE | re.MULTILINE)


@dataclass(frozen=True)
class DataRoot:
    """The folder a dataset is read from, and the rules every path the loaders open must meet."""

    path: Path
    allow_outside_root: bool = False

    @cached_property
    def resolved(self) -> Path:
        """The folder with its links resolved, once: every path read is compared with it."""
        return self.path.resolve()

    def file(self, candidate: Path) -> Path:
        """`candidate` (a file to read) checked: inside the folder after resolving links, a regular file."""
        return self._regular(candidate, self._inside(candidate))

    def _regular(self, candidate: Path, target: Path) -> Path:
        mode = target.stat().st_mode
        if not stat.S_ISREG(mode):
            kind = "a folder" if stat.S_ISDIR(mode) else "a FIFO, socket or device"
            raise InputError("a regular image file", kind, "replace it by the image file itself", source=str(candidate))
        if target.suffix.lower() in (".mhd", ".mha", ".nhdr", ".nrrd"):
            self._check_detached_data(candidate, target)
        return target

    def folder(self, candidate: Path) -> Path:
        """`candidate` (a class, split or DICOM series folder) checked: inside the folder after resolving links."""
        target = self._inside(candidate)
        if not target.is_dir():
            raise InputError("a folder", "a file", "check the layout", source=str(candidate))
        return target

    def entry(self, candidate: Path) -> Path:
        """A file or a folder (a DICOM series) named by the data, checked by the rule for its kind."""
        target = self._inside(candidate)
        return target if target.is_dir() else self._regular(candidate, target)

    def _inside(self, candidate: Path) -> Path:
        try:
            target = candidate.resolve(strict=True)
        except (OSError, RuntimeError):  # a missing file, a dangling link or a link loop
            found = "a broken or looping link" if candidate.is_symlink() else "no such file"
            raise InputError("an existing file", found, "fix the name or add the file", source=str(candidate)) from None
        if not self.allow_outside_root and not target.is_relative_to(self.resolved):
            raise InputError(
                f"files inside the data folder {self.path}",
                f"a path that leads outside it (to {target})",
                f"copy the file into the folder, or pass {ALLOW_FLAG} if you trust this layout",
                source=str(candidate),
            )
        return target

    def _check_detached_data(self, candidate: Path, target: Path) -> None:
        """An MHD / MHA / NRRD header may name the file holding its pixels: that file obeys the same rules."""
        with target.open("rb") as stream:
            header = stream.read(HEADER_BYTES).decode("latin-1")
        if target.suffix.lower() in (".nrrd", ".nhdr"):
            header = re.split(r"\r?\n\r?\n", header, maxsplit=1)[0]
            found = _NRRD_DATA.search(header)
        else:
            found = _MHD_DATA.search(header)
        if found is None or found.group(1).upper() == "LOCAL":
            return
        value = found.group(1)
        if value.upper().startswith("LIST") or "%" in value:
            raise InputError(
                "an image whose pixels are in its own file or in one detached data file",
                f"a header naming a file list or pattern ({value[:60]!r})",
                "convert it to one .nii.gz or .nrrd file",
                source=str(candidate),
            )
        self.file(target.parent / value)


def check_voxels(shape: tuple[int, ...], channels: int, source: str) -> None:
    """Refuse an image whose header declares more than `MAX_VOXELS` values, before its pixels are read."""
    count = channels
    for side in shape:
        count *= int(side)
    if count > MAX_VOXELS:
        raise InputError(
            f"images of at most {MAX_VOXELS:,} values (a 512^3 volume)",
            f"{'x'.join(str(int(s)) for s in shape)} x {channels} channel(s) declared in the header",
            "downsample or crop it before loading",
            source=source,
        )
