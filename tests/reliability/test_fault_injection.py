"""Fault injection across every command: each bad input ends in exit code 2 and one line, without a
traceback, before any work, and leaves no new file under the output path.

Each case is a row of `CASES`: an id, the command line (built from the fixture files of `world`), and the
folder or file whose contents must not change. A case that passes here meets genrad's promise for bad input.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from genrad.cli.main import main
from genrad.data.phantom import make_phantom

UNWRITABLE = Path("/sys/genrad-fault-injection")
CASE_TIMEOUT_SECONDS = 120  # /sys refuses new entries, even to root


@dataclass(frozen=True)
class World:
    root: Path
    phantom: Path
    small: Path
    run: Path
    generated: Path
    classifier: Path
    file: Path
    folder: Path
    tables: Path

    def fresh(self, name: str) -> Path:
        """A path under the scratch folder that does not exist yet."""
        return self.root / "scratch" / name


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    """Real inputs made once: a phantom, a 5-step VAE run, a generated set, a classifier, a file and a folder."""
    from genrad.evaluation.utility.classifier import Classifier
    from genrad.models import VAE
    from genrad.synthesis import generate

    root = tmp_path_factory.mktemp("faults")
    cohort = make_phantom(n=120, size=28, dims=2, seed=0)
    phantom = Path(cohort.save(str(root / "phantom.npz")))
    small = root / "small.npz"
    make_phantom(n=120, size=64, dims=2, seed=0).save(str(small))
    model = VAE(num_classes=cohort.num_classes, spatial_dims=2).fit(cohort, max_steps=3, progress=False)
    run = root / "run"
    model.save(run)
    generated = root / "generated"
    generate(model, per_class={0: 6, 1: 6, 2: 6}, out=generated, seed=0, progress=False)
    classifier = root / "classifier"
    Classifier(num_classes=cohort.num_classes, channels=(8, 8, 8, 8), stem_stride=2, max_steps=2, eval_every=1).fit(
        cohort.train, cohort.val).save(classifier)
    file = root / "a-file.txt"
    file.write_text("not a folder\n")
    folder = root / "a-folder"
    folder.mkdir()
    tables = root / "tables.parquet"  # a folder with a file's name
    tables.mkdir()
    (root / "scratch").mkdir()
    pipeline = root / "pipeline"  # what `genrad report` needs of a run: its record (the stages' outputs are optional)
    pipeline.mkdir()
    (pipeline / "run.json").write_text(json.dumps({"genrad_version": "0", "status": "complete", "config": {}}))
    return World(root, phantom, small, run, generated, classifier, file, folder, tables)


def _huge_header(world: World) -> Path:
    """A valid .npz whose image array header declares 10^6 x 10^4 x 10^4 float64 values (no data behind it)."""
    path = world.fresh("huge.npz")
    header = {"descr": "<f8", "fortran_order": False, "shape": (10**6, 10**4, 10**4)}
    with zipfile.ZipFile(path, "w") as archive:
        with archive.open("train_images.npy", "w") as member:
            np.lib.format.write_array_header_1_0(member, header)
        with archive.open("train_labels.npy", "w") as member:
            np.save(member, np.zeros(10, dtype=np.int64))
    return path


def _truncated(world: World) -> Path:
    path = world.fresh("truncated.npz")
    data = world.phantom.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def _pickled(world: World) -> Path:
    path = world.fresh("pickled.npz")
    np.savez(path, train_images=np.array([{"x": 1}], dtype=object), train_labels=np.zeros(1, dtype=np.int64))
    return path


def _run_copy(world: World, edit: Callable[[Path], None]) -> Path:
    copy = world.fresh(f"run-{time.monotonic_ns()}")
    shutil.copytree(world.run, copy)
    edit(copy)
    return copy


def _edit_config(key: str, value: object) -> Callable[[Path], None]:
    def edit(run: Path) -> None:
        record = json.loads((run / "config.json").read_text())
        record["config"][key] = value
        (run / "config.json").write_text(json.dumps(record))
    return edit


def _bad_bytes(world: World, data: bytes) -> Path:
    path = world.fresh(f"config-{time.monotonic_ns()}.yaml")
    path.write_bytes(data)
    return path


def _bad_yaml(world: World, text: str) -> Path:
    return _bad_bytes(world, text.encode())


def _folder(world: World, edit: Callable[[Path], object]) -> Path:
    """A valid two-class folder of PNGs (and a secret file beside it), then `edit` applied to it."""
    from PIL import Image

    root = world.fresh(f"folder-{time.monotonic_ns()}")
    for label in ("a", "b"):
        (root / label).mkdir(parents=True)
        for k in range(3):
            Image.fromarray(np.full((8, 8), 40 * k + (100 if label == "b" else 0), np.uint8)).save(root / label / f"{k}.png")
    (root.parent / "secret.raw").write_bytes(b"secret" * 64)
    edit(root)
    return root


def _csv(text: str) -> Callable[[Path], object]:
    return lambda root: (root / "labels.csv").write_text("filename,label\n" + text)


def _mhd(data_file: str) -> Callable[[Path], object]:
    return lambda root: (root / "a" / "v.mhd").write_text(
        f"ObjectType = Image\nNDims = 2\nDimSize = 8 8\nElementType = MET_UCHAR\nElementDataFile = {data_file}\n")


def _png_bomb(side: int) -> Callable[[Path], object]:
    """A PNG header declaring side x side grey pixels, without pixel data."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)) + chunk(b"IEND", b"")
    return lambda root: (root / "a" / "bomb.png").write_bytes(b"\x89PNG\r\n\x1a\n" + header)


def _masked(edit: Callable[[Path], object]) -> Callable[[Path], object]:
    """Every image of the folder given an 8x8 0/255 mask (NAME_mask.png), then `edit`."""
    from PIL import Image

    def apply(root: Path) -> None:
        for image in sorted(root.glob("*/*.png")):
            mask = np.zeros((8, 8), np.uint8)
            mask[2:5, 2:5] = 255
            Image.fromarray(mask).save(image.with_name(f"{image.stem}_mask.png"))
        edit(root)
    return apply


def _png(path: Path, array: np.ndarray) -> None:
    from PIL import Image

    Image.fromarray(array).save(path)


def _special(world: World, kind: str) -> Path:
    """A FIFO, or a link to /dev/zero or /dev/urandom, where a file is expected."""
    path = world.fresh(f"special-{time.monotonic_ns()}.yaml")
    if kind == "fifo":
        os.mkfifo(path)
    else:
        path.symlink_to(f"/dev/{kind}")
    return path


def _replace_by(kind: str, name: str) -> Callable[[Path], None]:
    def edit(run: Path) -> None:
        (run / name).unlink()
        if kind == "fifo":
            os.mkfifo(run / name)
        else:
            (run / name).symlink_to(f"/dev/{kind}")
    return edit


LAUGHS = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + k)}: &{chr(98 + k)} [*{chr(97 + k)}, *{chr(97 + k)}, *{chr(97 + k)}, *{chr(97 + k)}]\n" for k in range(8))


def _with_entry(world: World, name: str, kind: str) -> Path:
    """An output folder that already holds `name` as a file or a folder."""
    folder = world.fresh(f"out-{time.monotonic_ns()}")
    folder.mkdir()
    (folder / name).mkdir() if kind == "folder" else (folder / name).write_text("x")
    return folder


def _msd(world: World, edit: Callable[[Path], object]) -> Path:
    """A valid MSD-style task (imagesTr/ + labelsTr/, three 8^3 NIfTI volumes), then `edit` applied to it."""
    import SimpleITK as sitk

    root = world.fresh(f"msd-{time.monotonic_ns()}")
    for folder in ("imagesTr", "labelsTr"):
        (root / folder).mkdir(parents=True)
    for k in range(3):
        label = np.zeros((8, 8, 8), np.uint8)
        label[2:5, 2:5, 2:5] = 1
        sitk.WriteImage(sitk.GetImageFromArray(np.full((8, 8, 8), 10.0 * k, np.float32)), str(root / "imagesTr" / f"c{k}.nii.gz"))
        sitk.WriteImage(sitk.GetImageFromArray(label), str(root / "labelsTr" / f"c{k}.nii.gz"))
    (root / "dataset.json").write_text('{"labels": {"0": "background", "1": "region"}}')
    edit(root)
    return root


def _nifti(value: float) -> Callable[[Path], object]:
    """A float NIfTI volume in class a holding one `value` voxel (NaN, inf), beside 3 more volumes (a folder of volumes)."""
    import SimpleITK as sitk

    def edit(root: Path) -> None:
        for label in ("a", "b"):
            for image in (root / label).glob("*.png"):
                image.unlink()
            for k in range(2):
                volume = np.full((6, 6, 6), 0.5, np.float32)
                if label == "a" and k == 0:
                    volume[1, 1, 1] = value
                sitk.WriteImage(sitk.GetImageFromArray(volume), str(root / label / f"{k}.nii.gz"))
    return edit


def _mha_header(side: int) -> Callable[[Path], object]:
    """An MHA whose header declares side x side x side bytes, without the data."""
    return lambda root: (root / "a" / "big.mha").write_text(
        f"ObjectType = Image\nNDims = 3\nDimSize = {side} {side} {side}\nElementType = MET_UCHAR\nElementDataFile = LOCAL\n")


def _link_out(root: Path) -> None:
    (root / "b" / "9.png").symlink_to("/etc/hostname")


def _labels_npz(world: World) -> Path:
    path = world.fresh(f"labels-{time.monotonic_ns()}.npz")
    np.savez(path, train_images=np.zeros((2, 8, 8), np.uint8), train_labels=np.array([0, 10**12]))
    return path


@dataclass(frozen=True)
class Case:
    id: str
    argv: Callable[[World], list[str]]
    message: str = ""  # a phrase the one-line error must contain
    after_work: bool = False  # the fault shows only in the work's result (its progress lines come first)


def _cases() -> list[Case]:
    w = lambda f: f  # noqa: E731 - keeps the table below one row per case
    return [
        # --- output paths: a file where a folder is needed, the reverse, a path under a file, an unwritable folder
        Case("phantom-out-is-folder", w(lambda x: ["data", "phantom", "--out", str(x.folder)]), "a file"),
        Case("phantom-out-under-file", w(lambda x: ["data", "phantom", "--out", str(x.file / "p.npz")]), "not a folder"),
        Case("phantom-out-unwritable", w(lambda x: ["data", "phantom", "--out", str(UNWRITABLE / "p.npz")]), "writable"),
        Case("train-out-is-file", w(lambda x: ["train", "--data", str(x.phantom), "--model", "vae", "--out", str(x.file)]), "a folder"),
        Case("train-out-under-file", w(lambda x: ["train", "--data", str(x.phantom), "--model", "vae", "--out", str(x.file / "r")]), "not a folder"),
        Case("train-out-unwritable", w(lambda x: ["train", "--data", str(x.phantom), "--model", "vae", "--out", str(UNWRITABLE)]), "writable"),
        Case("sample-out-is-folder", w(lambda x: ["sample", str(x.run), "--n", "2", "--out", str(x.folder)]), "a file"),
        Case("sample-out-under-file", w(lambda x: ["sample", str(x.run), "--n", "2", "--out", str(x.file / "s.npz")]), "not a folder"),
        Case("sample-out-unwritable", w(lambda x: ["sample", str(x.run), "--n", "2", "--out", str(UNWRITABLE / "s.npz")]), "writable"),
        Case("generate-out-is-file", w(lambda x: ["generate", str(x.run), "--per-class", "0=2", "--out", str(x.file)]), "a folder"),
        Case("generate-out-under-file", w(lambda x: ["generate", str(x.run), "--per-class", "0=2", "--out", str(x.file / "g")]), "not a folder"),
        Case("generate-out-unwritable", w(lambda x: ["generate", str(x.run), "--per-class", "0=2", "--out", str(UNWRITABLE)]), "writable"),
        Case("run-out-is-file", w(lambda x: ["run", "--data", str(x.phantom), "--out", str(x.file)]), "a folder"),
        Case("run-out-under-file", w(lambda x: ["run", "--data", str(x.phantom), "--out", str(x.file / "r")]), "not a folder"),
        Case("run-out-unwritable", w(lambda x: ["run", "--data", str(x.phantom), "--out", str(UNWRITABLE)]), "writable"),
        Case("report-out-is-folder", w(lambda x: ["report", str(x.root / "pipeline"), "--out", str(x.folder)]), ""),
        Case("report-out-under-file", w(lambda x: ["report", str(x.root / "pipeline"), "--out", str(x.file / "r.html")]), ""),
        Case("extract-out-under-file", w(lambda x: ["radiomics", "extract", str(x.phantom), "--out", str(x.file / "f.parquet")]), "not a folder"),
        Case("extract-out-unwritable", w(lambda x: ["radiomics", "extract", str(x.phantom), "--out", str(UNWRITABLE / "f.parquet")]), "writable"),
        Case("extract-out-is-folder", w(lambda x: ["radiomics", "extract", str(x.phantom), "--out", str(x.tables)]), "a file"),
        Case("extract-cache-is-file", w(lambda x: ["radiomics", "extract", str(x.phantom), "--out", str(x.fresh("f.parquet")), "--cache-dir", str(x.file)]), "a folder"),
        Case("fidelity-out-is-file", w(lambda x: ["evaluate", "fidelity", "--real", str(x.phantom), "--synthetic", str(x.generated), "--out", str(x.file)]), "a folder"),
        Case("fidelity-out-unwritable", w(lambda x: ["evaluate", "fidelity", "--real", str(x.phantom), "--synthetic", str(x.generated), "--out", str(UNWRITABLE)]), "writable"),
        Case("privacy-out-is-file", w(lambda x: ["evaluate", "privacy", "--train", str(x.phantom), "--holdout", str(x.phantom), "--synthetic", str(x.generated), "--out", str(x.file)]), "a folder"),
        Case("utility-out-is-file", w(lambda x: ["evaluate", "utility", "--data", str(x.phantom), "--out", str(x.file), "--quick"]), "a folder"),
        Case("utility-out-under-file", w(lambda x: ["evaluate", "utility", "--data", str(x.phantom), "--out", str(x.file / "u"), "--quick"]), "not a folder"),
        Case("grid-out-is-folder", w(lambda x: ["scenarios", "grid", "--out", str(x.folder)]), "a file"),
        Case("stress-out-is-file", w(lambda x: ["scenarios", "stress", "--model", str(x.classifier), "--data", str(x.phantom), "--out", str(x.file), "--quick"]), "a folder"),
        Case("augment-out-is-file", w(lambda x: ["scenarios", "augment", "--data", str(x.phantom), "--out", str(x.file), "--quick"]), "a folder"),
        Case("multimodal-out-is-file", w(lambda x: ["scenarios", "multimodal", "--data", str(x.phantom), "--synthetic", str(x.generated / "synthetic.npz"), "--out", str(x.file)]), "a folder"),
        Case("demo-out-is-file", w(lambda x: ["demo", "--out", str(x.file)]), "a folder"),
        # --- hostile and broken files
        Case("inspect-huge-header", w(lambda x: ["data", "inspect", str(_huge_header(x))]), "GiB"),
        Case("train-huge-header", w(lambda x: ["train", "--data", str(_huge_header(x)), "--model", "vae", "--out", str(x.fresh("r"))]), "GiB"),
        Case("inspect-truncated-npz", w(lambda x: ["data", "inspect", str(_truncated(x))]), ""),
        Case("inspect-text-as-npz", w(lambda x: ["data", "inspect", str(_text_npz(x))]), ""),
        Case("inspect-pickled-npz", w(lambda x: ["data", "inspect", str(_pickled(x))]), "pickle"),
        Case("inspect-missing-file", w(lambda x: ["data", "inspect", str(x.fresh("nope.npz"))]), ""),
        Case("sample-pickle-in-run", w(lambda x: ["sample", str(_run_copy(x, lambda r: (r / "model.pt").write_bytes(b"x"))), "--n", "2", "--out", str(x.fresh("s.npz"))]), "pickle"),
        Case("sample-modified-weights", w(lambda x: ["sample", str(_run_copy(x, lambda r: _flip_byte(r / "model.safetensors"))), "--n", "2", "--out", str(x.fresh("s.npz"))]), "SHA-256"),
        Case("sample-edited-config-huge", w(lambda x: ["sample", str(_run_copy(x, _edit_config("latent_dim", 10**12))), "--n", "2", "--out", str(x.fresh("s.npz"))]), "config.json"),
        Case("sample-edited-config-harmless-looking", w(lambda x: ["sample", str(_run_copy(x, _edit_config("learning_rate", 0.5))), "--n", "2", "--out", str(x.fresh("s.npz"))]), "config.json"),
        Case("sample-truncated-weights", w(lambda x: ["sample", str(_run_copy(x, lambda r: _truncate(r / "model.safetensors"))), "--n", "2", "--out", str(x.fresh("s.npz"))]), "SHA-256"),
        Case("sample-symlinked-weights", w(lambda x: ["sample", str(_run_copy(x, lambda r: _symlink_weights(r, x))), "--n", "2", "--out", str(x.fresh("s.npz"))]), "SHA-256"),
        Case("sample-missing-state", w(lambda x: ["sample", str(_run_copy(x, lambda r: (r / "training_state.json").unlink())), "--n", "2", "--out", str(x.fresh("s.npz"))]), "training_state.json"),
        Case("sample-config-not-json", w(lambda x: ["sample", str(_run_copy(x, lambda r: (r / "config.json").write_text("{"))), "--n", "2", "--out", str(x.fresh("s.npz"))]), "JSON"),
        Case("sample-missing-run", w(lambda x: ["sample", str(x.fresh("norun")), "--n", "2", "--out", str(x.fresh("s.npz"))]), ""),
        Case("fidelity-folder-without-npz", w(lambda x: ["evaluate", "fidelity", "--real", str(x.phantom), "--synthetic", str(x.folder), "--out", str(x.fresh("f"))]), "synthetic.npz"),
        Case("fidelity-image-size-mismatch", w(lambda x: ["evaluate", "fidelity", "--real", str(x.small), "--synthetic", str(x.generated), "--out", str(x.fresh("f"))]), "shape"),
        Case("fidelity-false-flag-rate", w(lambda x: ["evaluate", "fidelity", "--real", str(x.phantom), "--synthetic", str(x.generated), "--out", str(x.fresh("f")), "--false-flag-rate", "2"]), "--false-flag-rate"),
        Case("fidelity-negative-bootstrap", w(lambda x: ["evaluate", "fidelity", "--real", str(x.phantom), "--synthetic", str(x.generated), "--out", str(x.fresh("f")), "--bootstrap", "-1"]), "--bootstrap"),
        Case("privacy-quantile", w(lambda x: ["evaluate", "privacy", "--train", str(x.phantom), "--holdout", str(x.phantom), "--synthetic", str(x.generated), "--out", str(x.fresh("p")), "--quantile", "2"]), "--quantile"),
        Case("privacy-same-split", w(lambda x: ["evaluate", "privacy", "--train", str(x.phantom), "--holdout", str(x.phantom), "--holdout-split", "train", "--synthetic", str(x.generated), "--out", str(x.fresh("p"))]), "held-out"),
        Case("utility-bad-arm", w(lambda x: ["evaluate", "utility", "--data", str(x.phantom), "--out", str(x.fresh("u")), "--arms", "real+magic"]), "arm terms"),
        Case("utility-zero-seeds", w(lambda x: ["evaluate", "utility", "--data", str(x.phantom), "--out", str(x.fresh("u")), "--seeds", "0"]), "--seeds"),
        Case("multimodal-generate-folder", w(lambda x: ["scenarios", "multimodal", "--data", str(x.phantom), "--synthetic", str(x.generated), "--out", str(x.fresh("m"))]), "clinical"),
        Case("stress-not-a-classifier", w(lambda x: ["scenarios", "stress", "--model", str(x.run), "--data", str(x.phantom), "--out", str(x.fresh("s"))]), "Classifier"),
        Case("report-empty-folder", w(lambda x: ["report", str(x.folder)]), "run.json"),
        Case("report-train-folder", w(lambda x: ["report", str(x.run)]), "run.json"),
        Case("report-missing-folder", w(lambda x: ["report", str(x.fresh("nothing"))]), ""),
        # --- the data sandbox: nothing read from outside the data folder, no special files, no bombs
        Case("inspect-csv-parent-path", w(lambda x: ["data", "inspect", str(_folder(x, _csv("a/0.png,0\n../secret.raw,1\n")))]), "outside"),
        Case("inspect-csv-absolute-path", w(lambda x: ["data", "inspect", str(_folder(x, _csv("a/0.png,0\n/etc/hostname,1\n")))]), "outside"),
        Case("inspect-link-out", w(lambda x: ["data", "inspect", str(_folder(x, lambda r: (r / "a" / "9.png").symlink_to("/etc/hostname")))]), "outside"),
        Case("inspect-class-folder-link", w(lambda x: ["data", "inspect", str(_folder(x, lambda r: (r / "c").symlink_to("/etc")))]), "outside"),
        Case("inspect-mhd-data-outside", w(lambda x: ["data", "inspect", str(_folder(x, _mhd("/etc/hostname")))]), "outside"),
        Case("inspect-mhd-data-parent", w(lambda x: ["data", "inspect", str(_folder(x, _mhd("../../secret.raw")))]), "outside"),
        Case("inspect-mhd-data-list", w(lambda x: ["data", "inspect", str(_folder(x, _mhd("LIST 2D")))]), "file list"),
        Case("inspect-nrrd-data-outside", w(lambda x: ["data", "inspect", str(_folder(x, lambda r: (r / "a" / "v.nhdr").write_text(
            "NRRD0004\ntype: uint8\ndimension: 2\nsizes: 8 8\nencoding: raw\ndata file: ../../secret.raw\n\n")))]), "outside"),
        Case("inspect-fifo", w(lambda x: ["data", "inspect", str(_folder(x, lambda r: os.mkfifo(r / "a" / "pipe.png")))]), "FIFO"),
        Case("inspect-device-link", w(lambda x: ["data", "inspect", str(_folder(x, lambda r: (r / "a" / "zero.png").symlink_to("/dev/zero")))]), "outside"),
        Case("inspect-dangling-link", w(lambda x: ["data", "inspect", str(_folder(x, lambda r: (r / "a" / "gone.png").symlink_to(r / "none")))]), "link"),
        Case("inspect-png-oversized", w(lambda x: ["data", "inspect", str(_folder(x, _png_bomb(12_000)))]), "values"),
        Case("inspect-png-bomb", w(lambda x: ["data", "inspect", str(_folder(x, _png_bomb(50_000)))]), "bomb"),
        Case("inspect-csv-label-huge", w(lambda x: ["data", "inspect", str(_folder(x, _csv(f"a/0.png,0\nb/0.png,{10**12}\n")))]), "0..999"),
        Case("inspect-csv-label-negative", w(lambda x: ["data", "inspect", str(_folder(x, _csv("a/0.png,0\nb/0.png,-1\n")))]), "0..999"),
        Case("inspect-npz-label-huge", w(lambda x: ["data", "inspect", str(_labels_npz(x))]), "0..999"),
        Case("inspect-escape-codes", w(lambda x: ["data", "inspect", str(_folder(x, _csv("\x1b[2Jgone.png,0\n")))]), "missing file"),
        Case("train-csv-parent-path", w(lambda x: ["train", "--data", str(_folder(x, _csv("a/0.png,0\n../secret.raw,1\n"))), "--model", "vae", "--out", str(x.fresh("r"))]), "outside"),
        Case("run-link-out", w(lambda x: ["run", "--data", str(_folder(x, lambda r: (r / "b" / "9.png").symlink_to("/etc/hostname"))), "--out", str(x.fresh("r"))]), "outside"),
        # --- the sandbox holds for every command that reads data
        Case("extract-folder-link-out", w(lambda x: ["radiomics", "extract", str(_folder(x, _link_out)), "--out", str(x.fresh("f.parquet"))]), "outside"),
        Case("fidelity-real-link-out", w(lambda x: ["evaluate", "fidelity", "--real", str(_folder(x, _link_out)), "--synthetic", str(x.generated), "--out", str(x.fresh("f"))]), "outside"),
        Case("privacy-train-link-out", w(lambda x: ["evaluate", "privacy", "--train", str(_folder(x, _link_out)), "--holdout", str(x.phantom), "--synthetic", str(x.generated), "--out", str(x.fresh("p"))]), "outside"),
        Case("utility-data-link-out", w(lambda x: ["evaluate", "utility", "--data", str(_folder(x, _link_out)), "--out", str(x.fresh("u")), "--quick"]), "outside"),
        Case("augment-data-link-out", w(lambda x: ["scenarios", "augment", "--data", str(_folder(x, _link_out)), "--out", str(x.fresh("a")), "--quick"]), "outside"),
        Case("stress-data-link-out", w(lambda x: ["scenarios", "stress", "--model", str(x.classifier), "--data", str(_folder(x, _link_out)), "--out", str(x.fresh("s")), "--quick"]), "outside"),
        Case("generate-filter-data-link-out", w(lambda x: ["generate", str(x.run), "--per-class", "0=2", "--filter", "--data", str(_folder(x, _link_out)), "--out", str(x.fresh("g"))]), "outside"),
        Case("prepare-link-out", w(lambda x: ["data", "prepare", str(_folder(x, _link_out)), "--out", str(x.fresh("p.npz"))]), "outside"),
        Case("prepare-csv-parent-path", w(lambda x: ["data", "prepare", str(_folder(x, _csv("a/0.png,0\n../secret.raw,1\n"))), "--out", str(x.fresh("p.npz"))]), "outside"),
        Case("run-csv-absolute-path", w(lambda x: ["run", "--data", str(_folder(x, _csv("a/0.png,0\n/etc/hostname,1\n"))), "--out", str(x.fresh("r"))]), "outside"),
        Case("inspect-csv-mask-outside", w(lambda x: ["data", "inspect", str(_folder(x, lambda r: (r / "labels.csv").write_text("filename,label,mask\na/0.png,0,../secret.raw\nb/0.png,1,a/1.png\n")))]), "outside"),
        # --- image files and folder contents that genrad would misread
        Case("inspect-nifti-nan", w(lambda x: ["data", "inspect", str(_folder(x, _nifti(float("nan"))))]), "NaN or inf"),
        Case("inspect-nifti-inf", w(lambda x: ["data", "inspect", str(_folder(x, _nifti(float("inf"))))]), "NaN or inf"),
        Case("inspect-mha-huge-header", w(lambda x: ["data", "inspect", str(_folder(x, _mha_header(100_000)))]), "values"),
        Case("inspect-csv-duplicate-file", w(lambda x: ["data", "inspect", str(_folder(x, _csv("a/0.png,0\nb/0.png,1\na/0.png,1\n")))]), "each file once"),
        Case("inspect-csv-not-utf8", w(lambda x: ["data", "inspect", str(_folder(x, lambda r: (r / "labels.csv").write_bytes(b"filename,label\n\xff\xfe.png,0\n")))]), "UTF-8"),
        Case("inspect-csv-fifo-row", w(lambda x: ["data", "inspect", str(_folder(x, lambda r: (os.mkfifo(r / "p.png"), (r / "labels.csv").write_text("filename,label\na/0.png,0\np.png,1\n"))))]), "FIFO"),
        Case("inspect-csv-empty-series-folder", w(lambda x: ["data", "inspect", str(_folder(x, lambda r: ((r / "s").mkdir(), (r / "labels.csv").write_text("filename,label\na/0.png,0\ns,1\n"))))]), "DICOM series"),
        Case("inspect-mixed-2d-3d", w(lambda x: ["data", "inspect", str(_folder(x, lambda r: _nifti(0.5)(r) or _png(r / "a" / "2.png", np.zeros((6, 6), np.uint8))))]), "2D or all 3D"),
        Case("inspect-mixed-channels", w(lambda x: ["data", "inspect", str(_folder(x, lambda r: _png(r / "a" / "0.png", np.zeros((8, 8, 3), np.uint8))))]), "--channels"),
        Case("inspect-channels-two", w(lambda x: ["data", "inspect", str(_folder(x, lambda r: None)), "--channels", "2"]), "--channels"),
        Case("prepare-size-too-small", w(lambda x: ["data", "prepare", str(_folder(x, lambda r: None)), "--size", "2", "--out", str(x.fresh("p.npz"))]), "--size"),
        Case("run-size-too-small", w(lambda x: ["run", "--data", str(_folder(x, lambda r: None)), "--size", "2", "--out", str(x.fresh("r"))]), "data.size"),
        Case("prepare-two-fractions", w(lambda x: ["data", "prepare", str(_folder(x, lambda r: None)), "--split-fractions", "0.7,0.3", "--out", str(x.fresh("p.npz"))]), "three"),
        Case("prepare-fractions-on-split-data", w(lambda x: ["data", "prepare", str(_folder(x, lambda r: (r / "labels.csv").write_text("filename,label,split\na/0.png,0,train\nb/0.png,1,train\na/1.png,0,test\nb/1.png,1,test\n"))), "--split-fractions", "0.7,0.1,0.2", "--out", str(x.fresh("p.npz"))]), "own split"),
        # --- run configurations: the data section and YAML that is not data
        Case("run-config-size-too-small", w(lambda x: ["run", "--out", str(x.fresh("r")), "--config", str(_bad_yaml(x, "data:\n  size: 2\n"))]), "data.size"),
        Case("run-config-two-fractions", w(lambda x: ["run", "--out", str(x.fresh("r")), "--config", str(_bad_yaml(x, "data:\n  split_fractions: [0.5, 0.5]\n"))]), "data.split_fractions"),
        Case("run-config-bad-mask-regions", w(lambda x: ["run", "--out", str(x.fresh("r")), "--config", str(_bad_yaml(x, "data:\n  mask_regions: split\n"))]), "data.mask_regions"),
        Case("run-config-fractions-on-split-data", w(lambda x: ["run", "--data", str(x.phantom), "--out", str(x.fresh("r")), "--config", str(_bad_yaml(x, "data:\n  split_fractions: [0.7, 0.1, 0.2]\n"))]), "own split"),
        Case("run-config-size-on-npz", w(lambda x: ["run", "--data", str(x.phantom), "--out", str(x.fresh("r")), "--config", str(_bad_yaml(x, "data:\n  size: 64\n"))]), "folder"),
        Case("run-config-python-tag", w(lambda x: ["run", "--out", str(x.fresh("r")), "--config", str(_bad_yaml(x, "seed: !!python/object/apply:os.system ['true']\n"))]), "YAML"),
        Case("run-config-top-level-list", w(lambda x: ["run", "--out", str(x.fresh("r")), "--config", str(_bad_yaml(x, "- seed\n- 3\n"))]), "mapping"),
        Case("run-config-bad-intensity", w(lambda x: ["run", "--out", str(x.fresh("r")), "--config", str(_bad_yaml(x, "data:\n  intensity: zscore\n"))]), "data.intensity"),
        Case("run-config-negative-seed", w(lambda x: ["run", "--out", str(x.fresh("r")), "--config", str(_bad_yaml(x, "seed: -1\n"))]), "seed"),
        # --- counts and choices of every command, refused as typed
        Case("generate-negative-count", w(lambda x: ["generate", str(x.run), "--per-class", "0=-1", "--out", str(x.fresh("g"))]), "count >= 0"),
        Case("generate-unknown-class", w(lambda x: ["generate", str(x.run), "--per-class", "7=5", "--out", str(x.fresh("g"))]), "model's classes"),
        Case("generate-multiple-zero", w(lambda x: ["generate", str(x.run), "--multiple", "0", "--data", str(x.phantom), "--out", str(x.fresh("g"))]), "--multiple"),
        Case("generate-multiple-nan", w(lambda x: ["generate", str(x.run), "--multiple", "nan", "--data", str(x.phantom), "--out", str(x.fresh("g"))]), "--multiple"),
        Case("generate-negative-seed", w(lambda x: ["generate", str(x.run), "--per-class", "0=2", "--seed", "-1", "--out", str(x.fresh("g"))]), "--seed"),
        Case("sample-negative-seed", w(lambda x: ["sample", str(x.run), "--n", "2", "--seed", "-1", "--out", str(x.fresh("s.npz"))]), "--seed"),
        Case("sample-negative-label", w(lambda x: ["sample", str(x.run), "--n", "2", "--label", "-1", "--out", str(x.fresh("s.npz"))]), "--label"),
        Case("sample-steps-on-vae", w(lambda x: ["sample", str(x.run), "--n", "2", "--steps", "5", "--out", str(x.fresh("s.npz"))]), "--steps"),
        Case("train-negative-seed", w(lambda x: ["train", "--data", str(x.phantom), "--model", "vae", "--seed", "-1", "--out", str(x.fresh("r"))]), "--seed"),
        Case("train-negative-max-steps", w(lambda x: ["train", "--data", str(x.phantom), "--model", "vae", "--max-steps", "-5", "--out", str(x.fresh("r"))]), "--max-steps"),
        Case("train-image-size-tiny", w(lambda x: ["train", "--data", str(x.phantom), "--model", "vae", "--image-size", "2", "--out", str(x.fresh("r"))]), "--image-size"),
        Case("train-bad-precision", w(lambda x: ["train", "--data", str(x.phantom), "--model", "vae", "--precision", "fp8", "--out", str(x.fresh("r"))]), "--precision"),
        Case("phantom-bad-dims", w(lambda x: ["data", "phantom", "--out", str(x.fresh("p.npz")), "--dims", "4"]), "--dims"),
        Case("phantom-negative-seed", w(lambda x: ["data", "phantom", "--out", str(x.fresh("p.npz")), "--seed", "-1"]), "--seed"),
        Case("extract-zero-workers", w(lambda x: ["radiomics", "extract", str(x.phantom), "--out", str(x.fresh("f.parquet")), "--workers", "0"]), "--workers"),
        Case("extract-bad-region", w(lambda x: ["radiomics", "extract", str(x.phantom), "--out", str(x.fresh("f.parquet")), "--region", "lesion"]), "--region"),
        Case("extract-roi-without-masks", w(lambda x: ["radiomics", "extract", str(x.generated / "synthetic.npz"), "--out", str(x.fresh("f.parquet")), "--region", "roi"]), "masks"),
        Case("extract-bad-engine", w(lambda x: ["radiomics", "extract", str(x.phantom), "--out", str(x.fresh("f.parquet")), "--engine", "gpu"]), "engine"),
        Case("utility-zero-workers", w(lambda x: ["evaluate", "utility", "--data", str(x.phantom), "--out", str(x.fresh("u")), "--workers", "0"]), "--workers"),
        Case("fidelity-mixed-size-folder", w(lambda x: ["evaluate", "fidelity", "--real", str(_folder(x, lambda r: _png(r / "a" / "0.png", np.zeros((9, 9), np.uint8)))), "--synthetic", str(x.generated), "--out", str(x.fresh("f"))]), "--size"),
        Case("utility-mixed-size-folder", w(lambda x: ["evaluate", "utility", "--data", str(_folder(x, lambda r: _png(r / "a" / "0.png", np.zeros((9, 9), np.uint8)))), "--out", str(x.fresh("u")), "--quick"]), "--size"),
        # --- MSD tasks
        Case("inspect-msd-missing-label-map", w(lambda x: ["data", "inspect", str(_msd(x, lambda r: (r / "labelsTr" / "c1.nii.gz").unlink()))]), "label map"),
        Case("inspect-msd-undeclared-label", w(lambda x: ["data", "inspect", str(_msd(x, lambda r: (r / "dataset.json").write_text('{"labels": {"0": "background"}}')))]), "label 1"),
        Case("inspect-msd-bad-dataset-json", w(lambda x: ["data", "inspect", str(_msd(x, lambda r: (r / "dataset.json").write_text('{"labels": {"zero": "background"}}')))]), "dataset.json"),
        Case("inspect-msd-dataset-json-fifo", w(lambda x: ["data", "inspect", str(_msd(x, lambda r: ((r / "dataset.json").unlink(), os.mkfifo(r / "dataset.json"))))]), "FIFO"),
        Case("inspect-msd-label-map-link-out", w(lambda x: ["data", "inspect", str(_msd(x, lambda r: ((r / "labelsTr" / "c2.nii.gz").unlink(), (r / "labelsTr" / "c2.nii.gz").symlink_to("/etc/hostname"))))]), "outside"),
        Case("inspect-msd-empty", w(lambda x: ["data", "inspect", str(_msd(x, lambda r: [f.unlink() for f in (r / "imagesTr").iterdir()]))]), "images in imagesTr"),
        # --- masks beside their images
        Case("inspect-mask-other-size", w(lambda x: ["data", "inspect", str(_folder(x, _masked(lambda r: _png(r / "a" / "0_mask.png", np.zeros((5, 5), np.uint8)))))]), "size"),
        Case("inspect-image-without-mask", w(lambda x: ["data", "inspect", str(_folder(x, _masked(lambda r: (r / "b" / "1_mask.png").unlink())))]), "without one"),
        Case("inspect-mask-without-image", w(lambda x: ["data", "inspect", str(_folder(x, _masked(lambda r: (r / "a" / "0.png").unlink())))]), "without its image"),
        Case("inspect-mask-rgb", w(lambda x: ["data", "inspect", str(_folder(x, _masked(lambda r: _png(r / "a" / "0_mask.png", np.dstack([np.zeros((8, 8), np.uint8), np.full((8, 8), 9, np.uint8), np.zeros((8, 8), np.uint8)])))))]), "one-channel"),
        Case("inspect-mask-label-over-255", w(lambda x: ["data", "inspect", str(_folder(x, _masked(lambda r: _png(r / "a" / "0_mask.png", np.full((8, 8), 300, np.uint16)))))]), "0..255"),
        Case("inspect-mixed-sizes", w(lambda x: ["data", "inspect", str(_folder(x, lambda r: _png(r / "a" / "0.png", np.zeros((9, 9), np.uint8))))]), "--size"),
        Case("inspect-npz-with-size", w(lambda x: ["data", "inspect", str(x.phantom), "--size", "64"]), "folder"),
        Case("inspect-bad-mask-regions", w(lambda x: ["data", "inspect", str(_folder(x, _masked(lambda r: None))), "--mask-regions", "split"]), "--mask-regions"),
        Case("prepare-npz", w(lambda x: ["data", "prepare", str(x.phantom), "--out", str(x.fresh("p.npz"))]), "prepared"),
        Case("prepare-bad-fractions", w(lambda x: ["data", "prepare", str(_folder(x, lambda r: None)), "--split-fractions", "0.5,0.6,x", "--out", str(x.fresh("p.npz"))]), "--split-fractions"),
        Case("prepare-fractions-not-summing", w(lambda x: ["data", "prepare", str(_folder(x, lambda r: None)), "--split-fractions", "0.5,0.6,0.2", "--out", str(x.fresh("p.npz"))]), "summing to 1"),
        Case("prepare-bad-normalise", w(lambda x: ["data", "prepare", str(_folder(x, lambda r: None)), "--normalise", "zscore", "--out", str(x.fresh("p.npz"))]), "--normalise"),
        Case("prepare-out-is-folder", w(lambda x: ["data", "prepare", str(_folder(x, lambda r: None)), "--out", str(x.folder)]), "a file"),
        Case("run-npz-with-size", w(lambda x: ["run", "--data", str(x.phantom), "--size", "64", "--out", str(x.fresh("r"))]), "folder"),
        Case("run-folder-mixed-sizes", w(lambda x: ["run", "--data", str(_folder(x, lambda r: _png(r / "a" / "0.png", np.zeros((9, 9), np.uint8)))), "--out", str(x.fresh("r"))]), "--size"),
        # --- bounded reads: special files, huge files, YAML bombs
        Case("run-config-billion-laughs", w(lambda x: ["run", "--out", str(x.fresh("r")), "--config", str(_bad_yaml(x, LAUGHS))]), "aliases"),
        Case("run-config-deep-list", w(lambda x: ["run", "--out", str(x.fresh("r")), "--config", str(_bad_yaml(x, "train: " + "[" * 100_000 + "]" * 100_000))]), "levels deep"),
        Case("run-config-deep-blocks", w(lambda x: ["run", "--out", str(x.fresh("r")), "--config", str(_bad_yaml(x, "".join(" " * k + "- \n" for k in range(0, 200, 2))))]), "levels deep"),
        Case("run-config-huge", w(lambda x: ["run", "--out", str(x.fresh("r")), "--config", str(_bad_yaml(x, "# " + "x" * (2 << 20)))]), "KiB"),
        Case("run-config-not-utf8", w(lambda x: ["run", "--out", str(x.fresh("r")), "--config", str(_bad_bytes(x, b"seed: \xff\xfe\n"))]), "UTF-8"),
        Case("run-config-fifo", w(lambda x: ["run", "--out", str(x.fresh("r")), "--config", str(_special(x, "fifo"))]), "FIFO"),
        Case("run-config-dev-zero", w(lambda x: ["run", "--out", str(x.fresh("r")), "--config", str(_special(x, "zero"))]), "device"),
        Case("sample-config-dev-zero", w(lambda x: ["sample", str(_run_copy(x, _replace_by("zero", "config.json"))), "--n", "2", "--out", str(x.fresh("s.npz"))]), "device"),
        Case("sample-state-fifo", w(lambda x: ["sample", str(_run_copy(x, _replace_by("fifo", "training_state.json"))), "--n", "2", "--out", str(x.fresh("s.npz"))]), "FIFO"),
        Case("sample-weights-dev-urandom", w(lambda x: ["sample", str(_run_copy(x, _replace_by("urandom", "model.safetensors"))), "--n", "2", "--out", str(x.fresh("s.npz"))]), "device"),
        Case("report-run-json-dev-zero", w(lambda x: ["report", str(_run_copy(x, lambda r: (r / "run.json").symlink_to("/dev/zero")))]), "device"),
        Case("inspect-npz-fifo", w(lambda x: ["data", "inspect", str(_special(x, "fifo").rename(x.fresh(f"f-{time.monotonic_ns()}.npz")))]), "regular"),
        # --- an output folder whose entries have the wrong kind: refused before the work, not after it
        Case("generate-shards-is-file", w(lambda x: ["generate", str(x.run), "--per-class", "0=2", "--out", str(_with_entry(x, "shards", "file"))]), "a folder (or nothing)"),
        Case("generate-npz-is-folder", w(lambda x: ["generate", str(x.run), "--per-class", "0=2", "--out", str(_with_entry(x, "synthetic.npz", "folder"))]), "a file (or nothing)"),
        Case("generate-manifest-is-folder", w(lambda x: ["generate", str(x.run), "--per-class", "0=2", "--out", str(_with_entry(x, "manifest.parquet", "folder"))]), "a file (or nothing)"),
        Case("train-weights-is-folder", w(lambda x: ["train", "--data", str(x.phantom), "--model", "vae", "--out", str(_with_entry(x, "model.safetensors", "folder"))]), "a file (or nothing)"),
        Case("train-samples-is-file", w(lambda x: ["train", "--data", str(x.phantom), "--model", "vae", "--out", str(_with_entry(x, "samples", "file"))]), "a folder (or nothing)"),
        # --- sizes checked against memory and disk before anything is allocated
        Case("sample-n-huge", w(lambda x: ["sample", str(x.run), "--n", str(10**12), "--out", str(x.fresh("s.npz"))]), "memory"),
        Case("generate-per-class-huge", w(lambda x: ["generate", str(x.run), "--per-class", f"0={10**12}", "--out", str(x.fresh("g"))]), "disk"),
        Case("generate-multiple-huge", w(lambda x: ["generate", str(x.run), "--multiple", "1e12", "--data", str(x.phantom), "--out", str(x.fresh("g"))]), "--multiple"),
        Case("train-image-size-huge", w(lambda x: ["train", "--data", str(x.phantom), "--model", "vae", "--image-size", "100000", "--out", str(x.fresh("r"))]), "--image-size"),
        Case("train-diffusion-image-size-huge", w(lambda x: ["train", "--data", str(x.phantom), "--model", "diffusion", "--image-size", "100000", "--out", str(x.fresh("r"))]), "memory"),
        Case("train-latent-dim-huge", w(lambda x: ["train", "--data", str(x.phantom), "--model", "vae", "--option", "latent_dim=10000000", "--out", str(x.fresh("r"))]), "parameters"),
        Case("train-latent-dim-overflow", w(lambda x: ["train", "--data", str(x.phantom), "--model", "vae", "--option", "latent_dim=100000000000", "--out", str(x.fresh("r"))]), "meta device"),
        # --- settings: every value checked at parse time, before any stage
        Case("run-budget-inf", w(lambda x: ["run", "--data", str(x.phantom), "--out", str(x.fresh("r")), "--budget-minutes", "inf"]), "budget"),
        Case("run-budget-nan", w(lambda x: ["run", "--data", str(x.phantom), "--out", str(x.fresh("r")), "--budget-minutes", "nan"]), "budget"),
        Case("run-budget-zero", w(lambda x: ["run", "--data", str(x.phantom), "--out", str(x.fresh("r")), "--budget-minutes", "0"]), "budget"),
        Case("run-bad-yaml", w(lambda x: ["run", "--out", str(x.fresh("r")), "--config", str(_bad_yaml(x, "train: [unclosed"))]), "YAML"),
        Case("run-unknown-key", w(lambda x: ["run", "--out", str(x.fresh("r")), "--config", str(_bad_yaml(x, "train:\n  colour: red\n"))]), "colour"),
        Case("run-model-rejects-setting", w(lambda x: ["run", "--data", str(x.phantom), "--out", str(x.fresh("r")), "--config", str(_bad_yaml(x, "train:\n  model: vae\n  intensity: {floor_gap: 0.5}\n"))]), "floor_gap"),
        Case("run-missing-data", w(lambda x: ["run", "--data", str(x.fresh("none.npz")), "--out", str(x.fresh("r"))]), ""),
        Case("run-bad-model", w(lambda x: ["run", "--data", str(x.phantom), "--out", str(x.fresh("r")), "--model", "unet"]), "model"),
        Case("train-max-steps-zero", w(lambda x: ["train", "--data", str(x.phantom), "--model", "vae", "--out", str(x.fresh("r")), "--max-steps", "0"]), "--max-steps"),
        Case("train-max-minutes-zero", w(lambda x: ["train", "--data", str(x.phantom), "--model", "vae", "--out", str(x.fresh("r")), "--max-minutes", "0"]), "--max-minutes"),
        Case("train-max-minutes-inf", w(lambda x: ["train", "--data", str(x.phantom), "--model", "vae", "--out", str(x.fresh("r")), "--max-minutes", "inf"]), "--max-minutes"),
        Case("train-bad-family", w(lambda x: ["train", "--data", str(x.phantom), "--model", "unet", "--out", str(x.fresh("r"))]), "--model"),
        Case("train-bad-split", w(lambda x: ["train", "--data", str(x.phantom), "--model", "vae", "--split", "nope", "--out", str(x.fresh("r"))]), "nope"),
        Case("train-unknown-covariate", w(lambda x: ["train", "--data", str(x.phantom), "--model", "vae", "--covariates", "shoe_size", "--out", str(x.fresh("r")), "--max-steps", "1"]), "shoe_size"),
        Case("train-gamma-out-of-range", w(lambda x: ["train", "--data", str(x.phantom), "--model", "vae", "--intensity", "gamma=9", "--out", str(x.fresh("r"))]), "--intensity gamma="),
        Case("train-negative-guidance", w(lambda x: ["train", "--data", str(x.phantom), "--model", "diffusion", "--option", "guidance_scale=-1", "--out", str(x.fresh("r"))]), "--option guidance_scale="),
        Case("train-guide-step-vae", w(lambda x: ["train", "--data", str(x.phantom), "--model", "vae", "--option", "guide_step=3", "--out", str(x.fresh("r"))]), "guide_step"),
        Case("train-bad-preset", w(lambda x: ["train", "--data", str(x.phantom), "--preset", "best", "--out", str(x.fresh("r"))]), "--preset"),
        Case("train-bad-option-syntax", w(lambda x: ["train", "--data", str(x.phantom), "--model", "vae", "--option", "latent_dim", "--out", str(x.fresh("r"))]), "--option KEY=VALUE"),
        Case("train-dp-without-epsilon", w(lambda x: ["train", "--data", str(x.phantom), "--model", "vae", "--dp", "--out", str(x.fresh("r"))]), "--epsilon"),
        Case("train-resume-nothing", w(lambda x: ["train", "--data", str(x.phantom), "--model", "vae", "--resume", "--out", str(x.fresh("r"))]), "--resume"),
        Case("parser-seed-not-int", w(lambda x: ["train", "--data", str(x.phantom), "--model", "vae", "--out", str(x.fresh("r")), "--seed", "abc"]), "'abc'"),
        Case("parser-n-not-int", w(lambda x: ["sample", str(x.run), "--n", "2.5", "--out", str(x.fresh("s.npz"))]), "'2.5'"),
        Case("parser-unknown-option", w(lambda x: ["train", "--data", str(x.phantom), "--model", "vae", "--out", str(x.fresh("r")), "--bogus", "3"]), "--bogus"),
        Case("parser-missing-option", w(lambda x: ["train", "--data", str(x.phantom), "--model", "vae"]), "--out"),
        Case("parser-unknown-command", w(lambda x: ["trian"]), "trian"),
        Case("sample-negative-n", w(lambda x: ["sample", str(x.run), "--n", "-1", "--out", str(x.fresh("s.npz"))]), "--n"),
        Case("sample-bad-label", w(lambda x: ["sample", str(x.run), "--n", "2", "--label", "7", "--out", str(x.fresh("s.npz"))]), "--label"),
        Case("sample-guidance-on-vae", w(lambda x: ["sample", str(x.run), "--n", "2", "--guidance-scale", "2", "--out", str(x.fresh("s.npz"))]), "--guidance-scale"),
        Case("generate-bad-per-class", w(lambda x: ["generate", str(x.run), "--per-class", "0=abc", "--out", str(x.fresh("g"))]), "--per-class"),
        Case("generate-zero-shard-size", w(lambda x: ["generate", str(x.run), "--per-class", "0=2", "--shard-size", "0", "--out", str(x.fresh("g"))]), "--shard-size"),
        Case("generate-bad-backend", w(lambda x: ["generate", str(x.run), "--per-class", "0=2", "--backend", "slurm", "--out", str(x.fresh("g"))]), "--backend"),
        Case("generate-zero-workers", w(lambda x: ["generate", str(x.run), "--per-class", "0=2", "--workers", "0", "--out", str(x.fresh("g"))]), "--workers"),
        Case("generate-filter-keeps-nothing", w(lambda x: ["generate", str(x.run), "--per-class", "0=6", "--filter", "--data", str(x.phantom), "--out", str(x.fresh("g"))]), "--filter",
             after_work=True),
        Case("generate-filter-without-data", w(lambda x: ["generate", str(x.run), "--per-class", "0=6", "--filter", "--out", str(x.fresh("g"))]), "--data"),
        Case("generate-two-plans", w(lambda x: ["generate", str(x.run), "--per-class", "0=6", "--balance", "--out", str(x.fresh("g"))]), ""),
        Case("generate-other-generation", w(lambda x: ["generate", str(x.run), "--per-class", "0=3", "--out", str(x.generated)]), "different generation"),
        Case("phantom-zero-n", w(lambda x: ["data", "phantom", "--out", str(x.fresh("p.npz")), "--n", "0"]), "--n"),
        Case("phantom-bad-size", w(lambda x: ["data", "phantom", "--out", str(x.fresh("p.npz")), "--size", "16"]), "--size"),
        Case("extract-bad-set", w(lambda x: ["radiomics", "extract", str(x.phantom), "--out", str(x.fresh("f.parquet")), "--set", "bogus"]), "bogus"),
        Case("extract-bad-suffix", w(lambda x: ["radiomics", "extract", str(x.phantom), "--out", str(x.fresh("f.csv"))]), ".parquet"),
        Case("extract-bad-split", w(lambda x: ["radiomics", "extract", str(x.phantom), "--out", str(x.fresh("f.parquet")), "--split", "nope"]), "nope"),
    ]


def _flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _symlink_weights(run: Path, world: World) -> None:
    """The weights replaced by a link to another file (here the classifier's weights)."""
    (run / "model.safetensors").unlink()
    (run / "model.safetensors").symlink_to(world.classifier / "model.safetensors")


def _text_npz(world: World) -> Path:
    path = world.fresh("text.npz")
    path.write_text("this is not a zip archive\n")
    return path


CASES = _cases()


def _snapshot(root: Path) -> dict[str, float | None]:
    """Every path under `root`, with the modification time of each file (folders: None, their mtime is not output)."""
    paths = [Path(top) / name for top, folders, files in os.walk(root) for name in folders + files]  # links not followed
    return {str(p): None if p.is_dir() and not p.is_symlink() else p.lstat().st_mtime_ns for p in sorted(paths)}


def test_the_table_is_large_and_distinct() -> None:
    assert len(CASES) >= 220 and len({case.id for case in CASES}) == len(CASES)


class _Hang(BaseException):
    """Raised by the alarm in a case that does not end: not an Exception, so no handler of genrad's can take it."""


def _hang(signum: int, frame: object) -> None:
    raise _Hang


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input_ends_in_one_clean_line(case: Case, world: World, capsys: pytest.CaptureFixture[str]) -> None:
    if "unwritable" in case.id and os.access("/sys", os.W_OK) and _sys_is_writable():
        pytest.skip("/sys accepts new entries here: no unwritable folder to test with")
    argv = case.argv(world)
    before = _snapshot(world.root)
    capsys.readouterr()
    start = time.perf_counter()
    previous = signal.signal(signal.SIGALRM, _hang)
    signal.alarm(CASE_TIMEOUT_SECONDS)  # a case that hangs fails here instead of stopping the suite
    try:
        with pytest.raises(SystemExit) as stopped:
            main(argv)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    seconds = time.perf_counter() - start
    _, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert stopped.value.code == 2, err
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], err
    assert case.after_work or len(lines) == 1, err
    assert "Traceback" not in err
    assert case.message in lines[-1], lines[-1]
    assert "\x1b" not in err
    after = _snapshot(world.root)
    assert after == before, sorted(set(after.items()) ^ set(before.items()))  # nothing new, nothing changed
    assert case.after_work or seconds < 5, f"refused after {seconds:.1f} s: checks must run before the work"


def _sys_is_writable() -> bool:
    try:
        UNWRITABLE.mkdir()
    except OSError:
        return False
    UNWRITABLE.rmdir()
    return True
