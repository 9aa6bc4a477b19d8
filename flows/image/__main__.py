"""`python -m flows.image`: see flows.image.cli."""

import sys

from flows.image.cli import main

sys.exit(main())
