"""``python -m trio_kaspa_peer demo``."""

import sys

from ._cli import main

sys.exit(main())
