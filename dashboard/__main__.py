"""``python -m dashboard`` does what the ``comanage-dashboard`` command does."""

import sys

from .cli import main

sys.exit(main())
