"""User-facing errors. Each message says what was received, what was expected and what to do.

The CLI prints `GleanError`s as one line (`write_line`; a traceback only with --debug); the demo shows them
as `gr.Error` with the same text.
"""

import sys


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


class OutputPathError(GleanError, OSError):
    """An output file or folder that cannot be written: a file in the way, no permission, a name too long."""


def os_error_message(error: OSError, what: str | None = None) -> str:
    """One line for an OSError: the path (or `what`) and the reason in words, no errno numbers or tracebacks."""
    import errno

    reasons = {
        errno.ENAMETOOLONG: "a name in this path is longer than the filesystem allows (usually 255 bytes)",
        errno.ENOTDIR: "a part of this path is a file, not a folder",
        errno.EISDIR: "is a folder, not a file",
        errno.EEXIST: "already exists",
        errno.EACCES: "permission denied",
        errno.EPERM: "operation not permitted",
        errno.EROFS: "the filesystem is read-only",
        errno.ENOSPC: "no space left on the device",
        errno.ENOENT: "no such file or folder",
    }
    where = what if what is not None else (str(error.filename) if error.filename is not None else "")
    if len(where) > 120:
        where = where[:100] + "...(" + str(len(where)) + " characters)"
    reason = reasons.get(error.errno, error.strerror or " ".join(str(error).split()) or type(error).__name__)
    return f"{where}: {reason}" if where else reason


def write_line(line: str, file=None) -> None:
    """`line` and its newline in one write (to stderr by default). print() and tqdm.write() write the text and the
    newline separately (two system calls when Python runs unbuffered, PYTHONUNBUFFERED), so the lines of several
    processes sharing one stderr under `accelerate launch` could interleave into one."""
    file = file or sys.stderr
    file.write(line + "\n")
    file.flush()
