"""Row means per group label: the well means that pairing, baselines, evaluation and aggregation all use."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def group_means(X, labels, order: list[str] | None = None) -> tuple[list[str], np.ndarray]:
    """Mean row of ``X`` (``(n, d)``, dense or sparse) for each distinct label of ``labels`` (``(n,)``).

    Returns ``(groups, (n_groups, d) float64 means)``: groups sorted, or exactly ``order`` when given (every
    entry of ``order`` must occur in ``labels``).
    """
    labels = np.asarray(labels).astype(str)
    names, codes = np.unique(labels, return_inverse=True)
    onehot = sp.csr_matrix((np.ones(len(labels)), (codes, np.arange(len(labels)))), shape=(len(names), len(labels)))
    sums = onehot @ (X if sp.issparse(X) else np.asarray(X, dtype=np.float64))
    sums = np.asarray(sums.toarray() if sp.issparse(sums) else sums, dtype=np.float64)
    means = sums / np.bincount(codes, minlength=len(names))[:, None]
    if order is None:
        return names.tolist(), means
    missing = sorted(set(order) - set(names.tolist()))
    if missing:
        raise KeyError(f"no rows for groups {missing[:5]}")
    return list(order), means[np.searchsorted(names, order)]
