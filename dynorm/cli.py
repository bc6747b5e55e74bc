"""The `dynorm` command: run DynamoDB Local, create and delete the table, describe models.

The command line is built on Click and Rich, which come with the `cli` extra
(`pip install "dynorm[cli]"`); without them `dynorm` prints one line saying so. The
descriptions (`describe_models`, `describe_json`) need neither and are importable from code.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from ._descriptions import describe_json, describe_models

__all__ = ["describe_json", "describe_models", "main"]

_INSTALL_HINT = (
    "dynorm: the command line needs Click and Rich, which the cli extra installs: "
    'pip install "dynorm[cli]"'
)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `dynorm` command line and return its exit code."""
    try:
        import click  # noqa: F401
        import rich  # noqa: F401
    except ImportError:
        print(_INSTALL_HINT, file=sys.stderr)
        return 1
    from ._cli import run

    return run(argv)
