"""The data sandbox: no loader reads a byte from outside the data folder, a non-regular file or an oversized image."""

from __future__ import annotations

import os
import struct
import sys
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from genrad.data import load
from genrad.data.sandbox import MAX_VOXELS
from genrad.errors import InputError

SECRET = b"secret bytes outside the data folder"
_opened: list[str] | None = None


def _audit(event: str, args: tuple) -> None:
    if _opened is not None and event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
        _opened.append(os.fsdecode(args[0]))


sys.addaudithook(_audit)


@contextmanager
def opened_files() -> Iterator[list[str]]:
    """Every path Python opens inside the block (the audit hook's ``open`` events)."""
    global _opened
    _opened = []
    try:
        yield _opened
    finally:
        _opened = None


def _png(path: Path, value: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(value)
    Image.fromarray(rng.integers(0, 255, (16, 16), dtype=np.uint8)).save(path)
    return path


@pytest.fixture
def world(tmp_path: Path) -> tuple[Path, Path]:
    """A data folder with two classes of PNGs, and a folder beside it holding an image and a secret file."""
    root = tmp_path / "data"
    for label in ("a", "b"):
        for k in range(3):
            _png(root / label / f"{k}.png", value=k + (10 if label == "b" else 0))
    outside = tmp_path / "outside"
    _png(outside / "x.png", value=99)
    (outside / "secret.raw").write_bytes(SECRET * 100)
    return root, outside


def _refused(path: Path, phrase: str, **options: object) -> str:
    with pytest.raises(InputError) as raised:
        load(path, **options)
    message = str(raised.value)
    assert phrase in message and "\n" not in message, message
    return message


def test_a_valid_folder_opens_only_files_inside_it(world: tuple[Path, Path]) -> None:
    root, _ = world
    (root / "a" / "3.png").symlink_to(root / "b" / "0.png")  # a link that stays inside is fine
    load(root)  # imports and caches warm up outside the traced block
    with opened_files() as opened:
        cohort = load(root)
    assert len(cohort.train) == 7
    assert opened and all(Path(p).resolve().is_relative_to(root.resolve()) for p in opened), opened


@pytest.mark.parametrize("row", ["../outside/x.png", "ABSOLUTE"])
def test_a_csv_row_that_leaves_the_folder_is_refused_before_any_read(world: tuple[Path, Path], row: str) -> None:
    root, outside = world
    row = str(outside / "x.png") if row == "ABSOLUTE" else row
    (root / "labels.csv").write_text(f"filename,label\na/0.png,0\n{row},1\n")
    with opened_files() as opened:
        message = _refused(root, "leads outside")
    assert "line 3" in message and "allow_outside_root=True" in message
    assert not any(Path(p).resolve().is_relative_to(outside.resolve()) for p in opened), opened


def test_a_link_out_of_the_folder_is_refused_unless_allowed(world: tuple[Path, Path]) -> None:
    root, outside = world
    (root / "b" / "9.png").symlink_to(outside / "x.png")
    _refused(root, "leads outside")
    cohort = load(root, allow_outside_root=True)
    assert len(cohort.train) == 7 and "allow_outside_root" in cohort.preprocessing["sandbox"]


def test_a_class_folder_linked_out_of_the_folder_is_refused(world: tuple[Path, Path]) -> None:
    root, outside = world
    (root / "c").symlink_to(outside, target_is_directory=True)
    _refused(root, "leads outside")


@pytest.mark.parametrize("kind", ["mhd", "nhdr"])
def test_a_header_whose_data_file_is_outside_is_refused(world: tuple[Path, Path], kind: str) -> None:
    root, outside = world
    header = root / "a" / f"v.{kind}"
    if kind == "mhd":
        header.write_text("ObjectType = Image\nNDims = 2\nDimSize = 6 6\nElementType = MET_UCHAR\n"
                          "ElementDataFile = ../../outside/secret.raw\n")
    else:
        header.write_text("NRRD0004\ntype: uint8\ndimension: 2\nsizes: 6 6\nencoding: raw\n"
                          f"data file: {outside / 'secret.raw'}\n\n")
    with opened_files() as opened:
        _refused(root, "leads outside")
    assert not any(Path(p).resolve().is_relative_to(outside.resolve()) for p in opened), opened


def test_a_header_with_its_data_file_inside_loads(tmp_path: Path) -> None:
    root = tmp_path / "data"
    for label, value in (("a", 10), ("b", 200)):
        (root / label).mkdir(parents=True)
        (root / label / "v.raw").write_bytes(bytes([value]) * 36)
        (root / label / "v.mhd").write_text("ObjectType = Image\nNDims = 2\nDimSize = 6 6\nElementType = MET_UCHAR\n"
                                            "ElementDataFile = v.raw\n")
    (root / "labels.csv").write_text("filename,label\na/v.mhd,a\nb/v.mhd,b\n")
    cohort = load(root, intensity="minmax")
    assert cohort.train.images.shape == (2, 1, 6, 6)
    assert cohort.train.images[1].min() > cohort.train.images[0].max()


def test_a_fifo_is_refused_without_blocking(world: tuple[Path, Path]) -> None:
    root, _ = world
    os.mkfifo(root / "a" / "pipe.png")
    _refused(root, "FIFO")


def test_a_dangling_link_is_refused(world: tuple[Path, Path]) -> None:
    root, _ = world
    (root / "a" / "gone.png").symlink_to(root / "nowhere.png")
    _refused(root, "broken or looping link")


def _png_header(path: Path, width: int, height: int) -> None:
    """A PNG whose header declares `width` x `height` grey pixels, with no pixel data behind it."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""))


@pytest.mark.parametrize("side", [12_000, 40_000])  # above genrad's limit; above Pillow's bomb limit too
def test_an_oversized_image_is_refused_from_its_header(world: tuple[Path, Path], side: int) -> None:
    root, _ = world
    assert side * side > MAX_VOXELS
    _png_header(root / "a" / "bomb.png", side, side)
    _refused(root, "bomb" if side > 20_000 else "values")


def test_a_label_beyond_the_class_limit_is_refused(world: tuple[Path, Path]) -> None:
    root, _ = world
    (root / "labels.csv").write_text(f"filename,label\na/0.png,0\nb/0.png,{10**12}\n")
    _refused(root, "0..999")


def test_an_npz_label_beyond_the_class_limit_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "labels.npz"
    np.savez(path, train_images=np.zeros((2, 8, 8), np.uint8), train_labels=np.array([0, 10**12]))
    _refused(path, "0..999")


def test_an_npz_member_that_is_not_an_array_is_never_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import zipfile

    path = tmp_path / "extra.npz"
    np.savez(path, train_images=np.zeros((2, 8, 8), np.uint8), train_labels=np.array([0, 1]))
    with zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("notes.txt", b"\0" * (64 << 20))  # 64 MiB that deflate to ~64 KiB: a zip bomb's shape
    members: list[str] = []
    original = zipfile.ZipFile.open
    monkeypatch.setattr(zipfile.ZipFile, "open", lambda self, name, *a, **k: members.append(str(name)) or original(self, name, *a, **k))
    cohort = load(path)
    assert len(cohort.train) == 2 and "notes.txt" not in members and "train_images.npy" in members


def test_echoed_names_are_stripped_of_terminal_codes(world: tuple[Path, Path]) -> None:
    root, _ = world
    (root / "labels.csv").write_text("filename,label\n\x1b[31mred.png,0\n")
    message = _refused(root, "missing file")
    assert "\x1b" not in message
