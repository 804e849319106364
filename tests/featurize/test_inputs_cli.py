"""Field discovery/loading and the ``phenoseq featurize`` command: good input works, bad input fails
with a clear message, a non-zero exit and no output file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile

from phenoseq.errors import PhenoseqError
from phenoseq.featurize import discover_fields, featurize_directory, load_field, parse_channels


def field_planes(seed: int = 0, size: int = 96) -> dict[str, np.ndarray]:
    """A small 2-channel field: 4 bright nuclei (DNA) inside larger cell bodies (AGP), uint16."""
    rng = np.random.default_rng(seed)
    yy, xx = np.indices((size, size))
    dna = np.full((size, size), 300.0)
    agp = np.full((size, size), 300.0)
    for cy, cx in ((25, 25), (25, 70), (70, 25), (70, 70)):
        r2 = (yy - cy) ** 2 + (xx - cx) ** 2
        dna[r2 <= 36] += 20000
        agp[r2 <= 196] += 8000
    noise = rng.normal(scale=50, size=(2, size, size))
    return {"DNA": (dna + noise[0]).astype(np.uint16), "AGP": (agp + noise[1]).astype(np.uint16)}


def write_per_channel(folder: Path, wells=("A01", "B02")) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, well in enumerate(wells):
        planes = field_planes(i)
        tifffile.imwrite(folder / f"plate1_{well}_s1_w1.tif", planes["DNA"])
        tifffile.imwrite(folder / f"plate1_{well}_s1_w2.tif", planes["AGP"])


PATTERN = "{plate}_{well}_s{site}_w{channel}.tif"


def test_per_channel_files_with_mapping(tmp_path):
    write_per_channel(tmp_path)
    (tmp_path / "notes.txt").write_text("ignored")
    adata = featurize_directory(tmp_path, pattern=PATTERN, channels={"DNA": "1", "AGP": "2"})
    assert adata.n_obs == 8
    assert list(adata.obs["Metadata_Well"].cat.categories) == ["A01", "B02"]
    assert adata.X.dtype == np.float32 and np.isfinite(adata.X).all()
    assert "Cells_Intensity_MeanIntensity_AGP" in adata.var_names
    assert adata.uns["featurize"]["cell_channel"] == "AGP"
    areas = adata.obs_vector("Nuclei_AreaShape_Area")
    assert np.allclose(areas, np.pi * 36, rtol=0.15)
    assert np.all(adata.obs_vector("Cells_AreaShape_Area") > 3 * areas)


def test_stacked_file_yxc_and_regex_pattern(tmp_path):
    planes = field_planes()
    tifffile.imwrite(tmp_path / "C03-site2.tiff", np.stack([planes["AGP"], planes["DNA"]], axis=-1))
    specs = discover_fields(tmp_path, r"(?P<well>[A-H]\d+)-site(?P<site>\d+)\.tiff", None)
    assert [(s.well, s.site) for s in specs] == [("C03", "2")]
    fld = load_field(specs[0], {"DNA": 1, "AGP": 0})
    assert fld.shape == (96, 96) and fld.images["DNA"].max() > 0.25  # uint16 scaled to 0–1


def test_parse_channels():
    assert parse_channels("DNA=d0, PH3=d1") == {"DNA": "d0", "PH3": "d1"}
    assert parse_channels(None) is None
    with pytest.raises(PhenoseqError, match="NAME=TOKEN"):
        parse_channels("DNA")


def test_mismatched_channel_shapes(tmp_path):
    write_per_channel(tmp_path, wells=("A01",))
    tifffile.imwrite(tmp_path / "plate1_A01_s1_w2.tif", np.ones((50, 60), np.uint16))
    with pytest.raises(PhenoseqError, match=r"different shapes.*DNA 96×96.*AGP 50×60"):
        featurize_directory(tmp_path, pattern=PATTERN, channels={"DNA": "1", "AGP": "2"})


def test_missing_channel(tmp_path):
    write_per_channel(tmp_path)
    (tmp_path / "plate1_B02_s1_w2.tif").unlink()
    with pytest.raises(PhenoseqError, match=r"B02_s1 is missing channel\(s\) AGP"):
        featurize_directory(tmp_path, pattern=PATTERN, channels={"DNA": "1", "AGP": "2"})


def test_unknown_channel_name(tmp_path):
    write_per_channel(tmp_path)
    with pytest.raises(PhenoseqError, match=r"unknown channel 'Hoechst' for --nuclei-channel.*has DNA, AGP"):
        from phenoseq.featurize import FeaturizeOptions

        featurize_directory(
            tmp_path,
            pattern=PATTERN,
            channels={"DNA": "1", "AGP": "2"},
            options=FeaturizeOptions(nuclei_channel="Hoechst"),
        )


def test_empty_field_all_zeros_and_no_objects(tmp_path):
    write_per_channel(tmp_path, wells=("A01",))
    tifffile.imwrite(tmp_path / "plate1_A01_s1_w1.tif", np.zeros((96, 96), np.uint16))
    with pytest.raises(PhenoseqError, match=r"channel 'DNA' is empty \(all zeros\)"):
        featurize_directory(tmp_path, pattern=PATTERN, channels={"DNA": "1", "AGP": "2"})
    flat = np.random.default_rng(0).normal(300, 5, size=(96, 96)).astype(np.uint16)
    tifffile.imwrite(tmp_path / "plate1_A01_s1_w1.tif", flat)
    with pytest.raises(PhenoseqError, match="no nuclei found"):
        featurize_directory(tmp_path, pattern=PATTERN, channels={"DNA": "1", "AGP": "2"})


def test_no_matching_files(tmp_path):
    write_per_channel(tmp_path)
    with pytest.raises(PhenoseqError, match=r"no file name matches.*--pattern"):
        discover_fields(tmp_path)


def run_cli(*args: str) -> subprocess.CompletedProcess:
    code = "from phenoseq.cli import main; main()"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120)


def test_cli_bad_input_exits_nonzero_and_writes_nothing(tmp_path):
    images = tmp_path / "img"
    write_per_channel(images)
    tifffile.imwrite(images / "plate1_B02_s1_w2.tif", np.ones((50, 60), np.uint16))
    out = tmp_path / "out.h5ad"
    res = run_cli("featurize", str(images), "--out", str(out), "--pattern", PATTERN, "--channels", "DNA=1,AGP=2", "-q")
    assert res.returncode == 2
    assert "different shapes" in res.stderr and "B02_s1" in res.stderr
    assert not out.exists() and list(tmp_path.glob(".out.h5ad*")) == []


def test_cli_featurizes_with_platemap(tmp_path):
    images = tmp_path / "img"
    write_per_channel(images)
    plate = tmp_path / "plate.tsv"
    plate.write_text("Well\tSample_ID\tTreatment\nA1\tS1\tDMSO\nB2\tS2\tdrug\n")
    out = tmp_path / "f.h5ad"
    res = run_cli(
        "featurize", str(images), "--out", str(out), "--pattern", PATTERN, "--channels", "DNA=1,AGP=2",
        "--platemap", str(plate), "--no-texture", "-q",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    import anndata as ad

    adata = ad.read_h5ad(out)
    assert dict(zip(adata.obs["Metadata_Well"], adata.obs["Treatment"])) == {"A01": "DMSO", "B02": "drug"}
    assert not any("Texture" in v for v in adata.var_names)
    assert adata.uns["featurize"]["backend"] == "phenoseq"
