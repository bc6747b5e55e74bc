"""The public import surface: one sorted __all__, nothing private leaks."""

from __future__ import annotations

import dynorm


def test_all_is_sorted_case_insensitively_and_complete() -> None:
    assert dynorm.__all__ == sorted(dynorm.__all__, key=str.lower)
    import types

    # dir() lists the names loaded on first use too (dynorm.__getattr__); getattr loads them.
    public = {
        n
        for n in dir(dynorm)
        if n.isidentifier()
        and not n.startswith("_")
        and not isinstance(getattr(dynorm, n), types.ModuleType)
    } | {"fields"}
    assert public == set(dynorm.__all__) - {"__version__"}


def test_nothing_private_is_exported() -> None:
    for name in dynorm.__all__:
        obj = getattr(dynorm, name)
        module = getattr(obj, "__module__", "") or ""
        assert not name.startswith("_") or name == "__version__"
        if name not in ("configure", "create_table", "delete_table", "Index"):
            assert ".__" not in module


def test_exceptions_are_re_exported() -> None:
    from dynorm import exceptions

    for name in exceptions.__all__:
        assert getattr(dynorm, name) is getattr(exceptions, name)


def test_no_client_is_created_at_import() -> None:
    import subprocess
    import sys

    code = (
        "import dynorm, dynorm._config as c; "
        "assert c._connection is None and c._settings is None, 'client at import'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
