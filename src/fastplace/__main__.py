"""``python -m fastplace`` runs the command line."""

import sys

from fastplace.cli import main

sys.exit(main())
