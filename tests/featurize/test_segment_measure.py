"""Segmentation and measurements against synthetic images with analytically known answers."""

from __future__ import annotations

import numpy as np
import pytest

from phenoseq.featurize.measure import measure_compartment, radial_fractions
from phenoseq.featurize.segment import SegmentationParams, cytoplasm, segment_cells, segment_nuclei


def disc(shape, centre, radius) -> np.ndarray:
    yy, xx = np.indices(shape)
    return (yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 <= radius**2


def test_touching_discs_are_split_in_two():
    # Two r=8 discs whose centres are 15 px apart overlap in a waist: one connected blob after thresholding.
    img = np.full((64, 80), 0.05, np.float32)
    a, b = disc(img.shape, (32, 30), 8), disc(img.shape, (32, 45), 8)
    img[a | b] = 0.8
    from scipy import ndimage as ndi

    assert ndi.label(a | b)[1] == 1  # the two discs touch: a threshold alone gives one object
    labels = segment_nuclei(img, SegmentationParams(nucleus_diameter=16))
    assert labels.max() == 2
    # each disc's centre lies in a different object
    assert labels[32, 30] != labels[32, 45] and labels[32, 30] > 0 and labels[32, 45] > 0


def test_illumination_gradient_does_not_merge_or_lose_nuclei():
    img = np.zeros((128, 128), np.float32)
    centres = [(r, c) for r in (24, 64, 104) for c in (24, 64, 104)]
    for cen in centres:
        img[disc(img.shape, cen, 6)] = 0.3
    ramp = np.linspace(0.0, 0.5, 128, dtype=np.float32)[None, :]  # background brighter than dim nuclei
    labels = segment_nuclei(img + ramp, SegmentationParams(nucleus_diameter=12))
    assert labels.max() == len(centres)


def test_disc_area_and_constant_intensity_are_exact():
    shape = (64, 64)
    mask = disc(shape, (32, 32), 10)
    labels = mask.astype(np.int32)
    image = np.where(mask, 0.4, 0.0).astype(np.float32)
    f = measure_compartment(labels, 1, {"DNA": image}, "Nuclei")
    assert f["Nuclei_AreaShape_Area"][0] == mask.sum()
    assert abs(f["Nuclei_AreaShape_Area"][0] - np.pi * 100) / (np.pi * 100) < 0.03
    assert f["Nuclei_AreaShape_Eccentricity"][0] < 0.1
    assert f["Nuclei_AreaShape_FormFactor"][0] == pytest.approx(1.0, abs=0.15)
    for stat in ("Mean", "Median", "Min", "Max", "LowerQuartile", "UpperQuartile"):
        assert f[f"Nuclei_Intensity_{stat}Intensity_DNA"][0] == pytest.approx(0.4, abs=1e-6)
    assert f["Nuclei_Intensity_StdIntensity_DNA"][0] == pytest.approx(0.0, abs=1e-6)
    assert f["Nuclei_Intensity_IntegratedIntensity_DNA"][0] == pytest.approx(0.4 * mask.sum(), rel=1e-6)
    assert f["Nuclei_Intensity_MassDisplacement_DNA"][0] == pytest.approx(0.0, abs=1e-6)
    assert f["Nuclei_TexturePhenoseq_Contrast_DNA_3"][0] == 0.0  # a flat object has no texture


def test_own_texture_does_not_carry_cellprofilers_name():
    # phenoseq's Haralick features are not CellProfiler's (different quantisation): a CellProfiler-aware
    # reader must not take them for "Texture".
    rng = np.random.default_rng(0)
    mask = disc((40, 40), (20, 20), 12)
    f = measure_compartment(mask.astype(np.int32), 1, {"DNA": rng.random((40, 40))}, "Nuclei")
    texture = [k for k in f if "Texture" in k]
    assert len(texture) == 6 and all(k.startswith("Nuclei_TexturePhenoseq_") for k in texture)
    assert not any("_Texture_" in k for k in f)
    assert 0 < f["Nuclei_TexturePhenoseq_AngularSecondMoment_DNA_3"][0] < 1


def test_intensity_quantiles_and_mass_displacement_on_a_ramp():
    labels = np.zeros((20, 20), np.int32)
    labels[5:15, 5:15] = 1
    image = np.tile(np.arange(20, dtype=np.float32), (20, 1))  # x coordinate as intensity
    f = measure_compartment(labels, 1, {"A": image}, "Cells", texture=False, radial_bins=None)
    vals = image[labels == 1]
    assert f["Cells_Intensity_MedianIntensity_A"][0] == pytest.approx(np.median(vals))
    assert f["Cells_Intensity_LowerQuartileIntensity_A"][0] == pytest.approx(np.quantile(vals, 0.25))
    assert f["Cells_Intensity_StdIntensity_A"][0] == pytest.approx(vals.std(), rel=1e-5)
    # intensity-weighted centre sits right of the geometric one by E[x²]/E[x] - E[x]
    expected = (vals**2).mean() / vals.mean() - vals.mean()
    assert f["Cells_Intensity_MassDisplacement_A"][0] == pytest.approx(expected, rel=1e-4)


def test_radial_distribution_of_uniform_disc_follows_ring_areas():
    mask = disc((101, 101), (50, 50), 40)
    frac, mean_frac = radial_fractions(np.ones(mask.shape), mask, n_bins=4)
    expected = np.array([1, 3, 5, 7]) / 16  # area of ring k of 4 in a disc: ((k+1)² − k²) / 16
    np.testing.assert_allclose(frac, expected, atol=0.02)
    np.testing.assert_allclose(mean_frac, 1.0, atol=1e-9)  # uniform: intensity share = pixel share
    # a centre-bright object puts more than its pixel share in the inner ring
    yy, xx = np.indices(mask.shape)
    peaked = np.exp(-((yy - 50) ** 2 + (xx - 50) ** 2) / 400.0)
    frac_p, mean_p = radial_fractions(peaked, mask, n_bins=4)
    assert mean_p[0] > 1.5 and mean_p[-1] < 1.0


def test_cells_grow_from_their_own_nucleus_and_cytoplasm_is_a_ring():
    shape = (80, 80)
    nuclei = np.zeros(shape, np.int32)
    nuclei[disc(shape, (40, 25), 5)] = 1
    nuclei[disc(shape, (40, 55), 5)] = 2
    body = (disc(shape, (40, 25), 14) | disc(shape, (40, 55), 14)).astype(np.float32) * 0.5 + 0.02
    cells = segment_cells(nuclei, body, SegmentationParams(nucleus_diameter=10, background_correction=False))
    assert set(np.unique(cells)) == {0, 1, 2}
    assert np.all(cells[nuclei > 0] == nuclei[nuclei > 0])
    for i in (1, 2):
        assert (cells == i).sum() > 2.5 * (nuclei == i).sum()
    cyto = cytoplasm(cells, nuclei)
    assert np.all(cyto[disc(shape, (40, 25), 3)] == 0)  # nucleus interior removed
    assert (cyto == 1).sum() == (cells == 1).sum() - ((nuclei == 1).sum() - _boundary(nuclei == 1))


def _boundary(mask: np.ndarray) -> int:
    from skimage.segmentation import find_boundaries

    return int((find_boundaries(mask, mode="inner") & mask).sum())


def test_cells_without_body_image_are_expanded_nuclei():
    nuclei = np.zeros((40, 40), np.int32)
    nuclei[disc((40, 40), (20, 20), 4)] = 1
    cells = segment_cells(nuclei, None, SegmentationParams(cell_expansion=5))
    assert (cells == 1).sum() == pytest.approx(np.pi * 9**2, rel=0.1)


def test_radial_rings_of_an_object_cut_by_the_field_border():
    # As in CellProfiler, the field's border is not an object edge: a disc cut in half along its diameter
    # by the border keeps its centre on the border, so its rings hold a full disc's shares.
    full = disc((101, 101), (50, 50), 40)
    half = full[50:]
    frac, _ = radial_fractions(np.ones(half.shape), half, n_bins=4, open_sides=(True, False, False, False))
    np.testing.assert_allclose(frac, np.array([1, 3, 5, 7]) / 16, atol=0.03)
    closed, _ = radial_fractions(np.ones(half.shape), half, n_bins=4)
    assert abs(closed[0] - frac[0]) > 0.02  # the closed-edge centre sits inside instead
