"""Building blocks of VAMoH, shared with the baselines (Fourier features, PointConv)."""
