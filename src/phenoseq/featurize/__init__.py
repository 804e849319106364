"""Raw Cell Painting images → per-cell morphology features (``phenoseq featurize``).

:mod:`~phenoseq.featurize.images` finds and loads fields, :mod:`~phenoseq.featurize.segment` finds nuclei
and cells, :mod:`~phenoseq.featurize.measure` measures them, :mod:`~phenoseq.featurize.pipeline` streams
fields into an AnnData.
"""

from phenoseq.featurize.images import Field, FieldSpec, discover_fields, load_field, parse_channels
from phenoseq.featurize.pipeline import (
    FeaturizeOptions,
    featurize_directory,
    featurize_field,
    featurize_fields,
    featurize_to_h5ad,
    read_platemap,
)
from phenoseq.featurize.segment import SegmentationParams, cytoplasm, segment_cells, segment_nuclei

__all__ = [
    "FeaturizeOptions",
    "Field",
    "FieldSpec",
    "SegmentationParams",
    "cytoplasm",
    "discover_fields",
    "featurize_directory",
    "featurize_field",
    "featurize_fields",
    "featurize_to_h5ad",
    "load_field",
    "parse_channels",
    "read_platemap",
    "segment_cells",
    "segment_nuclei",
]
