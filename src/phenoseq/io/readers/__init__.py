"""Readers for the inputs labs have: CellProfiler/pycytominer profiles, scGeneScope .h5ad, GCT/GCTX and
expression tables. Each returns AnnData in phenoseq's standard layout; :func:`read_table` picks the reader."""

from phenoseq.io.readers.annotate import Annotation
from phenoseq.io.readers.blocklist import pycytominer_blocklist
from phenoseq.io.readers.bulk import aggregate_wells, annotate_samples, read_bulk, read_expression_table
from phenoseq.io.readers.dispatch import KINDS, detect_kind, read_table
from phenoseq.io.readers.gct import read_gct, read_gctx
from phenoseq.io.readers.hygiene import Hygiene, apply_hygiene, mad_robustize
from phenoseq.io.readers.paired_tables import read_paired_tables
from phenoseq.io.readers.profiles import profiles_to_anndata, read_cellprofiler
from phenoseq.io.readers.scgenescope import EMBEDDING_KEY, read_scgenescope, standardise_scgenescope, training_matrix

__all__ = [
    "EMBEDDING_KEY",
    "KINDS",
    "Annotation",
    "Hygiene",
    "aggregate_wells",
    "annotate_samples",
    "apply_hygiene",
    "detect_kind",
    "mad_robustize",
    "profiles_to_anndata",
    "pycytominer_blocklist",
    "read_bulk",
    "read_cellprofiler",
    "read_expression_table",
    "read_gct",
    "read_gctx",
    "read_paired_tables",
    "read_scgenescope",
    "read_table",
    "standardise_scgenescope",
    "training_matrix",
]
