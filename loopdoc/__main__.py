"""``python -m loopdoc``: the same as the ``loopdoc`` command."""

import sys

from .cli import main

sys.exit(main())
