"""``python -m minillama …``: see :mod:`minillama.cli`."""

import sys

from minillama.cli import main

if __name__ == "__main__":
    sys.exit(main())
