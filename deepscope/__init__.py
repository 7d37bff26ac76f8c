"""deepscope's command line: ``deepscope COMMAND`` (or ``python -m deepscope COMMAND``).

One module per command in :mod:`deepscope.commands` (``train``, ``list``, ``show``, ``audit``,
``dashboard``, ``demo``); :func:`deepscope.cli.main` finds them. The library is :mod:`explain`,
the model zoo :mod:`zoo`, the Streamlit app :mod:`dashboard`.
"""

from __future__ import annotations

from deepscope.cli import main

__all__ = ["main"]
