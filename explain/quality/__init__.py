"""Trust in explanations: is an attribution faithful to the model, and does it depend on it?

:func:`evaluate` computes, for the first ``n_samples`` of an :class:`explain.Attribution`:

* **completeness** (path and Shapley methods only): ``|sum(attr) - (f(x) - f(b))|`` relative to
  ``|f(x) - f(b)|``, on the logit of the explained class. Integrated gradients is exact in the
  limit of infinitely many steps, so an error above **5 %** means too few steps (raise
  ``n_steps``) or a baseline/target mismatch: the map does not account for the prediction.
* **faithfulness**: deletion and insertion curves (units replaced by the baseline value, most
  positive attribution first; image patches, frame x feature cells of real frames, non-pad
  tokens replaced by pad id 0, tabular features), AUC of the class probability over the
  fraction changed, in [0, 1]. The reference is the same curve in random order (mean of
  ``n_random`` seeds). A map that ranks evidence better than chance must give a deletion AUC
  **below** and an insertion AUC **above** the random-order AUC (margin
  ``min_faithfulness_margin``, default 0): otherwise it is no better than guessing.
* **sanity** (Adebayo et al. 2018): cascading randomization of a deep copy of the model from the
  output layer down. The median Spearman rank correlation (signed maps, real elements only)
  between the original map and the map of the fully randomized model must drop to
  **<= 0.5**; a map that stays more correlated reflects the input, not the model (an edge
  detector passes every faithfulness-free test), and **fails sanity**.
* **infidelity** (Yeh et al. 2019, normalized): reported, not graded; it is in squared logit
  units, so compare methods on the same model rather than against a fixed number.
* **sensitivity** (max-sensitivity, relative to the norm of the map, under uniform noise of
  2 % of the input's spread): above **1.0** the map changes by more than its own size under a
  perturbation the model barely notices, so it is unstable and doubtful.

Verdict: ``fails-sanity`` when the sanity correlation is above its threshold; else ``doubtful``
when any graded criterion (completeness, deletion, insertion, sensitivity) fails or a graded
metric could not run; else ``trustworthy``. :func:`agreement` gives the method x method matrix
of median per-sample rank correlations when several attributions were computed.
"""

from explain.quality.evaluation import METRICS, default_explain_fn, evaluate
from explain.quality.method_agreement import agreement
from explain.quality.result import DEFAULT_THRESHOLDS, Quality, Verdict

__all__ = ["evaluate", "Quality", "Verdict", "agreement", "METRICS", "DEFAULT_THRESHOLDS",
           "default_explain_fn"]
