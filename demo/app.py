"""Hugging Face Space entry point: the GLEAN demo, which ships inside the package (`glean_hub.demo`).

    python demo/app.py [--host 127.0.0.1] [--port 7860] [--share] [--model DIR_OR_REPO ...]

is the same as `glean-hub demo ...`. On a Space, `glean_hub/` is uploaded beside this file (see
README.md here); in a source checkout without `pip install -e .` the repository root is put on the path.
"""

import sys
from pathlib import Path

try:
    import glean_hub  # noqa: F401
except ImportError:  # a source checkout run as `python demo/app.py` without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from glean_hub.demo import build_demo, launch, main  # noqa: E402,F401

if __name__ == "__main__":
    sys.exit(main())
