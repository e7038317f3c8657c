"""``python -m noiseprop`` runs the command line."""
import sys

from .cli import main

if __name__ == "__main__":  # importing this module (e.g. for documentation) runs nothing
    sys.exit(main())
