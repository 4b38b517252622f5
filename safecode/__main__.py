"""python -m safecode: the command line (faces/cli.py)."""

import sys

from .faces.cli import main

if __name__ == "__main__":
    sys.exit(main())
