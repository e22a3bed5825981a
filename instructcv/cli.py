"""Command-line conventions shared by every script: one-line errors, exit status, logging.

A script's ``main`` raises ``UsageError`` (or an ``ImageReadError``) for bad input; ``run``
turns it into ``error: <message>`` on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable

from instructcv.images import ImageReadError

EXIT_OK = 0
EXIT_PARTIAL = 2  # some inputs were skipped, or the input was unusable


class UsageError(Exception):
    """Bad input the user can fix; printed as one line without a traceback."""


def setup_logging(verbose: bool = False) -> None:
    """Plain ``LEVEL message`` logging on stderr (rank-0 style, no timestamps noise)."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(levelname)s %(message)s",
        stream=sys.stderr,
    )


def run(main: Callable[..., int | None], *args, **kwargs) -> None:
    """Call ``main`` and exit with its status; bad input becomes ``error: ...`` and exit 2."""
    try:
        status = main(*args, **kwargs)
    except (UsageError, ImageReadError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(EXIT_PARTIAL)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    sys.exit(int(status or 0))
