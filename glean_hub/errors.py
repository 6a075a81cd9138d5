"""User-facing errors. Each message says what was received, what was expected and what to do.

The CLI prints `GleanError`s as one line (a traceback only with --debug); the demo shows them
as `gr.Error` with the same text.
"""


class GleanError(Exception):
    """Base class of every error glean-hub raises on purpose."""


class ConfigError(GleanError, ValueError):
    """A config file or a set of config values that cannot describe a valid model."""


class CheckpointError(GleanError, ValueError):
    """Weights that do not fit the architecture: missing, unexpected or misshapen tensors."""


class BankMismatchError(CheckpointError):
    """The latent bank found is not the one the GLEAN model was trained with (sha256 differs)."""


class ModelNotFoundError(GleanError, LookupError):
    """An unknown category/scale, a missing folder, or a repo/file/revision the Hub does not have."""


class InputImageError(GleanError, ValueError):
    """An input image that cannot be read or is unusable (corrupt, too small, too large, bad mode)."""


class GleanWarning(UserWarning):
    """Something the user should know about an input or a result (the pipeline also lists it in UpscaleInfo.warnings)."""
