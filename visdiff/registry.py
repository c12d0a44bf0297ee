"""Backends register by name, per pipeline stage, and are built from ``backend:model`` specs.

>>> parse_spec("open_clip:ViT-B-32:laion2b_s34b_b79k")
Spec(backend='open_clip', model='ViT-B-32:laion2b_s34b_b79k')
>>> parse_spec("offline")
Spec(backend='offline', model='')
"""

from __future__ import annotations

import importlib
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


@dataclass(frozen=True)
class Entry(Generic[T]):
    """One registered backend: its factory, or the ``module:attribute`` path it is imported
    from when first built, and the capabilities it declares."""

    factory: Callable[..., T] | str
    capabilities: frozenset[str]

    def load(self) -> Callable[..., T]:
        if callable(self.factory):
            return self.factory
        module, _, attribute = self.factory.partition(":")
        return getattr(importlib.import_module(module), attribute)


class Registry(Generic[T]):
    """Name -> factory table for one pipeline stage, with what each backend can do.

    A factory takes the model part of the spec (possibly empty) plus keyword options.
    Backends are declared with the ``module:factory`` path of their factory (:meth:`declare`),
    imported when first built, so listing names and reading capabilities import no model
    library; or registered with the factory itself (:meth:`register`, for plugins), where
    ``backends`` are the modules that register them when imported, on first use.
    ``capabilities`` are the flags a backend of this stage may declare (``pairwise=True``).
    """

    def __init__(self, stage: str, backends: tuple[str, ...] = (), capabilities: tuple[str, ...] = ()) -> None:
        self.stage = stage
        self.backends = backends
        self.known_capabilities = frozenset(capabilities)
        self._entries: dict[str, Entry[T]] = {}

    def declare(self, name: str, factory_path: str, /, **capabilities: bool) -> None:
        """Register the factory at ``factory_path`` (``module:attribute``), imported when built."""
        if ":" not in factory_path:
            raise ValueError(f"{self.stage} backend {name!r}: expected 'module:factory', got {factory_path!r}")
        self._add(name, Entry(factory_path, self._declared(capabilities)))

    def register(self, name: str, /, **capabilities: bool) -> Callable[[Callable[..., T]], Callable[..., T]]:
        """Decorator registering a factory under ``name``."""
        declared = self._declared(capabilities)

        def decorator(factory: Callable[..., T]) -> Callable[..., T]:
            self._add(name, Entry(factory, declared))
            return factory

        return decorator

    def _add(self, name: str, entry: Entry[T]) -> None:
        if name in self._entries:
            raise ValueError(f"{self.stage} backend {name!r} is already registered")
        self._entries[name] = entry

    def _declared(self, flags: dict[str, bool]) -> frozenset[str]:
        """The capabilities set to true, refusing a flag this stage does not know (a typo
        would otherwise silently turn a capability off)."""
        for capability in flags:
            self._check_capability(capability)
        return frozenset(capability for capability, on in flags.items() if on)

    def _check_capability(self, capability: str) -> None:
        if capability not in self.known_capabilities:
            raise ValueError(f"{self.stage} backends have no capability {capability!r}; "
                             f"known: {', '.join(sorted(self.known_capabilities)) or 'none'}")

    def _load_backends(self) -> None:
        for module in self.backends:
            importlib.import_module(module)

    def names(self) -> list[str]:
        """Registered backend names, sorted."""
        self._load_backends()
        return sorted(self._entries)

    def has(self, name: str | None, capability: str) -> bool:
        """Whether backend ``name`` declares ``capability``; false for a name not registered
        (such as a built object's backend, or ``None``)."""
        self._check_capability(capability)
        self._load_backends()
        entry = self._entries.get(name)
        return entry is not None and capability in entry.capabilities

    def names_with(self, capability: str) -> list[str]:
        """The backends declaring ``capability``, sorted (for messages naming them)."""
        self._check_capability(capability)
        return [name for name in self.names() if capability in self._entries[name].capabilities]

    def check(self, spec: str | Spec) -> Spec:
        """The parsed spec, or ``InputError`` naming the choices when its backend is unknown."""
        parsed = spec if isinstance(spec, Spec) else parse_spec(spec)
        if parsed.backend not in self.names():
            raise InputError(
                f"unknown {self.stage} backend {parsed.backend!r} in {str(spec)!r}; "
                f"choose one of: {', '.join(self.names())}"
            )
        return parsed

    def factory(self, name: str) -> Callable[..., T]:
        """The factory of the registered backend ``name``, imported now if declared by path."""
        return self._entries[name].load()

    def create(self, spec: str | Spec, **options) -> T:
        """Build the backend a ``backend:model`` spec names, with ``options``."""
        parsed = self.check(spec)
        return self.factory(parsed.backend)(parsed.model, **options)


def require(module: str, extra: str):
    """Import an optional dependency, or say which extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise BackendError(
            f"this backend needs the {module!r} package: pip install 'visdiff[{extra}]'"
        ) from e
