"""GASP: hypernetwork generator of function weights, trained against a PointConv discriminator."""
