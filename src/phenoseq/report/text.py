"""The report's explanations, written for a biologist: what each method is and how to read each section.

Strings are HTML fragments (trusted constants); ``{…}`` fields are filled by :mod:`phenoseq.report.html`.
"""

from __future__ import annotations

METHOD_TEXT = {
    "phenoseq": "the diffusion model: generates the RNA cells of a well from a set of that well's Cell Painting "
                "images alone.",
    "training_mean": "baseline: the average training well, whatever the imaging (cells are training cells' "
                     "within-well spread around that average). It predicts no change for any well: the <i>b</i> "
                     "of the scaled scores.",
    "control": "baseline: the average of the training control wells (e.g. DMSO), whatever the imaging: an "
               "untreated well.",
    "ridge": "baseline: ridge regression from a well's mean morphology to its mean RNA profile, cells drawn "
             "around the prediction with the typical within-well spread.",
    "nearest_well": "baseline: the real RNA cells of the training well whose mean morphology is most similar, "
                    "resampled. It can only return treatments and cells it has seen.",
}
METHOD_TEXT["phenoseq-diffusion"] = METHOD_TEXT["phenoseq"]
SHUFFLED_TEXT = ("negative control: <b>{inner}</b> fed the imaging of another well. It should score at or below "
                 "the training mean (scaled scores ≤ 0); if not, {inner}'s scores come from something other than "
                 "the imaging.")
OTHER_TEXT = "generator (model: {model})."
REPLICATE_TEXT = ("reference, not a method: each well is predicted by the measured RNA of another well of the "
                  "same treatment (a biological replicate). What a real measurement achieves: the <i>r</i> of "
                  "the scaled scores.")

PROTOCOL_TEXT = {
    "seen": "RNA generated for held-out wells of treatments seen in training, from their imaging alone.",
    "unseen": "RNA generated for compounds <b>never seen in training</b>: the non-control compounds were split "
              "into {n_folds} folds; for each fold, every well of its compounds (all replicates, both modalities) "
              "was held out, the methods were fitted on the rest (controls always stay), and they generated for "
              "the held-out wells from their imaging alone. Each compound is scored once.{training}",
}
UNSEEN_TRAINING_TEXT = {True: " The other compounds' test wells were training wells too.",
                        False: " Only the training split's wells trained the methods (validation wells chose when to "
                               "stop and calibrated)."}
MODE_TEXT = {
    "single-cell": "Single-cell mode: methods generate RNA cells, compared with the measured RNA cells of each well.",
    "bulk": "Bulk mode: one expression profile per well, predicted from the well's morphology. Treatment "
            "identification and cell-level fidelity need single cells and are not computed.",
}
SPLITS_TEXT = ("WE (within experiment) wells come from the same experimental round as the training wells; HE "
               "(held-out experiment) wells from another round, a harder test of generalisation.")

WELLS_TEXT = (
    "For each held-out well a method predicts the well's average transcriptome from its imaging alone; it is "
    "compared with the well's measured average. <b>r</b>: correlation across genes between the predicted and the "
    "measured <i>change from the training mean</i> (the average training well), median over wells: what is "
    "specific to the well. Predicting the average well gives no change and scores 0. <b>r vs control</b>: the "
    "same with changes from the training control wells. <b>Rank</b>: the held-out wells of one replicate are "
    "ranked by how well their measured change matches the predicted one; mean rank of the true well (1 = always "
    "first; chance = the middle rank) and <b>top-1</b>, the fraction of wells ranked first. <b>Energy ratio</b> "
    "(single cells): distance between the synthetic and real cells of a well, spread included, over that between "
    "a real replicate well and the well (1 = as close as a replicate). <b>MoA top-1</b>: fraction of wells whose "
    "predicted change best matches a training compound with the same mechanism of action (its own compound "
    "excluded)."
)
SCALED_TEXT = (
    "<b>Scaled scores</b> s = (u − b) / (r − b) place a method's figure u between b, the training-mean baseline "
    "(s = 0: no better than predicting the average well everywhere), and r, the real replicate (s = 1: as good as "
    "measuring a replicate well); below 0 is worse than the average well. n/a: no replicate wells to set r (e.g. "
    "one well per compound), or the replicate does not beat the baseline on that figure. The shuffled controls "
    "should sit at or below 0."
)
SCALED_FIGURE_TEXT = ("Scaled scores of every method (the training mean, 0 by definition, is left out). Solid "
                      "line: the training mean; dashed line: a real replicate. The axis stops at −1.5 and 2; the "
                      "tables give exact values.")
NO_SCALED_TEXT = ("Scaled-score figure not drawn: no split has replicate wells (a second well of the same "
                  "treatment), so there is no real-replicate reference to scale to.")

IDENT_TEXT = (
    "Can treatments be told apart better when synthetic transcriptomes are added to morphology? A logistic "
    "regression is trained on the training wells and tested on the held-out wells; <b>balanced accuracy</b> is "
    "the average over treatments of the fraction of a treatment's profiles assigned to it (chance = {chance:.3f}). "
    "No RNA of a held-out well trains the classifier or the generator. <b>Gap recovered</b> = (with synthetic − "
    "floor) / (with measured RNA − floor): 0 means the synthetic transcriptomes add nothing to morphology, 1 that "
    "they add as much as measured ones. 95% CIs from resampling held-out wells ({n_boot} draws). The last column "
    "is the accuracy each adds (synthetic / measured): when measured RNA adds little, the ratio is noisy."
)
GAP_TEXT = {
    "matched": ("Headline: matched context ({n} cells a profile)",
                "Each profile is the mean of {n} random imaging cells of a well; the synthetic part is generated "
                "from those {n} cells' images only, the measured part is the mean of {n} real RNA cells of the "
                "well. Morphology and RNA see the same amount of the well: the fair comparison."),
    "vs_pooled": ("Single cells against matched morphology",
                  "Each synthetic cell is generated from {pooled} imaging cells of its well, so it carries the "
                  "well's average morphology. Here the floor already has it: one imaging cell joined with the mean "
                  "morphology of {pooled} cells of its well (imaging+pooled). The gap credits only what the "
                  "synthetic RNA adds beyond the morphology it was made from."),
    "vs_imaging": ("Paper-style gap (paper-style, inflated by pooled morphology; for comparison with published "
                   "numbers only)",
                   "The floor is one imaging cell alone, as in published benchmarks. Each synthetic cell carries "
                   "its well's pooled morphology, so this gap rises even for a generator that adds nothing but that "
                   "average: compare the training-mean and shuffled rows. Do not read it as the value of the RNA."),
}
CAVEAT = (
    "<b>Read gap recovered together with fidelity.</b> A generator that emits one idealised prototype per "
    "treatment can make treatments <i>easier</i> to tell apart than real, noisy cells, giving gap recovered near "
    "or above 1 while its cells look nothing like real cells. Gap recovered above 1 with a large energy ratio or "
    "poor localisation means collapsed prototypes, not better-than-real biology. Likewise, the nearest-well "
    "baseline returns real training cells, so it can score well wherever a test well's morphology points to the "
    "right training well. Finally, imaging+synthetic and synthetic_rna train the classifier on synthetic cells, "
    "so a generator that consistently gives a treatment the cells of another one still scores well there; "
    "real_to_synthetic and localisation, which compare with real cells, catch it."
)
NO_IDENT_TEXT = {
    "unseen": "Treatment identification is not run for unseen compounds: a classifier cannot name a treatment it "
              "never saw in training. The well-level figures above are the benchmark.",
}

MODALITY_TEXT = {
    "imaging": "Cell Painting morphology (one imaging cell, or the mean of a set).",
    "imaging+pooled": "the imaging cell joined with the mean morphology of a random set of cells of its well: the "
                      "matched-morphology control.",
    "real_rna": "measured transcriptomes only (in the model's RNA space).",
    "imaging+real": "imaging joined with measured RNA of the same well: the ceiling, what a paired measurement gives.",
    "imaging+pooled+real / +synthetic": "imaging+pooled joined with measured or synthetic RNA of the well.",
    "synthetic_rna": "classifier trained and tested on synthetic cells.",
    "real_to_synthetic": "classifier trained on measured RNA, tested on synthetic cells: do synthetic cells look "
                         "like real cells of the right treatment?",
    "imaging+synthetic": "imaging joined with synthetic RNA generated for the well from imaging alone.",
}
ACCURACY_FIGURE_TEXT = (
    "Grey bars use real data only; coloured bars each method's synthetic cells. Left: single cells; right: "
    "matched-context means of {n} cells (methods with matched-context sets only). Whiskers: 95% CI over held-out "
    "wells. Dotted line: chance. Modalities ending in +synthetic pair with the grey bar of the same name ending "
    "in +real."
)
GAP_FIGURE_TEXT = ("Gap recovered for the three comparisons above. Dashed line: as good as measured RNA. n/a: the "
                   "ceiling did not beat the floor (the ratio is undefined) or the method has no such profiles. "
                   "The axis stops at −1.5 and 2; the tables give exact values.")
CONFUSION_TEXT = ("Rows: true treatment; columns: predicted treatment; colour: fraction of the treatment's profiles. "
                  "A bright diagonal means treatments are told apart; off-diagonal blocks are treatments confused "
                  "with each other, often compounds sharing a mechanism of action.")
EMBEDDING_TEXT = ("Principal components of the RNA latent, fitted on real cells (PC 1 and 2 explain {ev0:.0%} and "
                  "{ev1:.0%} of their variance); each point is a cell, coloured by treatment. Good synthetic cells "
                  "cover the same regions with the same spread as the real cells of their treatment; tight clumps "
                  "mean too little cell-to-cell variation.")
FIDELITY_TEXT = (
    "<b>Localisation</b>: fraction of treatments whose average synthetic cell is closest to the average real cell "
    "of the same treatment (1 = every treatment lands in the right place). <b>Energy ratio</b>: as in the "
    "well-level table, median and interquartile range over wells; around 1 the synthetic cells are as close to the "
    "well as a biological replicate, much above 1 they differ more than replicates do. HE wells come from another "
    "round than their replicate well, so their floor includes the batch effect. <b>Gene correlation</b>: for each "
    "gene, the correlation across held-out wells between the synthetic and real well-average expression; median "
    "over genes."
)
EMBEDDING_SOURCE_TEXT = ("The same map coloured by source: each panel draws one method's synthetic cells over the "
                         "real cells (grey). Coloured points where no grey ones are: cells unlike any real cell; "
                         "grey regions left bare: real states the method never makes.")
MISSING_ARRAYS = "{what} not drawn: arrays.npz was not found."
MISSING_FIGURE_DATA = ("{what} not drawn: this result does not keep {data} (results saved by an older phenoseq, "
                       "or the unseen-compound protocol, which keeps no arrays); re-run the evaluation to see it.")

CHANGES_TEXT = (
    "Each point is one gene of one held-out well ({split}): its measured change from the training mean (x) "
    "against the method's predicted change (y), for {n_wells} wells spread over the treatments and the "
    "{n_features} {unit} whose measured change varies most across them. On the dashed diagonal the prediction "
    "is exact. A cloud flat along y = 0 predicts no change (what the training mean does by construction, so it "
    "is left out); one along the diagonal but flatter has the right direction and too small an amplitude; a "
    "cloud along y = 0 for one colour only means the method misses those treatments. r in each panel: over "
    "the points shown; the table's r is the median over wells, each over all genes."
)
TREATMENT_FIDELITY_TEXT = (
    "One point per treatment: the median over its held-out wells ({split}) of r, as in the well-level table. "
    "{x_axis} Grey dashes: the real replicate of the same treatment, what a measurement achieves. A method "
    "that reads transcriptomes from images can only predict what the images show: expect points near the "
    "grey dashes for treatments that change morphology and near 0 for those that do not, whatever the "
    "method. {colours}"
)
TREATMENT_X_TEXT = ("x: how much the treatment changes morphology, the distance of its wells' mean Cell Painting "
                    "profile from that of the control wells (1, dotted: no more than a control well; imaging "
                    "only, which every method is given).")
TREATMENT_X_ORDER = "x: treatments in order of the method's r (the result has no control wells to measure from)."
TREATMENT_COLOUR_TEXT = ("Blue: treatments the data mark as changing morphology; orange: morphologically silent "
                         "ones (active on transcription only); black: the control.")
NO_TREATMENT_COLOUR_TEXT = ("The data do not mark which treatments change morphology (an obs column "
                            "<code>morphology_visible</code> would), so points take the method's colour.")
HISTORY_TEXT = (
    "Loss per epoch of the methods trained by epochs (the diffusion model's denoising loss). Training loss: "
    "on the training wells; validation loss: on the validation wells, whose RNA no held-out well shares. "
    "Dotted: the epoch of lowest validation loss, whose weights the model keeps. Validation loss rising while "
    "training loss falls means overfitting; both flat means more epochs would add nothing.{fold}"
)
HISTORY_FOLD_TEXT = " Unseen-compound protocol: the history of the first fold's model."
NO_HISTORY_TEXT = ("No training history: none of the methods recorded one (the baselines are fitted in one step, "
                   "not trained by epochs; results saved by an older phenoseq do not keep it).")
TRUST_TEXT = (
    "Each synthetic well comes with a predicted well mean, a {level:.0%} prediction interval for every gene's "
    "well mean, a confidence in (0, 1] and an out-of-distribution flag (the <code>.wells.h5ad</code> file of "
    "<code>phenoseq generate</code>). Intervals and confidence are calibrated on the validation wells, which the "
    "model did not train on (split-conformal, scaled by each well's difficulty: its morphological novelty, how "
    "much the model and a ridge regression disagree on it, and how control-like a treated well looks). "
    "<b>Coverage</b>: the fraction of held-out wells' real gene means inside their intervals; <b>width</b>: "
    "mean interval width (log1p CP10k). Beside them, the "
    "<b>training-mean interval</b>: the training mean ± a conformal quantile of the validation wells' deviations "
    "from it, what a user gets without a model. An interval earns its place only if it is narrower at the coverage "
    "asked for. <b>Spearman</b>: between confidence and −error (RMS error of the well mean): 1 when the most "
    "confident wells are the most accurate. HE wells come from another round than the calibration wells, so they "
    "are not exchangeable with them: their coverage is reported as measured, and may fall short. Where the data "
    "mark which treatments change morphology, each split is also shown for the visible and the silent ones: no "
    "confidence read from imaging can see an effect that leaves morphology unchanged.")
OOD_TEXT = (
    "OOD flag of <b>{method}</b> on wells of compounds without training wells: AUROC of the OOD score {auroc} "
    "against held-out wells of training compounds; flagged {recall} of {n_pos} unseen-compound wells ({visible} of "
    "the {n_visible} whose compound visibly changes morphology) and {false} of {n_neg} held-out wells of training "
    "compounds (the threshold aims at 5% of the latter).")
OOD_TEXT_NO_NEGATIVES = (
    "OOD flag of <b>{method}</b> on wells of compounds without training wells: flagged {recall} of {n_pos} "
    "unseen-compound wells ({visible} of the {n_visible} whose compound visibly changes morphology). No held-out "
    "wells of training compounds were left to measure false flags on: their test wells trained the methods.")
TRUST_FIGURE_TEXT = ("Left: coverage of the method's intervals (colour) and of the training-mean interval (grey) "
                     "per split; dashed: the level asked for. Right: each held-out well's confidence against the "
                     "error of its predicted well mean.")
