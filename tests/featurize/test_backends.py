"""Measurement backends: the choice, the clear failure without cp-measure, and (when cp-measure is installed)
that ``--backend cp-measure`` gives CellProfiler's names and values, and that the phenoseq features carrying
CellProfiler's names equal CellProfiler's on the same objects."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import numpy as np
import pytest

from phenoseq.errors import PhenoseqError
from phenoseq.featurize import FeaturizeOptions, featurize_directory, featurize_field
from phenoseq.featurize.images import Field, FieldSpec

needs_cp_measure = pytest.mark.skipif(
    importlib.util.find_spec("cp_measure") is None, reason='cp-measure not installed (pip install "phenoseq[features]")'
)
CP_CATEGORIES = {"AreaShape", "Intensity", "Texture", "RadialDistribution", "Granularity", "Correlation"}
# Same statistic, different quantile interpolation (phenoseq: numpy's (n-1)q; CellProfiler 4: nq).
QUANTILES = ("MedianIntensity", "LowerQuartileIntensity", "UpperQuartileIntensity", "MADIntensity")


def synthetic_field(seed: int = 0, size: int = 96) -> Field:
    """Four textured nuclei (DNA) inside larger cell bodies (AGP), floats in 0–1."""
    rng = np.random.default_rng(seed)
    yy, xx = np.indices((size, size))
    dna = np.full((size, size), 0.02)
    agp = np.full((size, size), 0.02)
    for cy, cx in ((25, 25), (25, 70), (70, 25), (70, 70)):
        r2 = (yy - cy) ** 2 + (xx - cx) ** 2
        dna[r2 <= 49] += 0.5 + 0.3 * rng.random(int((r2 <= 49).sum()))
        agp[r2 <= 196] += 0.3
    agp += rng.normal(scale=0.01, size=agp.shape)
    images = {"DNA": np.clip(dna, 0, 1).astype(np.float32), "AGP": np.clip(agp, 0, 1).astype(np.float32)}
    return Field(FieldSpec("A01", "1"), images)


def test_unknown_backend_is_refused():
    with pytest.raises(PhenoseqError, match=r"unknown --backend 'cellprofiler'; choose one of phenoseq, cp-measure"):
        featurize_field(synthetic_field(), FeaturizeOptions(backend="cellprofiler"))


def test_default_backend_is_phenoseq():
    assert FeaturizeOptions().backend == "phenoseq"
    X, names, _ = featurize_field(synthetic_field())
    assert len(X) == 4 and "Nuclei_TexturePhenoseq_Contrast_DNA_3" in names
    assert not any("_Texture_" in n for n in names)


@pytest.fixture
def no_cp_measure(monkeypatch):
    # None in sys.modules makes ``import cp_measure`` raise ImportError whether or not it is installed.
    for name in ("cp_measure", "cp_measure.bulk"):
        monkeypatch.setitem(sys.modules, name, None)


def test_missing_cp_measure_fails_before_any_work(no_cp_measure, tmp_path):
    # Neither the plate map nor the image folder exists: the cp-measure check must come first.
    with pytest.raises(PhenoseqError, match=r'needs the cp-measure package.*pip install "phenoseq\[features\]"'):
        featurize_directory(
            tmp_path / "no-images", platemap=tmp_path / "no-plate.csv", options=FeaturizeOptions(backend="cp-measure")
        )
    with pytest.raises(PhenoseqError, match="cp-measure package"):
        featurize_field(synthetic_field(), FeaturizeOptions(backend="cp-measure"))


def run_cli(*args: str, hide_cp_measure: bool = False) -> subprocess.CompletedProcess:
    hide = "import sys; sys.modules['cp_measure'] = None; " if hide_cp_measure else ""
    code = hide + "from phenoseq.cli import main; main()"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120)


def test_cli_without_cp_measure_says_how_to_install(tmp_path):
    out = tmp_path / "out.h5ad"
    res = run_cli("featurize", str(tmp_path / "no-images"), "--out", str(out), "--backend", "cp-measure", hide_cp_measure=True)
    assert res.returncode == 2
    message = " ".join(res.stderr.split())  # the console wraps long lines
    assert "needs the cp-measure package" in message and 'pip install "phenoseq[features]"' in message
    assert not out.exists()


def test_cli_rejects_unknown_backend(tmp_path):
    res = run_cli("featurize", str(tmp_path), "--out", str(tmp_path / "o.h5ad"), "--backend", "cellprofiler")
    assert res.returncode == 2 and "cp-measure" in res.stderr


@needs_cp_measure
def test_cp_measure_backend_gives_cellprofiler_names_and_values():
    fld = synthetic_field()
    X, names, obs = featurize_field(fld, FeaturizeOptions(backend="cp-measure"))
    assert X.shape == (4, len(names)) and np.isfinite(X).all()
    for name in (
        "Nuclei_AreaShape_Area", "Nuclei_AreaShape_Zernike_0_0", "Cells_AreaShape_MaxFeretDiameter",
        "Nuclei_Intensity_MeanIntensity_DNA", "Nuclei_Intensity_MeanIntensityEdge_AGP",
        "Nuclei_Texture_AngularSecondMoment_DNA_3_00_256", "Cytoplasm_Texture_InfoMeas2_AGP_3_03_256",
        "Cells_RadialDistribution_RadialCV_DNA_4of4", "Cells_Granularity_16_AGP",
        "Cells_Correlation_Correlation_DNA_AGP", "Cells_Correlation_Manders_AGP_DNA", "Cytoplasm_Correlation_RWC_DNA_AGP",
    ):  # fmt: skip
        assert name in names
    assert {n.split("_")[1] for n in names} == CP_CATEGORIES
    assert not any("Location" in n or "Center" in n or "BoundingBoxM" in n for n in names)  # position
    assert not any(n.startswith("Cytoplasm_RadialDistribution") for n in names)

    # Every phenoseq feature that carries a CellProfiler name has CellProfiler's value.
    Xp, names_p, _ = featurize_field(fld)
    ours, theirs = dict(zip(names_p, Xp.T)), dict(zip(names, X.T))
    shared = [n for n in names_p if "TexturePhenoseq" not in n]
    assert set(shared) <= set(theirs)
    for n in shared:
        tol = dict(rtol=0.05, atol=0.01) if n.split("_")[2] in QUANTILES else dict(rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(ours[n], theirs[n], **tol, err_msg=n)


@needs_cp_measure
def test_phenoseq_radial_rings_are_cellprofilers_even_at_the_border():
    from phenoseq.featurize.cpmeasure import measure_compartment_cp
    from phenoseq.featurize.measure import measure_texture_radial

    yy, xx = np.indices((60, 80))
    labels = np.zeros((60, 80), np.int32)
    labels[(yy - 30) ** 2 / 2 + (xx - 20) ** 2 <= 150] = 1  # an ellipse
    labels[(yy - 5) ** 2 + (xx - 60) ** 2 <= 120] = 2  # cut by the top border
    labels[(labels == 0) & ((yy - 45) ** 2 + (xx - 55) ** 2 <= 100) & (xx % 7 != 0)] = 3  # ragged
    image = {"DNA": np.random.default_rng(1).random((60, 80))}
    ours = measure_texture_radial(labels, 3, image, "Cells", texture=False)
    theirs = measure_compartment_cp(labels, 3, image, "Cells", texture=False)
    for name, values in ours.items():
        np.testing.assert_allclose(values, theirs[name], atol=1e-9, err_msg=name)


def cellprofiler_texture(labels: np.ndarray, image: np.ndarray, obj: int, scale: int = 3) -> dict[str, np.ndarray]:
    """CellProfiler 4's MeasureTexture for one object, re-derived here with numpy (CellProfiler's source:
    the whole image converted to 8 bits, 256 levels, zero-valued pixels ignored, a symmetric co-occurrence
    matrix of pairs inside the object at offsets (0, s), (s, s), (s, 0), (s, −s)). Returns feature → 4 values."""
    q = np.round(np.clip(image, 0, 1) * 255).astype(np.int64)
    q[labels != obj] = 0
    ys, xs = np.nonzero(labels == obj)
    q = np.pad(q[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1], scale)
    h, w = q.shape[0] - 2 * scale, q.shape[1] - 2 * scale
    a = q[scale : scale + h, scale : scale + w]
    feats: dict[str, list[float]] = {k: [] for k in ("AngularSecondMoment", "Contrast", "Correlation", "Variance", "InverseDifferenceMoment", "Entropy")}
    for dy, dx in ((0, scale), (scale, scale), (scale, 0), (scale, -scale)):
        b = q[scale + dy : scale + dy + h, scale + dx : scale + dx + w]
        keep = (a > 0) & (b > 0)
        glcm = np.zeros((256, 256))
        np.add.at(glcm, (a[keep], b[keep]), 1)
        glcm = glcm + glcm.T
        p = glcm / glcm.sum()
        i, j = np.indices(p.shape)
        px = p.sum(axis=0)
        mu = (np.arange(256) * px).sum()
        var = ((np.arange(256) - mu) ** 2 * px).sum()
        nz = p[p > 0]
        feats["AngularSecondMoment"].append((p**2).sum())
        feats["Contrast"].append(((i - j) ** 2 * p).sum())
        feats["Correlation"].append(((i * j * p).sum() - mu**2) / var if var > 0 else 1.0)
        feats["Variance"].append(var)
        feats["InverseDifferenceMoment"].append((p / (1 + (i - j) ** 2)).sum())
        feats["Entropy"].append(-(nz * np.log2(nz)).sum())
    return {k: np.array(v) for k, v in feats.items()}


@needs_cp_measure
def test_cp_measure_backend_agrees_with_cellprofiler_on_examplehuman(real_data):
    """ExampleHuman nuclei: shape and intensity against CellProfiler's own output (matched by centroid),
    texture against CellProfiler's MeasureTexture definition (its ExampleHuman pipeline measured none)."""
    import pandas as pd
    from scipy import stats
    from scipy.spatial import cKDTree

    from phenoseq.featurize import discover_fields, load_field, segment_nuclei
    from phenoseq.featurize.cpmeasure import measure_compartment_cp

    channels = {"DNA": "0", "PH3": "1", "cellbody": "2"}
    folder = real_data / "cellprofiler_examples" / "ExampleHuman"
    dna = load_field(discover_fields(folder, "{plate}_{well}f{site}d{channel}.tif", channels)[0], channels).images["DNA"]
    nuclei = segment_nuclei(dna)
    n = 60  # a subset keeps the test to seconds
    labels = np.where(nuclei <= n, nuclei, 0)
    f = measure_compartment_cp(labels, n, {"DNA": dna}, "Nuclei", radial_bins=None)

    for obj in (1, 17, 42):
        reference = cellprofiler_texture(labels, dna, obj)
        for feature, values in reference.items():
            ours = [f[f"Nuclei_Texture_{feature}_DNA_3_{d:02d}_256"][obj - 1] for d in range(4)]
            np.testing.assert_allclose(ours, values, rtol=1e-6, atol=1e-12, err_msg=f"{feature} of nucleus {obj}")

    cp = pd.read_csv(real_data / "cytotable" / "ExampleHuman_cellprofiler_output" / "Nuclei.csv")
    yy, xx = np.nonzero(labels)
    count = np.bincount(labels[yy, xx], minlength=n + 1)[1:]
    ours_xy = np.stack([np.bincount(labels[yy, xx], xx)[1:], np.bincount(labels[yy, xx], yy)[1:]], 1) / count[:, None]
    theirs_xy = cp[["Location_Center_X", "Location_Center_Y"]].to_numpy(float)
    d, j = cKDTree(theirs_xy).query(ours_xy)
    keep = d <= 4
    assert keep.sum() > 0.85 * n
    for ours, col, floor in (("AreaShape_Area", "AreaShape_Area", 0.85), ("Intensity_MeanIntensity_DNA", "Intensity_MeanIntensity_DNA", 0.9)):
        r = stats.pearsonr(f[f"Nuclei_{ours}"][keep], cp[col].to_numpy()[j[keep]])[0]
        assert r > floor, (ours, r)
