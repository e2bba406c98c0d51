"""``python -m fer_workbench.cli``: the same command as the ``fer-workbench`` console script."""

import sys

from fer_workbench.cli import main

sys.exit(main())
