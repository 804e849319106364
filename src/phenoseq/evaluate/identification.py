"""Treatment identification: a standardised logistic regression trained on training-split profiles.

Predictions are kept per test well (counts of each predicted treatment), which is all that balanced
accuracy, confusion matrices and the well bootstrap need.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from phenoseq.evaluate.profiles import CellTable


@dataclass
class WellPredictions:
    """Predictions on the profiles of a set of test wells.

    Attributes
    ----------
    wells
        ``(n_wells,)`` sorted sample ids.
    true
        ``(n_wells,)`` index of each well's treatment in the class list.
    counts
        ``(n_wells, n_classes)`` number of the well's profiles predicted as each treatment.
    """

    wells: list[str]
    true: np.ndarray
    counts: np.ndarray

    @property
    def n_classes(self) -> int:
        return int(self.counts.shape[1])

    def balanced_accuracy(self, weights: np.ndarray | None = None) -> np.ndarray:
        """Mean over treatments of the fraction of their profiles predicted correctly.

        ``weights``: ``(n_boot, n_wells)`` multiplicity of each well (a bootstrap draw); ``None`` = each
        well once. Returns ``(n_boot,)`` (or a 0-d array). Treatments absent from a draw are left out of
        the mean, as in scikit-learn's ``balanced_accuracy_score``.
        """
        w = np.ones((1, len(self.wells))) if weights is None else np.atleast_2d(weights)
        onehot = np.eye(self.n_classes)[self.true]
        correct = w @ (onehot * self.counts[np.arange(len(self.wells)), self.true][:, None])
        total = w @ (onehot * self.counts.sum(axis=1)[:, None])
        with np.errstate(invalid="ignore", divide="ignore"):
            recall = np.where(total > 0, correct / np.where(total > 0, total, 1), np.nan)
        out = np.nanmean(recall, axis=1)
        return out if weights is not None else out[0]

    def confusion(self) -> np.ndarray:
        """``(n_classes, n_classes)`` counts: rows = true treatment, columns = predicted."""
        conf = np.zeros((self.n_classes, self.n_classes), dtype=np.int64)
        np.add.at(conf, self.true, self.counts)
        return conf

    @property
    def n_profiles(self) -> int:
        return int(self.counts.sum())


def fit_classifier(train: CellTable, treatment_of: dict[str, int], seed: int = 0, max_iter: int = 250):
    """Standardise features, then multinomial logistic regression on the treatment of each row's well."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    y = np.array([treatment_of[w] for w in train.wells])
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=max_iter, random_state=seed))
    # These matrices are small (thousands × hundreds): multi-threaded BLAS only adds synchronisation, and on
    # a busy machine it runs several times slower than one thread.
    with warnings.catch_warnings(), threadpool_limits(limits=1, user_api="blas"):
        # A capped iteration count is a deliberate speed/accuracy trade-off, documented in BenchmarkConfig.
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(train.X, y)
    return clf


def predict_wells(clf, test: CellTable, treatment_of: dict[str, int], n_classes: int) -> WellPredictions:
    """Predict every profile of ``test`` and tally the predictions per well."""
    pred = clf.predict(test.X)
    wells = sorted(set(test.wells.tolist()))
    codes = np.searchsorted(wells, test.wells)
    counts = np.zeros((len(wells), n_classes), dtype=np.int64)
    np.add.at(counts, (codes, pred), 1)
    true = np.array([treatment_of[w] for w in wells])
    return WellPredictions(wells=wells, true=true, counts=counts)
