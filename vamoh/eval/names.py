"""The feature extractors' names (config key ``eval.feature_extractor``), spelled once.

A leaf module (nothing imported), so that the typed config, the scorer and the workflow's checks before any job
compare against the same constants without importing one another.
"""

from __future__ import annotations

# the suite's own autoencoder, trained on each dataset's train split (vamoh.eval.extractors; the offline default)
SUITE = "suite"
# the paper's Inception-v3: the config value and torch-fidelity's registry name of the extractor (needs its weights file)
INCEPTION = "inception-v3-compat"
FEATURE_EXTRACTORS = (SUITE, INCEPTION)
