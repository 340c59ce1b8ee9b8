"""Functa: latent-modulated SIREN meta-learned with Meta-SGD, a functaset of modulations, a flow prior."""

from .functaset import load_functaset, write_functaset

__all__ = ["load_functaset", "write_functaset"]
