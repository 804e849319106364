"""Agreement with CellProfiler on its ExampleHuman field (skipped when ../shared/data/real is absent).

Measured with the default settings (benchmarks/bench_featurize_examplehuman.py): 281 cells vs
CellProfiler's 289, 94% of CellProfiler's nuclei matched within 4 px, nucleus-area Pearson 0.935, mean DNA
intensity Pearson 0.98. Our nuclei are ~23% smaller (Otsu threshold vs CellProfiler's minimum
cross-entropy), which a correlation does not penalise. The thresholds below sit ~0.05–0.1 under the
measured values: room for scikit-image version drift, far above what a broken segmentation gives
(unmatched or shuffled objects correlate near 0).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats
from scipy.spatial import cKDTree

CP_COUNT = 289


def test_examplehuman_matches_cellprofiler(real_data):
    from phenoseq.featurize import featurize_directory

    images = real_data / "cellprofiler_examples" / "ExampleHuman"
    cp = pd.read_csv(real_data / "cytotable" / "ExampleHuman_cellprofiler_output" / "Nuclei.csv")
    assert len(cp) == CP_COUNT
    adata = featurize_directory(
        images, pattern="{plate}_{well}f{site}d{channel}.tif", channels={"DNA": "0", "PH3": "1", "cellbody": "2"}
    )
    assert abs(adata.n_obs - CP_COUNT) <= 0.15 * CP_COUNT
    assert set(adata.obs["Metadata_Well"]) == {"D03"}

    ours = adata.obs[["Nuclei_Location_Center_X", "Nuclei_Location_Center_Y"]].to_numpy(float)
    theirs = cp[["Location_Center_X", "Location_Center_Y"]].to_numpy(float)
    d, j = cKDTree(theirs).query(ours)
    _, back = cKDTree(ours).query(theirs)
    i = np.arange(len(ours))
    keep = (d <= 4) & (back[j] == i)  # mutual nearest neighbours within 4 px
    i, j = i[keep], j[keep]
    assert len(j) / CP_COUNT > 0.85

    area = stats.pearsonr(adata.obs_vector("Nuclei_AreaShape_Area")[i], cp["AreaShape_Area"].to_numpy()[j])[0]
    assert area > 0.85
    dna = stats.pearsonr(
        adata.obs_vector("Nuclei_Intensity_MeanIntensity_DNA")[i], cp["Intensity_MeanIntensity_DNA"].to_numpy()[j]
    )[0]
    assert dna > 0.9
