"""Nuclei and cell segmentation with scikit-image, modelled on CellProfiler's Identify modules.

* Nuclei (IdentifyPrimaryObjects): illumination correction (subtract a smoothed morphological opening,
  a rolling-ball-like background), Gaussian smoothing, a global Otsu or minimum-cross-entropy (Li)
  threshold, hole filling, then a watershed on the distance transform to split touching nuclei, seeded
  by distance peaks at least ``min_distance`` apart (half the expected nucleus diameter by default).
  Objects outside the diameter range or touching the border are discarded, as in CellProfiler.
* Cells (IdentifySecondaryObjects, "Propagation"-like): the cell-body image is thresholded on its own;
  a watershed seeded by the nuclei grows each cell over the intensity landscape within that foreground,
  never farther than ``max_cell_distance`` from its nucleus. Without a cell-body image, nuclei are
  expanded by ``cell_expansion`` pixels (CellProfiler's "Distance-N").
* Cytoplasm (IdentifyTertiaryObjects): cell minus its nucleus shrunk by one pixel, so that no cytoplasm
  is empty.

All label images are int32 (0 = background, objects 1..n); cell ``i`` grows from nucleus ``i``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import ndimage as ndi


@dataclass
class SegmentationParams:
    """Segmentation settings; sizes are in pixels. The defaults suit 10–20× Cell Painting fields with
    nuclei about 8–20 px across (CellProfiler's ExampleHuman, and the simulated fields)."""

    nucleus_diameter: float = 12.0  # expected diameter: sets peak spacing (diameter / 2) and background scale
    min_diameter: float = 8.0  # objects with a smaller equivalent diameter are debris
    max_diameter: float = 80.0  # ... and larger ones are clumps/artefacts
    smoothing_sigma: float = 1.0
    threshold_method: str = "otsu"  # "otsu" or "li" (CellProfiler's minimum cross-entropy)
    threshold_correction: float = 1.0  # multiplies the automatic nuclei threshold
    min_distance: float | None = None  # between nucleus seeds; None → nucleus_diameter / 2
    background_correction: bool = True
    exclude_border: bool = True
    cell_threshold_method: str = "li"
    cell_threshold_correction: float = 0.8  # CellProfiler's ExampleHuman uses 0.8 for the cell body
    max_cell_distance: float | None = None  # None → 3 × nucleus_diameter
    cell_expansion: float = 10.0  # used only when there is no cell-body image
    # The nuclei threshold must stand this many background noise SDs above the background, otherwise the
    # field is taken to hold no nuclei: Otsu splits even pure noise in two (ratio ≈ 1 there; real
    # nuclei fields give ≥ 40, CellProfiler's ExampleHuman 42, the simulated fields ~500).
    min_contrast: float = 5.0

    def to_dict(self) -> dict:
        return asdict(self)


def _threshold(img: np.ndarray, method: str) -> float:
    from skimage import filters

    if method == "otsu":
        return float(filters.threshold_otsu(img))
    if method == "li":
        return float(filters.threshold_li(img))
    from phenoseq.errors import PhenoseqError

    raise PhenoseqError(f"unknown threshold method {method!r}; use 'otsu' or 'li'")


def threshold_contrast(img: np.ndarray, threshold: float) -> float:
    """(threshold − background median) / background noise SD, both from the pixels below the threshold
    (noise SD from the median absolute deviation, robust to dim objects)."""
    below = img[img <= threshold]
    if below.size == 0:
        return 0.0
    med = float(np.median(below))
    noise = 1.4826 * float(np.median(np.abs(below - med)))
    return (threshold - med) / max(noise, 1e-12)


def correct_background(img: np.ndarray, diameter: float) -> np.ndarray:
    """Subtract a smooth background: the grey opening with a square ~2.5 nucleus diameters wide removes
    every nucleus, leaving the illumination/background, which is then smoothed. Shape as ``img``."""
    size = max(3, int(round(2.5 * diameter)) | 1)
    # Work at half resolution: the background is smooth, and this keeps the filter cheap on big fields.
    small = img[::2, ::2]
    bg = ndi.grey_opening(small, size=(size // 2 | 1, size // 2 | 1))
    bg = ndi.gaussian_filter(bg, sigma=size / 4)
    bg = ndi.zoom(bg, 2, order=1)[: img.shape[0], : img.shape[1]]
    if bg.shape != img.shape:  # odd sizes: pad the last row/column
        bg = np.pad(bg, [(0, img.shape[0] - bg.shape[0]), (0, img.shape[1] - bg.shape[1])], mode="edge")
    return np.clip(img - bg, 0, None).astype(np.float32)


def segment_nuclei(dna: np.ndarray, params: SegmentationParams | None = None) -> np.ndarray:
    """Label nuclei in a 2-D DNA image (float, Y × X). Returns int32 labels, Y × X, objects 1..n."""
    from skimage import feature, segmentation

    p = params or SegmentationParams()
    img = dna.astype(np.float32)
    if p.background_correction:
        img = correct_background(img, p.nucleus_diameter)
    smooth = ndi.gaussian_filter(img, p.smoothing_sigma) if p.smoothing_sigma > 0 else img
    if float(smooth.max()) <= float(smooth.min()):
        return np.zeros(dna.shape, np.int32)
    threshold = _threshold(smooth, p.threshold_method) * p.threshold_correction
    if threshold_contrast(smooth, threshold) < p.min_contrast:
        return np.zeros(dna.shape, np.int32)
    mask = smooth > threshold
    min_area = np.pi * (p.min_diameter / 2) ** 2
    # Drop specks (noise, debris) before hole filling; done with ndi so it works on every supported
    # scikit-image (remove_small_objects changed its keyword in 0.26).
    specks, _ = ndi.label(mask)
    mask &= (np.bincount(specks.ravel()) > min_area / 4)[specks]
    mask = ndi.binary_fill_holes(mask)

    # Split clumps: distance-transform peaks are nucleus centres for round nuclei. A light blur of the
    # distance map stops one elongated nucleus from yielding two plateau peaks.
    dist = ndi.gaussian_filter(ndi.distance_transform_edt(mask), 1.0)
    components, n_comp = ndi.label(mask)
    if n_comp == 0:
        return np.zeros(dna.shape, np.int32)
    min_distance = max(1, int(round(p.min_distance if p.min_distance is not None else p.nucleus_diameter / 2)))
    peaks = feature.peak_local_max(dist, min_distance=min_distance, labels=components, exclude_border=False)
    markers = np.zeros(dna.shape, np.int32)
    markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1)
    # A component without any peak (a tiny or flat blob) still deserves one seed: its deepest point.
    seeded = np.unique(components[markers > 0])
    missing = np.setdiff1d(np.arange(1, n_comp + 1), seeded)
    if len(missing):
        where = ndi.maximum_position(dist, components, missing)
        for k, (r, c) in enumerate(where):
            markers[int(r), int(c)] = len(peaks) + 1 + k
    labels = segmentation.watershed(-dist, markers, mask=mask)

    if p.exclude_border:
        labels = segmentation.clear_border(labels)
    areas = np.bincount(labels.ravel())
    max_area = np.pi * (p.max_diameter / 2) ** 2
    bad = (areas < min_area) | (areas > max_area)
    bad[0] = False
    labels[bad[labels]] = 0
    return _relabel(labels)


def _relabel(labels: np.ndarray) -> np.ndarray:
    from skimage.segmentation import relabel_sequential

    return relabel_sequential(labels)[0].astype(np.int32)


def segment_cells(
    nuclei: np.ndarray, cell_image: np.ndarray | None, params: SegmentationParams | None = None
) -> np.ndarray:
    """Grow one cell per nucleus. ``nuclei``: int32 labels (Y × X); ``cell_image``: the cell-body
    channel (Y × X) or None for a plain expansion. Returns int32 labels where cell ``i`` ⊇ nucleus ``i``."""
    from skimage import filters, segmentation

    p = params or SegmentationParams()
    if nuclei.max() == 0:
        return nuclei.copy()
    if cell_image is None:
        return segmentation.expand_labels(nuclei, distance=p.cell_expansion).astype(np.int32)

    img = cell_image.astype(np.float32)
    if p.background_correction:
        # The cell body is bigger than the nucleus: the background scale must exceed a whole cell.
        img = correct_background(img, 3 * p.nucleus_diameter)
    smooth = ndi.gaussian_filter(img, p.smoothing_sigma) if p.smoothing_sigma > 0 else img
    if float(smooth.max()) > float(smooth.min()):
        foreground = smooth > _threshold(smooth, p.cell_threshold_method) * p.cell_threshold_correction
    else:
        foreground = np.zeros(img.shape, bool)
    foreground |= nuclei > 0
    reach = p.max_cell_distance if p.max_cell_distance is not None else 3 * p.nucleus_diameter
    dist = ndi.distance_transform_edt(nuclei == 0)
    foreground &= dist <= reach
    # Propagation-like landscape: edges of the cell body (Sobel) plus a small distance term, so a cell
    # boundary falls on an intensity edge where there is one and midway between nuclei where there is not.
    edges = filters.sobel(smooth)
    scale = float(edges.max()) or 1.0
    landscape = edges / scale + 0.05 * dist / max(reach, 1.0)
    cells = segmentation.watershed(landscape, nuclei, mask=foreground)
    cells[nuclei > 0] = nuclei[nuclei > 0]
    return _fill_holes_per_label(cells).astype(np.int32)


def _fill_holes_per_label(labels: np.ndarray) -> np.ndarray:
    # A hole in a cell (a dim patch of cytoplasm) is filled with that cell when it touches only it.
    holes = ndi.binary_fill_holes(labels > 0) & (labels == 0)
    if not holes.any():
        return labels
    hole_lab, n = ndi.label(holes)
    out = labels.copy()
    for i, sl in enumerate(ndi.find_objects(hole_lab), start=1):
        # One pixel of margin so the ring around the hole lies inside the crop.
        sl = tuple(slice(max(0, s.start - 1), s.stop + 1) for s in sl)
        region = hole_lab[sl] == i
        ring = ndi.binary_dilation(region) & ~region
        owners = np.unique(labels[sl][ring])
        owners = owners[owners > 0]
        if len(owners) == 1:
            out[sl][region] = owners[0]
    return out


def cytoplasm(cells: np.ndarray, nuclei: np.ndarray) -> np.ndarray:
    """Cytoplasm labels (Y × X, int32): cell minus its nucleus shrunk by one pixel, same numbering."""
    from skimage.segmentation import find_boundaries

    inner = (nuclei > 0) & ~find_boundaries(nuclei, mode="inner")
    out = cells.copy()
    out[inner] = 0
    return out.astype(np.int32)
