"""The paper's two baselines behind the suite's one model interface (``vamoh.interface``).

``baselines.gasp``: GASP (Dupont et al., 2022), a GAN over functions; generation only.
``baselines.functa``: Functa (Dupont et al., 2022), a meta-learned latent-modulated SIREN; inference
by a few gradient steps on a latent, generation by a normalizing flow fitted to the latents.
Importing ``baselines.gasp.model`` / ``baselines.functa.model`` registers the models.
"""
