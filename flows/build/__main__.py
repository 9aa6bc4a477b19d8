"""`python -m flows.build`: see flows.build.cli."""

import sys

from flows.build.cli import main

sys.exit(main())
