"""Training: latent banks (StyleGAN2) and GLEAN models. Needs the `train` extra (accelerate)."""
