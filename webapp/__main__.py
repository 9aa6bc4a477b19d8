"""``python -m webapp``: run the service (see webapp.server)."""

import sys

from webapp.server import main

sys.exit(main())
