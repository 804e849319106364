"""Simulated image fields: same wells and keys as the simulated screen, deterministic, and featurizable."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import tifffile

from phenoseq.simulate import SimulationConfig, simulate_screen
from phenoseq.simulate.images import CHANNELS, render_field, well_name, write_image_fields


@pytest.fixture(scope="module")
def tiny_config() -> SimulationConfig:
    # 2 treatments × 3 replicates = 6 wells over both experimental rounds.
    return SimulationConfig(
        n_replicates=3, moa_groups=[["HDAC inhibitor", 1, True]], imaging_cells_per_well=5, rna_cells_per_well=5,
        n_genes=50, n_features=20, seed=4,
    )  # fmt: skip


@pytest.fixture(scope="module")
def tiny_images(tiny_config, tmp_path_factory):
    out = tmp_path_factory.mktemp("sim") / "images"
    return write_image_fields(tiny_config, out, size=160, cells_per_field=(8, 12))


def test_wells_and_keys_match_the_simulated_screen(tiny_config, tiny_images):
    imaging, _ = simulate_screen(tiny_config)
    plate = pd.read_csv(tiny_images / "platemap.csv", dtype=str)
    keys = ["Sample_ID", "Treatment", "Replicate", "batch", "Group"]
    expected = imaging.obs[keys].astype(str).drop_duplicates().sort_values("Sample_ID").reset_index(drop=True)
    got = plate[keys].sort_values("Sample_ID").reset_index(drop=True)
    pd.testing.assert_frame_equal(got, expected)
    assert sorted(p.name for p in tiny_images.glob("*.tif")) == [f"{well_name(i)}_s1.tif" for i in range(6)]
    stack = tifffile.imread(tiny_images / "A01_s1.tif")
    assert stack.shape == (len(CHANNELS), 160, 160) and stack.dtype == np.uint16


def test_rendering_is_deterministic(tiny_config, tiny_images, tmp_path):
    again = write_image_fields(tiny_config, tmp_path / "again", size=160, cells_per_field=(8, 12))
    for f in ("A01_s1.tif", "A06_s1.tif", "platemap.csv"):
        assert (again / f).read_bytes() == (tiny_images / f).read_bytes()


def test_featurize_round_trip_gives_standard_keys(tiny_images):
    from phenoseq.featurize import featurize_directory

    adata = featurize_directory(tiny_images, platemap=tiny_images / "platemap.csv")
    for key in ("Sample_ID", "Treatment", "Replicate", "batch", "Group", "Metadata_Well", "Metadata_Field"):
        assert key in adata.obs.columns
    assert adata.obs["Metadata_Well"].nunique() == 6
    assert adata.obs.groupby("Sample_ID", observed=True).size().min() >= 4
    assert adata.uns["featurize"]["cell_channel"] == "AGP"
    assert {"Nuclei_AreaShape_Area", "Cells_Intensity_MeanIntensity_Mito", "Cytoplasm_TexturePhenoseq_Contrast_ER_3"} <= set(
        adata.var_names
    )
    assert np.isfinite(adata.X).all()


def test_appearance_reaches_the_measurements():
    # Bigger rendered nuclei must be measured bigger: the latent → pixels → features path is intact.
    from phenoseq.featurize.segment import segment_nuclei

    areas = []
    for radius in (5.0, 8.0):
        n = 12
        app = {
            "nuc_r": np.full(n, radius), "aspect": np.full(n, 1.1), "dna": np.ones(n), "dna_tex": np.full(n, 0.2),
            "cell_ratio": np.full(n, 2.0), "er": np.ones(n), "rna": np.ones(n), "agp": np.ones(n),
            "mito": np.ones(n), "mito_spread": np.full(n, 0.5),
        }  # fmt: skip
        stack = render_field(app, 192, np.random.default_rng(0))
        labels = segment_nuclei(stack[0] / 65535.0)
        areas.append(np.bincount(labels.ravel())[1:].mean())
    assert areas[1] / areas[0] == pytest.approx((8.0 / 5.0) ** 2, rel=0.3)
