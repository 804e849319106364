"""pycytominer's standard feature blocklist, written out from the rule that generates it.

pycytominer ships ``blocklist_features.txt`` (Way et al., the Cell Health / LINCS profiling recipe): Nuclei
features that are unreliable for the five standard Cell Painting channels. Nuclei Manders and RWC
correlations are dominated by the segmentation mask rather than the stain, and granularity scales 14-16
exceed the size of a nucleus, so these are mostly noise. The list has 55 names.
"""

from __future__ import annotations

from itertools import permutations

STANDARD_CHANNELS = ("AGP", "DNA", "ER", "Mito", "RNA")


def pycytominer_blocklist(channels: tuple[str, ...] = STANDARD_CHANNELS) -> list[str]:
    """Feature names of pycytominer's default blocklist, in its file order.

    Parameters
    ----------
    channels
        Channel names; the default (``AGP, DNA, ER, Mito, RNA``) gives pycytominer's list exactly. Pass
        other names (e.g. JUMP's extra brightfield channels) to extend the same rule to them.

    Returns
    -------
    ``Nuclei_Correlation_Manders_<a>_<b>`` and ``Nuclei_Correlation_RWC_<a>_<b>`` for every ordered pair of
    different channels, then ``Nuclei_Granularity_<14|15|16>_<channel>``.
    """
    ordered = sorted(channels)
    names = [f"Nuclei_Correlation_{m}_{a}_{b}" for m in ("Manders", "RWC") for a, b in permutations(ordered, 2)]
    names += [f"Nuclei_Granularity_{scale}_{c}" for scale in (14, 15, 16) for c in ordered]
    return names
