"""glean-hub: GLEAN large-factor super-resolution, exact to the official checkpoints, on the Hub."""

from .config import BankConfig, GLEANConfig
from .glean import GLEAN
from .pipeline import GLEANPipeline, UpscaleOutput
from .registry import available
from .stylegan2 import StyleGAN2Generator

__version__ = "0.1.0"
__all__ = ["GLEAN", "GLEANConfig", "BankConfig", "StyleGAN2Generator", "GLEANPipeline", "UpscaleOutput", "available", "__version__"]
