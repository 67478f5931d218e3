"""``python -m incgraph``: the ``incgraph`` command (as ``python -m incgraph.cli``)."""

import sys

from incgraph.cli import main

sys.exit(main())
