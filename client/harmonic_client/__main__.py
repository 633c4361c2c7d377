"""``python -m harmonic_client`` is the ``harmonic`` command."""

import sys

from harmonic_client.cli import main

sys.exit(main())
