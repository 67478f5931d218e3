"""``python -m incgraph.cli``: the ``incgraph`` command."""

import sys

from incgraph.cli import main

sys.exit(main())
