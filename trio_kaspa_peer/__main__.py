"""``python -m trio_kaspa_peer`` runs the ``kaspa-peer`` command."""

import sys

from ._cli import main

sys.exit(main())
