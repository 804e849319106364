"""Per-object measurements of the ``phenoseq`` backend (numpy/scipy/scikit-image only), named
``{Compartment}_{Category}_{Feature}[_{Channel}...]``.

Which follow CellProfiler 4's definitions — checked against cp-measure (CellProfiler's own code, the
``cp-measure`` backend) on the same ExampleHuman objects by ``benchmarks/bench_featurize_examplehuman.py``
— and so carry CellProfiler's names:

* ``AreaShape`` — Area, Perimeter, FormFactor (4πA/P²), Eccentricity, Solidity, Extent, MajorAxisLength,
  MinorAxisLength, EquivalentDiameter, Orientation (degrees), EulerNumber: identical values.
* ``Intensity`` per channel — IntegratedIntensity, MeanIntensity, StdIntensity, MinIntensity,
  MaxIntensity, MassDisplacement (pixels between the shape centroid and the intensity-weighted centroid):
  identical. MedianIntensity, LowerQuartileIntensity, UpperQuartileIntensity, MADIntensity: same
  statistics, but quantiles interpolate at rank (n − 1)·q (numpy's convention) where CellProfiler 4 uses
  n·q, so values differ by under one pixel rank (Pearson r ≥ 0.99).
* ``RadialDistribution`` per channel — ``FracAtD_{ch}_{k}of{n}``, the fraction of the object's intensity
  in ring ``k`` of ``n``, and ``MeanFrac`` (that fraction over the ring's share of pixels; 1 everywhere
  for a uniform object), with CellProfiler's rings (see :func:`radial_fractions`): identical.
  CellProfiler's RadialCV is not computed.

Which do not, and so carry a name of their own:

* ``TexturePhenoseq`` per channel — AngularSecondMoment, Contrast, Correlation, Variance,
  InverseDifferenceMoment, Entropy of a grey-level co-occurrence matrix at distance ``texture_scale``,
  averaged over 0°, 45°, 90°, 135°. Unlike CellProfiler's ``Texture`` (MeasureTexture), intensities are
  quantised to ``texture_levels`` (8) levels between *each object's own* minimum and maximum (CellProfiler:
  the whole image to 8 bits, 256 levels, so contrast and variance keep the image's intensity scale),
  diagonal pairs are (2, 2) px apart at scale 3 (CellProfiler: (3, 3)), and directions are averaged rather
  than reported one by one. On ExampleHuman nuclei the two agree poorly (angular second moment r ≈ −0.06,
  contrast r ≈ 0.76 at 1/40 of the scale), so these are a contrast-invariant texture of their own, not
  CellProfiler's. Use ``--backend cp-measure`` for CellProfiler's.

Every function takes an int32 label image (Y × X, objects ``1..n_objects``) and returns a dict of
feature name → float array of length ``n_objects`` (row ``i`` is object ``i + 1``).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

SHAPE_FEATURES = (
    "Area", "Perimeter", "FormFactor", "Eccentricity", "Solidity", "Extent",
    "MajorAxisLength", "MinorAxisLength", "EquivalentDiameter", "Orientation", "EulerNumber",
)  # fmt: skip
TEXTURE_FEATURES = (
    "AngularSecondMoment", "Contrast", "Correlation", "Variance", "InverseDifferenceMoment", "Entropy",
)  # fmt: skip
# Not CellProfiler's "Texture": the quantisation and grey levels differ (see the module docstring), so the
# values do not agree with CellProfiler's and must not carry its name.
TEXTURE_CATEGORY = "TexturePhenoseq"
_ANGLES = (0.0, np.pi / 4, np.pi / 2, 3 * np.pi / 4)


def measure_shape(labels: np.ndarray, n_objects: int, compartment: str) -> dict[str, np.ndarray]:
    """AreaShape features of objects ``1..n_objects`` (absent objects get zeros)."""
    from skimage.measure import regionprops_table

    props = regionprops_table(
        labels,
        properties=(
            "label", "area", "perimeter", "eccentricity", "solidity", "extent", "axis_major_length",
            "axis_minor_length", "equivalent_diameter_area", "orientation", "euler_number",
        ),
    )  # fmt: skip
    rows = props["label"] - 1
    out = {f"{compartment}_AreaShape_{f}": np.zeros(n_objects) for f in SHAPE_FEATURES}

    def put(name: str, values: np.ndarray) -> None:
        out[f"{compartment}_AreaShape_{name}"][rows] = values

    area, perim = props["area"].astype(float), props["perimeter"].astype(float)
    put("Area", area)
    put("Perimeter", perim)
    put("FormFactor", np.divide(4 * np.pi * area, perim**2, out=np.zeros_like(area), where=perim > 0))
    put("Eccentricity", props["eccentricity"])
    put("Solidity", props["solidity"])
    put("Extent", props["extent"])
    put("MajorAxisLength", props["axis_major_length"])
    put("MinorAxisLength", props["axis_minor_length"])
    put("EquivalentDiameter", props["equivalent_diameter_area"])
    put("Orientation", np.degrees(props["orientation"]))
    put("EulerNumber", props["euler_number"])
    return out


def centroids(labels: np.ndarray, n_objects: int) -> np.ndarray:
    """(n_objects, 2) array of (x, y) centres in pixels; NaN for absent objects."""
    yy, xx = np.indices(labels.shape)
    flat = labels.ravel()
    count = np.bincount(flat, minlength=n_objects + 1)[1 : n_objects + 1].astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        cx = np.bincount(flat, xx.ravel(), minlength=n_objects + 1)[1 : n_objects + 1] / count
        cy = np.bincount(flat, yy.ravel(), minlength=n_objects + 1)[1 : n_objects + 1] / count
    return np.stack([cx, cy], axis=1)


def _sorted_quantile(sorted_vals: np.ndarray, starts: np.ndarray, counts: np.ndarray, q: float) -> np.ndarray:
    n = np.maximum(counts, 1).astype(np.int64)
    pos = starts + (n - 1) * q
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, starts + n - 1)
    frac = pos - lo
    return sorted_vals[lo] * (1 - frac) + sorted_vals[hi] * frac


def measure_intensity(
    labels: np.ndarray, n_objects: int, image: np.ndarray, compartment: str, channel: str
) -> dict[str, np.ndarray]:
    """Intensity statistics of ``image`` (Y × X) over each object."""
    sel = labels > 0
    lab = labels[sel].astype(np.int64) - 1
    vals = image[sel].astype(np.float64)
    yy, xx = np.nonzero(sel)
    counts = np.bincount(lab, minlength=n_objects).astype(float)
    safe = np.maximum(counts, 1)
    total = np.bincount(lab, vals, minlength=n_objects)
    mean = total / safe
    var = np.bincount(lab, vals**2, minlength=n_objects) / safe - mean**2
    std = np.sqrt(np.clip(var, 0, None))

    order = np.lexsort((vals, lab))
    sv = vals[order]
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(int)
    present = counts > 0
    if not present.all():  # absent objects would index the neighbouring run; point them at element 0
        starts = np.where(present, starts, 0)
    vmin, vmax = sv[starts], sv[np.where(present, starts + counts.astype(int) - 1, 0)]
    median = _sorted_quantile(sv, starts, counts, 0.5)
    lower = _sorted_quantile(sv, starts, counts, 0.25)
    upper = _sorted_quantile(sv, starts, counts, 0.75)
    dev = np.abs(vals - median[lab])
    sd = dev[np.lexsort((dev, lab))]
    mad = _sorted_quantile(sd, starts, counts, 0.5)

    cx = np.bincount(lab, xx, minlength=n_objects) / safe
    cy = np.bincount(lab, yy, minlength=n_objects) / safe
    with np.errstate(invalid="ignore", divide="ignore"):
        wx = np.bincount(lab, xx * vals, minlength=n_objects) / total
        wy = np.bincount(lab, yy * vals, minlength=n_objects) / total
    mass = np.nan_to_num(np.hypot(wx - cx, wy - cy))

    stats = {
        "IntegratedIntensity": total, "MeanIntensity": mean, "StdIntensity": std, "MinIntensity": vmin,
        "MaxIntensity": vmax, "MedianIntensity": median, "LowerQuartileIntensity": lower,
        "UpperQuartileIntensity": upper, "MADIntensity": mad, "MassDisplacement": mass,
    }  # fmt: skip
    return {f"{compartment}_Intensity_{k}_{channel}": np.where(present, v, 0.0) for k, v in stats.items()}


def haralick(values: np.ndarray, mask: np.ndarray, levels: int = 8, distance: int = 3) -> np.ndarray:
    """The :data:`TEXTURE_FEATURES` of one object (crop ``values`` with boolean ``mask``), averaged over
    four angles. Returns a length-6 array; zeros when the object has no pixel pairs at ``distance``."""
    from skimage.feature import graycomatrix

    v = values[mask]
    lo, hi = float(v.min()), float(v.max())
    q = np.zeros(values.shape, np.uint8)
    if hi > lo:
        # Level 0 is reserved for "outside the object" and dropped from the matrix below.
        q[mask] = 1 + np.minimum((values[mask] - lo) / (hi - lo) * levels, levels - 1).astype(np.uint8)
    else:
        q[mask] = 1
    glcm = graycomatrix(q, [distance], _ANGLES, levels=levels + 1, symmetric=True)[1:, 1:, 0, :].astype(float)
    feats = []
    i, j = np.meshgrid(np.arange(levels), np.arange(levels), indexing="ij")
    for a in range(glcm.shape[-1]):
        p = glcm[:, :, a]
        s = p.sum()
        if s == 0:
            continue
        p = p / s
        mu_i, mu_j = (i * p).sum(), (j * p).sum()
        var_i, var_j = (((i - mu_i) ** 2) * p).sum(), (((j - mu_j) ** 2) * p).sum()
        corr = ((i - mu_i) * (j - mu_j) * p).sum() / np.sqrt(var_i * var_j) if var_i * var_j > 0 else 0.0
        nz = p[p > 0]
        feats.append(
            [
                (p**2).sum(),
                (((i - j) ** 2) * p).sum(),
                corr,
                var_i,
                (p / (1 + (i - j) ** 2)).sum(),
                -(nz * np.log2(nz)).sum(),
            ]
        )
    return np.mean(feats, axis=0) if feats else np.zeros(len(TEXTURE_FEATURES))


def radial_fractions(
    values: np.ndarray, mask: np.ndarray, n_bins: int = 4, open_sides: tuple[bool, bool, bool, bool] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(FracAtD, MeanFrac), each length ``n_bins`` from centre to edge, for one object crop.

    As CellProfiler's MeasureObjectIntensityDistribution (scaled bins): normalised radius of a pixel =
    d_centre / (d_centre + d_edge + 0.001), with d_edge its Euclidean distance to the nearest pixel outside
    the object, the centre the pixel farthest from the edge (first in C order on ties) and d_centre the
    8-connected path length to it inside the object (steps of 1 and √2, CellProfiler's ``propagate``).
    Pixels the centre cannot reach (another fragment of the object) are left out, as there.
    ``open_sides`` (top, bottom, left, right): crop sides on the field's border, which, as in CellProfiler,
    are not an edge (an object cut by the border keeps its centre there)."""
    from skimage.graph import MCP_Geometric

    pads = [0 if side else 1 for side in (open_sides or (False,) * 4)]
    padded = np.pad(mask, ((pads[0], pads[1]), (pads[2], pads[3])))
    if padded.all():  # no pixel outside the object at all: measure to the crop's sides instead
        padded, pads = np.pad(mask, 1), [1] * 4
    d_edge = ndi.distance_transform_edt(padded)[pads[0] : padded.shape[0] - pads[1], pads[2] : padded.shape[1] - pads[3]]
    cy, cx = np.unravel_index(np.argmax(d_edge), d_edge.shape)
    d_centre, _ = MCP_Geometric(np.where(mask, 1.0, np.inf)).find_costs([(cy, cx)])
    reach = mask & np.isfinite(d_centre)
    yy, xx = np.nonzero(reach)
    d_c = d_centre[yy, xx]
    r = d_c / (d_c + d_edge[yy, xx] + 0.001)
    bins = np.minimum((r * n_bins).astype(int), n_bins - 1)
    v = values[yy, xx].astype(float)
    inten = np.bincount(bins, v, minlength=n_bins)
    pix = np.bincount(bins, minlength=n_bins).astype(float)
    total = inten.sum()
    frac = inten / total if total > 0 else np.zeros(n_bins)
    share = pix / pix.sum()
    mean_frac = np.divide(frac, share, out=np.zeros(n_bins), where=share > 0)
    return frac, mean_frac


def measure_texture_radial(
    labels: np.ndarray,
    n_objects: int,
    images: dict[str, np.ndarray],
    compartment: str,
    texture_levels: int = 8,
    texture_scale: int = 3,
    radial_bins: int | None = 4,
    texture: bool = True,
) -> dict[str, np.ndarray]:
    """Texture (when ``texture``) and radial distribution (when ``radial_bins``) features for every
    channel in ``images``; both need a per-object crop, so they share one pass over the objects."""
    out: dict[str, np.ndarray] = {}
    for ch in images:
        if texture:
            for f in TEXTURE_FEATURES:
                out[f"{compartment}_{TEXTURE_CATEGORY}_{f}_{ch}_{texture_scale}"] = np.zeros(n_objects)
        if radial_bins:
            for kind in ("FracAtD", "MeanFrac"):
                for k in range(radial_bins):
                    out[f"{compartment}_RadialDistribution_{kind}_{ch}_{k + 1}of{radial_bins}"] = np.zeros(n_objects)
    height, width = labels.shape
    for idx, sl in enumerate(ndi.find_objects(labels, max_label=n_objects)):
        if sl is None:
            continue
        mask = labels[sl] == idx + 1
        open_sides = (sl[0].start == 0, sl[0].stop == height, sl[1].start == 0, sl[1].stop == width)
        for ch, img in images.items():
            crop = img[sl]
            if texture:
                tex = haralick(crop, mask, texture_levels, texture_scale)
                for f, val in zip(TEXTURE_FEATURES, tex):
                    out[f"{compartment}_{TEXTURE_CATEGORY}_{f}_{ch}_{texture_scale}"][idx] = val
            if radial_bins:
                frac, mean_frac = radial_fractions(crop, mask, radial_bins, open_sides)
                for k in range(radial_bins):
                    out[f"{compartment}_RadialDistribution_FracAtD_{ch}_{k + 1}of{radial_bins}"][idx] = frac[k]
                    out[f"{compartment}_RadialDistribution_MeanFrac_{ch}_{k + 1}of{radial_bins}"][idx] = mean_frac[k]
    return out


def measure_compartment(
    labels: np.ndarray,
    n_objects: int,
    images: dict[str, np.ndarray],
    compartment: str,
    texture: bool = True,
    radial_bins: int | None = 4,
) -> dict[str, np.ndarray]:
    """All features of one compartment (``Nuclei``, ``Cells``, ``Cytoplasm``) over every channel.

    ``images``: channel name → 2-D float image (Y × X, same shape as ``labels``). Returns name → array of
    length ``n_objects``, in a fixed order (shape, then per-channel intensity, texture, radial)."""
    out = measure_shape(labels, n_objects, compartment)
    for ch, img in images.items():
        out.update(measure_intensity(labels, n_objects, img, compartment, ch))
    if texture or radial_bins:
        out.update(
            measure_texture_radial(labels, n_objects, images, compartment, radial_bins=radial_bins, texture=texture)
        )
    return out
