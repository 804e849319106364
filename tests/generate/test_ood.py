import numpy as np
import pytest

from phenoseq.generate.ood import OODScorer
from phenoseq.model.data import WellImaging


def _wells(rng, centres, cells=40):
    samples = np.repeat([f"w{i:02d}" for i in range(len(centres))], cells)
    features = (np.repeat(centres, cells, axis=0) + 0.1 * rng.normal(size=(len(samples), centres.shape[1])))
    return features.astype(np.float32), samples


def test_leave_group_out_scores_of_new_wells_match_the_training_wells_they_copy():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(12, 6)) * 3
    features, samples = _wells(rng, centres)
    groups = np.repeat([f"t{i}" for i in range(6)], 2)  # two wells per treatment
    scorer = OODScorer.fit(features, samples, n_components=6)
    own = scorer.leave_group_out_scores(groups)
    # The same cells presented as new wells of the same treatments score as their training wells do ...
    again = scorer.leave_group_out_scores(groups, WellImaging(features, samples), groups)
    assert np.allclose(again, own, rtol=1e-4)
    # ... and higher than against all training wells, where each well finds itself.
    assert (own > scorer.score(WellImaging(features, samples))).all()
    # Other wells need one group each.
    with pytest.raises(ValueError, match="need as many imaging_groups"):
        scorer.leave_group_out_scores(groups, WellImaging(features, samples), groups[:3])
