"""``python -m rask.worker``: a Python worker process (see ``--help``)."""

import sys

from ._cli import main

if __name__ == "__main__":
    sys.exit(main())
