"""Testing support: a DynamoDB Local launcher and the pytest plugin (`dynorm_table`)."""

from ._local import DockerFallbackWarning, LocalServer, ensure_jar, find_endpoint, start_local

__all__ = ["DockerFallbackWarning", "LocalServer", "ensure_jar", "find_endpoint", "start_local"]
