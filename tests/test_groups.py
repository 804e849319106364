"""group_means: per-label row means, dense or sparse, in sorted or requested order."""

import numpy as np
import pytest
import scipy.sparse as sp

from phenoseq.groups import group_means


def test_means_sorted_and_in_order():
    X = np.array([[1.0, 2.0], [3.0, 4.0], [10.0, 0.0]])
    labels = ["b", "b", "a"]
    names, means = group_means(X, labels)
    assert names == ["a", "b"] and np.allclose(means, [[10, 0], [2, 3]])
    names, means = group_means(sp.csr_matrix(X), labels, ["b", "a"])
    assert names == ["b", "a"] and np.allclose(means, [[2, 3], [10, 0]])


def test_unknown_group_is_an_error():
    with pytest.raises(KeyError, match="'c'"):
        group_means(np.zeros((2, 1)), ["a", "b"], ["a", "c"])
