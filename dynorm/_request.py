"""`Request`: one DynamoDB request as the compilers build it and the connection sends it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

__all__ = ["Request"]


@dataclass(frozen=True)
class Request:
    """One DynamoDB request: the operation name and its boto3 parameters."""

    operation: str
    params: dict[str, Any]

    def __str__(self) -> str:
        return f"{self.operation} {json.dumps(self.params, indent=2, default=str)}"
