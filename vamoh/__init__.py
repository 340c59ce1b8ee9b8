"""VAMoH: Variational Mixture of HyperGenerators (Koyuncu et al., ICML 2023) in PyTorch.

The package also holds the suite's shared core: point clouds, datasets, metrics, the model
interface and registry that GASP and Functa (package ``baselines``) plug into.
"""

__version__ = "0.1.0"
