"""Testing support: a DynamoDB Local launcher and the pytest plugin (`dynorm_table`)."""

from ._local import LocalServer, ensure_jar, find_endpoint, start_local

__all__ = ["LocalServer", "ensure_jar", "find_endpoint", "start_local"]
