"""Reading, validating and pairing the two modalities of a screen (imaging cells, RNA cells) by well."""

from phenoseq.io.files import atomic_path, read_h5ad, write_h5ad
from phenoseq.io.keys import ScreenKeys
from phenoseq.io.screen import PairedScreen

__all__ = ["PairedScreen", "ScreenKeys", "atomic_path", "read_h5ad", "write_h5ad"]
