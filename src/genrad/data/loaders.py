"""`load(path)`: one entry point that picks the loader from what `path` is."""

from __future__ import annotations

from pathlib import Path

from genrad.data.cohort import Cohort
from genrad.data.npz import load_npz
from genrad.errors import InputError


def load(path: str | Path, *, intensity: str = "auto", **options: object) -> Cohort:
    """Load a cohort from a MedMNIST `.npz`, a folder of images or its labels CSV (see `genrad.data.folder`).

    ``path`` may also be ``"phantom"`` (or ``"phantom:3d"``) for the built-in procedural dataset.
    """
    text = str(path)
    if text in ("phantom", "phantom:3d"):
        from genrad.data.phantom import make_phantom

        return make_phantom(dims=3 if text == "phantom:3d" else 2, **options)  # type: ignore[arg-type]
    path = Path(path)
    if path.suffix == ".npz":
        given = sorted(key for key, value in options.items() if value not in (None, False))
        if given:
            raise InputError("folder options (size, channels, masks, splits) only for a folder of images",
                             f"{', '.join(given)} for an .npz, whose images already have one size and split",
                             "drop them, or load the source folder with them", source=text)
        return load_npz(path, intensity=intensity)
    if path.is_dir() or (path.suffix == ".csv" and path.is_file()):
        from genrad.data.folder import load_folder

        if not path.is_dir():
            options.setdefault("labels_csv", path)
        return load_folder(path if path.is_dir() else path.parent, intensity=intensity, **options)  # type: ignore[arg-type]
    if not path.exists():
        raise InputError("an existing .npz file or folder", "no such file or folder", "check the path", source=text)
    raise InputError(
        "a MedMNIST .npz file or a folder of images with a labels CSV",
        f"a file with suffix {path.suffix!r}",
        "convert the data to one of these (single volumes go in a folder with a labels.csv)",
        source=text,
    )
