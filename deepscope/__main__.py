"""``python -m deepscope``: the same as the ``deepscope`` console script."""

import sys

from deepscope.cli import main

sys.exit(main())
