"""Griffe extension for the API reference: signatures and base classes name public things only.

mkdocstrings' `filters: ["!^_"]` hides private members, but private names still reach the page
through what public objects refer to. This extension rewrites, for the documentation only:

- a base class with a private name (`class QueryError(_UsageError)`) into that class's own
  bases, recursively, so the page says `Bases: DynormError`;
- a union annotation with a private member (`str | None | _NotGiven`, the "argument not
  passed" sentinel's type) into the union of its public members (`str | None`);
- a default that is an instance of a private class (`NOT_GIVEN = _NotGiven()`) into `...`,
  the convention of type stubs for "has a default".

Overloads, whose type variables are private (`_M`, `_Key[_A]`), are hidden by the
`show_overloads: false` option instead; their docstrings say what the type checker sees.
"""

from __future__ import annotations

from typing import Any

import griffe


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _union_members(expr: str | griffe.Expr) -> list[str | griffe.Expr]:
    if isinstance(expr, griffe.ExprBinOp) and expr.operator == "|":
        return _union_members(expr.left) + _union_members(expr.right)
    return [expr]


def _public_union(expr: str | griffe.Expr | None) -> str | griffe.Expr | None:
    """`expr` without its private union members (unchanged if nothing public would remain)."""
    if expr is None:
        return None
    members = _union_members(expr)
    kept = [m for m in members if not (isinstance(m, griffe.ExprName) and _private(m.name))]
    if not kept or len(kept) == len(members):
        return expr
    union = kept[0]
    for member in kept[1:]:
        union = griffe.ExprBinOp(union, "|", member)
    return union


def _lookup(scope: griffe.Object, path: str) -> griffe.Object | griffe.Alias | None:
    """The loaded object at `path`, or None (a builtin, another package, unresolvable)."""
    try:
        return scope.modules_collection[path]  # type: ignore[no-any-return]
    except (KeyError, ValueError, griffe.AliasResolutionError, griffe.CyclicAliasError):
        return None


def _private_instance(default: str | griffe.Expr | None) -> bool:
    """Whether `default` names a module attribute whose value is `_Private(...)`."""
    if not isinstance(default, griffe.ExprName) or not isinstance(default.parent, griffe.Object):
        return False
    value = getattr(_lookup(default.parent, default.canonical_path), "value", None)
    return (
        isinstance(value, griffe.ExprCall)
        and isinstance(value.function, griffe.ExprName)
        and _private(value.function.name)
    )


class PublicNames(griffe.Extension):
    """Rewrite private names out of bases and signatures once a package is loaded."""

    def on_package(self, *, pkg: griffe.Module, loader: griffe.GriffeLoader, **kwargs: Any) -> None:
        """Walk the package once its object tree (aliases included) is complete."""
        self._walk(pkg, set())

    def _walk(self, obj: griffe.Object, seen: set[str]) -> None:
        if obj.path in seen:
            return
        seen.add(obj.path)
        if isinstance(obj, griffe.Class):
            obj.bases = self._public_bases(obj, set())
        if isinstance(obj, griffe.Function):
            self._public_signature(obj)
        for member in obj.members.values():
            if not member.is_alias:
                self._walk(member, seen)  # type: ignore[arg-type]

    def _public_bases(self, cls: griffe.Class, visiting: set[str]) -> list[str | griffe.Expr]:
        bases: list[str | griffe.Expr] = []
        visiting = visiting | {cls.path}
        for base in cls.bases:
            private = isinstance(base, griffe.ExprName) and _private(base.name)
            resolved = _lookup(cls, base.canonical_path) if private else None  # type: ignore[union-attr]
            if isinstance(resolved, griffe.Class):
                if resolved.path not in visiting:
                    bases.extend(self._public_bases(resolved, visiting))
            else:
                bases.append(base)
        return bases

    def _public_signature(self, func: griffe.Function) -> None:
        for parameter in func.parameters:
            parameter.annotation = _public_union(parameter.annotation)
            if _private_instance(parameter.default):
                parameter.default = "..."
        func.returns = _public_union(func.returns)
