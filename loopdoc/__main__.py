"""``python -m loopdoc``: the same as the ``loopdoc`` command."""

import sys

from . import _interrupted_while_starting

try:
    from .cli import main
except KeyboardInterrupt:  # between two imports: as in loopdoc/__init__.py
    _interrupted_while_starting()
    raise

sys.exit(main())
