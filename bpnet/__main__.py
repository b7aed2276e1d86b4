"""``python -m bpnet`` runs the command line (see ``bpnet --help``)."""

import sys

from .cli import main

sys.exit(main())
