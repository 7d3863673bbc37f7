"""``python -m ferembed``: the same as the ``ferembed`` command."""

import sys

from ferembed.cli import main

sys.exit(main())
