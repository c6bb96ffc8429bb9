"""Sharded generation: determinism across backends, manifest, resume, filter, exports, bad input."""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from synthesis_toys import ToyGenerator

from genrad.errors import InputError
from genrad.synthesis import SyntheticSet, generate
from genrad.synthesis.shards import shard_path, shard_seed
from genrad.synthesis.writers import StreamingNpz

OUTPUTS = ("synthetic.npz", "manifest.parquet", "manifest.csv")


def _bytes(out: Path) -> dict[str, bytes]:
    return {name: (out / name).read_bytes() for name in OUTPUTS}


def test_same_seed_gives_the_same_bytes_on_every_backend(tmp_path: Path, vae_run_dir: Path, tiny_cohort) -> None:
    """A VAE run dir on 1 worker, a 2-process pool (each loads the run dir) and 2 Ray actors."""
    common = {"per_class": {0: 130, 1: 70}, "data": tiny_cohort, "seed": 7, "shard_size": 40, "batch_size": 16}
    runs = {
        "local1": {"workers": 1},
        "local2": {"workers": 2},
        "ray2": {"backend": "ray", "workers": 2},
    }
    outputs = {}
    for name, options in runs.items():
        outputs[name] = _bytes(generate(vae_run_dir, out=tmp_path / name, progress=False, **common, **options).out)
    assert outputs["local1"] == outputs["local2"] == outputs["ray2"]
    other = _bytes(generate(vae_run_dir, out=tmp_path / "seed8", progress=False, **{**common, "seed": 8}).out)
    assert other["synthetic.npz"] != outputs["local1"]["synthetic.npz"]


def test_npz_and_manifest_describe_every_image(tmp_path: Path) -> None:
    model = ToyGenerator(covariates=("age",))
    covariates = pd.DataFrame({"age": [2.0, 3.0, 4.0, 5.0], "label": [0, 0, 1, 1]})
    synthetic = generate(model, per_class={1: 25, 0: 35}, covariates=covariates, out=tmp_path, shard_size=16, progress=False)
    manifest = synthetic.manifest
    assert len(manifest) == len(synthetic) == 60
    assert manifest["id"].is_unique
    assert manifest["label"].tolist() == [0] * 35 + [1] * 25
    assert manifest["shard"].tolist() == [i // 16 for i in range(60)]
    assert manifest["seed"].tolist() == [shard_seed(0, i // 16) for i in range(60)]
    assert manifest["row"].tolist() == list(range(60))
    assert manifest["synthetic"].all() and manifest["kept"].all()
    assert set(manifest["model_hash"]) == {model.model_hash()}
    assert set(manifest["genrad_version"]) == {"0.1.0"}
    for label, ages in ((0, {2.0, 3.0}), (1, {4.0, 5.0})):
        assert set(manifest.loc[manifest["label"] == label, "age"]) <= ages
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "manifest.csv"), manifest, check_dtype=False)

    with np.load(tmp_path / "synthetic.npz", allow_pickle=False) as npz:
        assert npz["train_images"].shape == (60, 28, 28) and npz["train_images"].dtype == np.uint8
        assert npz["train_labels"].reshape(-1).tolist() == manifest["label"].tolist()
        assert npz["train_ids"].tolist() == manifest["id"].tolist()
        np.testing.assert_array_equal(npz["train_clinical__age"], manifest["age"])
        assert npz["synthetic"].all() and len(npz["synthetic"]) == 60
        provenance = json.loads(str(npz["genrad_provenance"]))
    assert provenance["synthetic"] is True
    assert provenance["generation"]["plan"]["per_class"] == {"0": 35, "1": 25}
    with zipfile.ZipFile(tmp_path / "synthetic.npz") as archive:
        assert {info.date_time for info in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}

    # The images follow their conditions: the toy draws class k at brightness (k + 1) / 3 and
    # a disc whose radius grows with age.
    split = synthetic.split
    assert split.images.dtype == np.float32 and split.images.shape == (60, 1, 28, 28)
    centre = split.images[:, 0, 12:16, 12:16].mean(axis=(1, 2))
    assert abs(centre[split.labels == 0].mean() - 1 / 3) < 0.05 and abs(centre[split.labels == 1].mean() - 2 / 3) < 0.05
    area = (split.images[:, 0] > 0.5 * (split.labels[:, None, None] + 1) / 3).sum(axis=(1, 2))
    age = split.clinical["age"].to_numpy()
    assert area[age == 5.0].mean() > area[age == 4.0].mean()


@pytest.mark.parametrize(
    "bad",
    [
        {"per_class": {2: 10}},
        {"per_class": {0: -5}},
        {"per_class": {0: 10}, "covariates": pd.DataFrame({"bmi": [20.0]})},
        {"per_class": {0: 0}},
        {"per_class": {0: 10}, "shard_size": 0},
        {"per_class": {0: 10}, "backend": "slurm"},
        {"per_class": {0: 10}, "format": "png", "model": ToyGenerator(image_shape=(1, 8, 8, 8))},
    ],
)
def test_bad_requests_fail_before_any_file_is_written(tmp_path: Path, bad: dict) -> None:
    model = bad.pop("model", ToyGenerator())
    with pytest.raises(InputError):
        generate(model, out=tmp_path / "out", progress=False, **bad)
    assert not (tmp_path / "out").exists()


def test_rerun_resumes_only_missing_shards_and_gives_the_same_bytes(tmp_path: Path) -> None:
    model = ToyGenerator()
    request = {"per_class": {0: 50, 1: 50}, "shard_size": 10, "batch_size": 10, "progress": False}
    reference = _bytes(generate(model, out=tmp_path, **request).out)
    assert model.calls == 10
    shard_path(tmp_path, 3).unlink()
    shard_path(tmp_path, 7).unlink()
    (tmp_path / "synthetic.npz").unlink()
    generate(model, out=tmp_path, **request)
    assert model.calls == 12
    assert _bytes(tmp_path) == reference
    generate(model, out=tmp_path, **request)  # complete: nothing to do
    assert model.calls == 12


def test_another_generation_into_the_same_folder_is_refused(tmp_path: Path) -> None:
    generate(ToyGenerator(), per_class={0: 10}, out=tmp_path, seed=0, progress=False)
    before = _bytes(tmp_path)
    with pytest.raises(InputError, match="differs in seed"):
        generate(ToyGenerator(), per_class={0: 10}, out=tmp_path, seed=1, progress=False)
    assert _bytes(tmp_path) == before


def _drop_bright(images: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return images[:, 0, 12:16, 12:16].mean(axis=(1, 2)) < 0.5


def test_filter_drops_samples_and_records_them(tmp_path: Path) -> None:
    synthetic = generate(ToyGenerator(), per_class={0: 40, 1: 40}, out=tmp_path, shard_size=25, filter=_drop_bright, progress=False)
    manifest = synthetic.manifest
    kept = manifest[manifest["kept"]]
    assert 0 < len(kept) < 80 and len(synthetic) == len(kept)
    assert set(kept["label"]) == {0}  # class 1 is brighter: all dropped
    assert (manifest.loc[~manifest["kept"], "row"] == -1).all() and kept["row"].tolist() == list(range(len(kept)))
    assert (manifest.loc[~manifest["kept"], "file"] == "").all()
    assert (synthetic.images[:, 0, 12:16, 12:16].mean(axis=(1, 2)) < 0.5).all()
    assert synthetic.record["merge"]["filter"].endswith("_drop_bright")

    with pytest.raises(InputError, match="boolean mask"):
        generate(ToyGenerator(), per_class={0: 5}, out=tmp_path / "bad", filter=lambda x, y: x.mean(), progress=False)


def test_png_export_is_marked_synthetic(tmp_path: Path) -> None:
    from PIL import Image

    synthetic = generate(ToyGenerator(), per_class={0: 3, 1: 2}, out=tmp_path, format="png", progress=False)
    manifest = synthetic.manifest
    assert sorted(p.relative_to(tmp_path).as_posix() for p in (tmp_path / "png").rglob("*.png")) == sorted(manifest["file"])
    for row in manifest.itertuples():
        assert row.file == f"png/{row.label}/{row.id}.png"
        with Image.open(tmp_path / row.file) as image:
            assert image.text["genrad:synthetic"] == "true" and image.text["Description"].startswith("SYNTHETIC")
            np.testing.assert_array_equal(np.asarray(image), np.rint(synthetic.images[row.row, 0] * 255))


def test_nifti_export_of_volumes_is_marked_synthetic(tmp_path: Path) -> None:
    import nibabel as nib
    import SimpleITK as sitk

    synthetic = generate(ToyGenerator(image_shape=(1, 6, 8, 10)), per_class={1: 3}, out=tmp_path, format="nifti", progress=False)
    row = synthetic.manifest.iloc[2]
    path = tmp_path / row["file"]
    assert path.name.endswith(".nii.gz")
    assert nib.load(path).header["descrip"].tobytes().decode().startswith("SYNTHETIC genrad")
    volume = sitk.GetArrayFromImage(sitk.ReadImage(str(path)))  # (D, H, W), as genrad's loaders read it
    np.testing.assert_array_equal(volume, np.rint(synthetic.images[2, 0] * 255))


def test_scores_merge_into_the_manifest(tmp_path: Path) -> None:
    synthetic = generate(ToyGenerator(), per_class={0: 4, 1: 2}, out=tmp_path, progress=False)
    ids = synthetic.manifest["id"]
    synthetic.add_scores(pd.DataFrame({"id": ids[:2], "qa_score": [0.1, 0.9]}))
    manifest = SyntheticSet(tmp_path).manifest
    assert manifest["qa_score"].tolist()[:2] == [0.1, 0.9] and manifest["qa_score"][2:].isna().all()
    synthetic.add_scores(pd.DataFrame({"qa_score": np.arange(6.0), "frd_contribution": np.ones(6)}))  # npz order
    manifest = pd.read_csv(tmp_path / "manifest.csv")
    assert manifest["qa_score"].tolist() == list(range(6)) and list(manifest["id"]) == list(ids)
    with pytest.raises(InputError, match="manifest columns"):
        synthetic.add_scores(pd.DataFrame({"id": ids[:1], "label": [3]}))
    with pytest.raises(InputError, match="unknown ids"):
        synthetic.add_scores(pd.DataFrame({"id": ["nope"], "qa_score": [1.0]}))


def test_streaming_npz_is_a_normal_reproducible_npz(tmp_path: Path) -> None:
    arrays = {"a": np.arange(12, dtype=np.int16).reshape(3, 4), "b": np.asarray("text"), "c": np.ones((2, 2), bool)}
    for name in ("one.npz", "two.npz"):
        with open(tmp_path / name, "wb") as handle, StreamingNpz(handle) as npz:
            for key, value in arrays.items():
                npz.write(key, value)
    assert (tmp_path / "one.npz").read_bytes() == (tmp_path / "two.npz").read_bytes()
    with np.load(tmp_path / "one.npz", allow_pickle=False) as loaded:
        for key, value in arrays.items():
            np.testing.assert_array_equal(loaded[key], value)


def test_a_dp_models_guarantee_is_copied_into_the_record_and_manifest(tmp_path: Path) -> None:
    model = ToyGenerator()
    model.privacy_ = {"mechanism": "DP-SGD", "epsilon": 7.5, "delta": 1e-5}
    synthetic = generate(model, per_class={0: 3}, out=tmp_path, progress=False)
    assert synthetic.record["privacy"]["epsilon"] == 7.5
    assert synthetic.manifest["dp_epsilon"].tolist() == [7.5] * 3 and (synthetic.manifest["dp_delta"] == 1e-5).all()
    assert "dp_epsilon" not in generate(ToyGenerator(), per_class={0: 3}, out=tmp_path / "plain", progress=False).manifest


def test_sampling_settings_reach_every_worker_and_the_provenance(tmp_path: Path, tiny_cohort) -> None:
    """A diffusion run sampled with guidance 4 instead of its saved 1.5: same bytes on 1 and 2 workers
    (the pool gets the changed model, not the run dir), recorded, and a resume with other settings refused."""
    from genrad.models import Diffusion

    run_dir = tmp_path / "run"
    model = Diffusion(num_classes=2, channels=(8, 16), num_inference_steps=2, batch_size=8).fit(
        tiny_cohort.train, max_steps=2, seed=0, progress=False)
    model.save(run_dir)
    common = {"per_class": {0: 6, 1: 6}, "seed": 3, "shard_size": 4, "progress": False}
    guided = {"sampling": {"guidance_scale": 4.0}}
    one = generate(run_dir, out=tmp_path / "one", workers=1, **common, **guided).out
    two = generate(run_dir, out=tmp_path / "two", workers=2, **common, **guided).out
    saved = generate(run_dir, out=tmp_path / "saved", **common).out
    assert _bytes(one) == _bytes(two) and _bytes(one)["synthetic.npz"] != _bytes(saved)["synthetic.npz"]
    record = json.loads((one / "synthesis.json").read_text())
    assert record["generation"]["sampling"] == {"guidance_scale": 4.0} and record["model_config"]["guidance_scale"] == 4.0
    with pytest.raises(InputError, match="sampling"):
        generate(run_dir, out=one, sampling={"guidance_scale": 2.0}, **common)
    from_object = generate(model, out=tmp_path / "object", **common, **guided).out
    images = [np.load(folder / "synthetic.npz")["train_images"] for folder in (from_object, one)]
    assert np.array_equal(*images) and model.guidance_scale == 1.5  # the caller's model is left as it was


def test_a_damaged_shard_is_sampled_again_with_the_same_bytes(tmp_path, capsys) -> None:
    """Truncate any shard of an interrupted (unmerged) or finished generation: the rerun says so in one line and
    writes exactly the bytes of an uninterrupted run."""
    import shutil

    from genrad.data.phantom import make_phantom
    from genrad.models import VAE

    cohort = make_phantom(n=120, size=28, dims=2, seed=0)
    model = VAE(num_classes=cohort.num_classes, spatial_dims=2).fit(cohort, max_steps=2, progress=False)
    request = {"per_class": {0: 5, 1: 5, 2: 2}, "shard_size": 4, "seed": 3, "progress": False}
    reference = generate(model, out=tmp_path / "reference", **request).npz_path.read_bytes()
    for index in range(3):
        for finished in (False, True):
            out = tmp_path / f"run-{index}-{finished}"
            shutil.copytree(tmp_path / "reference", out)
            if not finished:  # killed after sampling, before the merge
                (out / "synthetic.npz").unlink()
                (out / "synthesis.json").unlink()
            shard = out / "shards" / f"shard-{index:05d}.npz"
            shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])
            capsys.readouterr()
            assert generate(model, out=out, **request).npz_path.read_bytes() == reference
            if not finished:
                assert f"{shard} is unreadable" in capsys.readouterr().err


def test_the_sampling_time_is_estimated_before_sampling_without_changing_the_bytes(tmp_path: Path, capsys) -> None:
    from genrad.synthesis.generate import sampling_estimate

    slow = ToyGenerator(delay=0.25)  # 0.25 s per call: a 32-image probe samples 128 images/s
    line = sampling_estimate(slow, 128 * 60, batch_size=250)
    assert re.fullmatch(r"sampling 7680 images: about (0\.9|1\.0) min at 1[12]\d\.\d images/s per worker "
                        r"\(1 worker; timed on 32 images\)", line)
    assert re.search(r"about 0\.[45] min", sampling_estimate(slow, 128 * 60, workers=2))
    quiet = generate(ToyGenerator(), per_class={0: 40}, out=tmp_path / "quiet", seed=3, progress=False)
    assert "sampling 40 images: about" not in capsys.readouterr().err
    shown = generate(ToyGenerator(), per_class={0: 40}, out=tmp_path / "shown", seed=3, progress=True)
    assert "genrad: sampling 40 images: about" in capsys.readouterr().err
    assert _bytes(quiet.out) == _bytes(shown.out)
