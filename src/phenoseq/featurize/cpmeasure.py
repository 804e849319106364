"""CellProfiler's own measurement code, through cp-measure (``phenoseq featurize --backend cp-measure``).

cp-measure (https://github.com/afermg/cp_measure) packages CellProfiler 4's MeasureObjectSizeShape,
MeasureObjectIntensity, MeasureTexture, MeasureObjectIntensityDistribution, MeasureGranularity and
MeasureColocalization as functions of (labels, image). This module runs them on phenoseq's segmentation
and names the results as CellProfiler does, ``{Compartment}_{Category}_{Feature}_{Channel}[_{params}]``:

* ``AreaShape_*`` (the non-advanced MeasureObjectSizeShape set, Zernike 0..9, Min/MaxFeretDiameter);
* ``Intensity_*_{ch}`` including the ``*Edge`` statistics, with CellProfiler 4's quartile convention;
* ``Texture_{F}_{ch}_{scale}_{direction}_{levels}``: 13 Haralick features × 4 directions, scale 3,
  256 grey levels (CellProfiler 4's defaults; the whole image is quantised to 8 bits, not each object);
* ``RadialDistribution_{FracAtD,MeanFrac,RadialCV}_{ch}_{k}of{n}`` (Nuclei and Cells, as the phenoseq
  backend);
* ``Granularity_{1..16}_{ch}``;
* ``Correlation_{Correlation,Manders,RWC}_{a}_{b}`` for channel pairs (Manders and RWC in both orders).

Left out: position (``AreaShape_Center_*``, ``BoundingBox{Min,Max}imum_*``, ``Location_*``), which
describes where a cell sits rather than what it looks like, and Costes colocalisation (slow, and its
threshold search depends on the image bit depth, which float fields no longer carry).

Undefined measurements (an empty ring's RadialCV, texture of an object with no pixel pairs 3 px apart)
are 0, as CellProfiler's MeasureTexture records them and as the phenoseq backend does, because downstream
loaders require finite features.
"""

from __future__ import annotations

import warnings
from itertools import combinations
from types import ModuleType

import numpy as np

from phenoseq.errors import PhenoseqError

TEXTURE_SCALE = 3
TEXTURE_LEVELS = 256
INSTALL_HINT = 'pip install "phenoseq[features]"'
# Geometry that depends on where the object lies in the field, not on its morphology.
_POSITIONAL = {
    "Center_X", "Center_Y", "Center_Z", "BoundingBoxMinimum_X", "BoundingBoxMaximum_X",
    "BoundingBoxMinimum_Y", "BoundingBoxMaximum_Y",
}  # fmt: skip


def import_cp_measure() -> ModuleType:
    """``cp_measure.bulk``, or a :class:`PhenoseqError` saying how to install it."""
    try:
        from cp_measure import bulk
    except ImportError as exc:
        raise PhenoseqError(
            f"--backend cp-measure needs the cp-measure package, which could not be imported ({exc}); "
            f"install it with: {INSTALL_HINT}  (or use --backend phenoseq)"
        ) from exc
    return bulk


def cp_measure_version() -> str:
    """The installed cp-measure version (for ``uns["featurize"]``)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("cp-measure")
    except PackageNotFoundError:
        return "unknown"


def _texture_name(compartment: str, key: str, channel: str) -> str:
    # cp-measure: "{Feature}_{scale}_{direction}_{levels}"; CellProfiler puts the image after the feature.
    feature, params = key.split("_", 1)
    return f"{compartment}_Texture_{feature}_{channel}_{params}"


def _radial_name(compartment: str, key: str, channel: str) -> str:
    # cp-measure: "RadialDistribution_{kind}_{k}of{n}" → CellProfiler: "..._{kind}_{channel}_{k}of{n}".
    category, kind, ring = key.split("_")
    return f"{compartment}_{category}_{kind}_{channel}_{ring}"


def _scatter(values, rows: np.ndarray, n_objects: int) -> np.ndarray:
    out = np.zeros(n_objects)
    if len(rows):
        out[rows] = np.nan_to_num(np.asarray(values, dtype=float), nan=0.0, posinf=0.0, neginf=0.0)
    return out


def measure_compartment_cp(
    labels: np.ndarray,
    n_objects: int,
    images: dict[str, np.ndarray],
    compartment: str,
    texture: bool = True,
    radial_bins: int | None = 4,
) -> dict[str, np.ndarray]:
    """CellProfiler's measurements of objects ``1..n_objects`` of ``labels`` over every channel in
    ``images`` (same contract as :func:`phenoseq.featurize.measure.measure_compartment`: name → array of
    length ``n_objects``, zeros for absent objects)."""
    bulk = import_cp_measure()
    # Undefined values (0/0 in empty rings, ...) are expected and zeroed in _scatter; silence their warnings.
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        return _measure(bulk, labels, n_objects, images, compartment, texture, radial_bins)


def _measure(
    bulk: ModuleType,
    labels: np.ndarray,
    n_objects: int,
    images: dict[str, np.ndarray],
    compartment: str,
    texture: bool,
    radial_bins: int | None,
) -> dict[str, np.ndarray]:
    # The measurement functions need labels 1..N: measure the objects present, scatter the results back
    # to their object numbers.
    labels = np.asarray(labels)
    counts = np.bincount(labels.ravel())
    ids = np.flatnonzero(counts)
    ids = ids[(ids > 0) & (ids <= n_objects)]
    lut = np.zeros(len(counts), np.int32)  # labels above n_objects stay 0: ignored
    lut[ids] = np.arange(1, len(ids) + 1)
    lab = lut[labels]
    rows = ids - 1
    if len(ids) == 0:
        # No object in this compartment: measure a dummy one so the feature names stay fixed; all zeros.
        lab = np.zeros(labels.shape, np.int32)
        lab[:5, :5] = 1
    core = bulk.get_core_measurements(legacy=True, sanitize=False)  # legacy: CellProfiler 4's quartiles
    out: dict[str, np.ndarray] = {}

    def put(name: str, values) -> None:
        out[name] = _scatter(values, rows, n_objects)

    shape = {
        **core["sizeshape"](lab, None, calculate_advanced=False, new_features=False),
        **core["zernike"](lab, None),
        **core["feret"](lab, None),
    }
    for key, values in shape.items():
        if key not in _POSITIONAL:
            put(f"{compartment}_AreaShape_{key}", values)

    # CellProfiler's 8-bit conversion for texture refuses floats outside 0–1 (a float TIFF may hold
    # them); clip, as the 8-bit image would saturate there anyway.
    pixels = {ch: np.clip(np.asarray(img, dtype=np.float64), 0.0, 1.0) for ch, img in images.items()}
    for ch, img in pixels.items():
        for key, values in core["intensity"](lab, img).items():
            if key.startswith("Intensity_"):  # drops Location_*: position, not morphology
                put(f"{compartment}_{key}_{ch}", values)
        if texture:
            for key, values in core["texture"](lab, img, scale=TEXTURE_SCALE, gray_levels=TEXTURE_LEVELS).items():
                put(_texture_name(compartment, key, ch), values)
        if radial_bins:
            for key, values in core["radial_distribution"](lab, img, bin_count=radial_bins).items():
                put(_radial_name(compartment, key, ch), values)
        for key, values in core["granularity"](lab, img).items():
            put(f"{compartment}_Granularity_{key.split('_', 1)[1]}_{ch}", values)

    corr = bulk.get_correlation_measurements(sanitize=False)
    for a, b in combinations(pixels, 2):
        kw = dict(pixels_1=pixels[a], pixels_2=pixels[b], masks=lab)
        put(f"{compartment}_Correlation_Correlation_{a}_{b}", corr["pearson"](**kw)["Correlation_Pearson"])
        for method, stem in (("manders_fold", "Manders"), ("rwc", "RWC")):
            res = corr[method](**kw)
            # _1 is the share of the first image's intensity: CellProfiler's "{first}_{second}".
            put(f"{compartment}_Correlation_{stem}_{a}_{b}", res[f"Correlation_{stem}_1"])
            put(f"{compartment}_Correlation_{stem}_{b}_{a}", res[f"Correlation_{stem}_2"])
    return out
