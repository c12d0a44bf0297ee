"""Backends register by name, per pipeline stage, and are built from ``backend:model`` specs.

>>> parse_spec("open_clip:ViT-B-32:laion2b_s34b_b79k")
Spec(backend='open_clip', model='ViT-B-32:laion2b_s34b_b79k')
>>> parse_spec("offline")
Spec(backend='offline', model='')
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from visdiff.errors import BackendError, InputError

T = TypeVar("T")


@dataclass(frozen=True)
class Spec:
    """A parsed ``backend:model`` string; ``model`` is empty when the backend has a default."""

    backend: str
    model: str

    def __str__(self) -> str:
        return f"{self.backend}:{self.model}" if self.model else self.backend


def parse_spec(spec: str) -> Spec:
    """Split ``backend:model`` on the first colon (model ids may contain more colons)."""
    if not isinstance(spec, str) or not spec.strip():
        raise InputError(f"empty backend spec {spec!r}; expected 'backend' or 'backend:model'")
    backend, _, model = spec.strip().partition(":")
    return Spec(backend=backend.strip(), model=model.strip())


class Registry(Generic[T]):
    """Name -> factory table for one pipeline stage.

    A factory takes the model part of the spec (possibly empty) plus keyword options.
    ``backends`` are the modules that register this stage's factories when imported; they are
    imported on first use, so heavy imports wait until a backend is asked for.
    """

    def __init__(self, stage: str, backends: tuple[str, ...] = ()) -> None:
        self.stage = stage
        self.backends = backends
        self._factories: dict[str, Callable[..., T]] = {}

    def register(self, name: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
        def decorator(factory: Callable[..., T]) -> Callable[..., T]:
            if name in self._factories:
                raise ValueError(f"{self.stage} backend {name!r} is already registered")
            self._factories[name] = factory
            return factory

        return decorator

    def _load_backends(self) -> None:
        import importlib

        for module in self.backends:
            importlib.import_module(module)

    def names(self) -> list[str]:
        """Registered backend names, sorted."""
        self._load_backends()
        return sorted(self._factories)

    def check(self, spec: str | Spec) -> Spec:
        """The parsed spec, or ``InputError`` naming the choices when its backend is unknown."""
        parsed = spec if isinstance(spec, Spec) else parse_spec(spec)
        if parsed.backend not in self.names():
            raise InputError(
                f"unknown {self.stage} backend {parsed.backend!r} in {str(spec)!r}; "
                f"choose one of: {', '.join(self.names())}"
            )
        return parsed

    def create(self, spec: str | Spec, **options) -> T:
        """Build the backend a ``backend:model`` spec names, with ``options``."""
        parsed = self.check(spec)
        return self._factories[parsed.backend](parsed.model, **options)


def require(module: str, extra: str):
    """Import an optional dependency, or say which extra installs it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise BackendError(
            f"this backend needs the {module!r} package: pip install 'visdiff[{extra}]'"
        ) from e
