"""Plugin discovery and hook calls.

Order: entry points of group ``compressor`` (third-party), then the built-in
modules in ``DEFAULT_PLUGINS``, then a check that every hook implementation has
a spec. A broken plugin is recorded with its error and skipped, so unrelated
commands keep working. ``COMPRESSOR_BLOCK_PLUGINS=a,b`` blocks plugins by name;
``COMPRESSOR_TRACE_HOOKS=1`` prints every hook call to stderr.
"""

from __future__ import annotations

import functools
import importlib
import os
import sys
from dataclasses import dataclass
from importlib import metadata
from typing import Any

import pluggy

from compressor import __version__
from compressor.core.context import RunContext
from compressor.core.errors import CompressorError
from compressor.core.keras_objects import KerasObjectRegistry
from compressor.core.metrics import FidelityJudge, MetricRegistry
from compressor.core.profiles import ProfileRegistry
from compressor.core.strategy import StrategyRegistry
from compressor.plugins import PROJECT_NAME, hookspecs

DEFAULT_PLUGINS: tuple[str, ...] = (
    "compressor.hardware_profiles",
    "compressor.models",
    "compressor.strategies.train",
    "compressor.strategies.distill",
    "compressor.strategies.activation_swap",
    "compressor.strategies.prune",
    "compressor.strategies.prune_channels",
    "compressor.strategies.qat",
    "compressor.strategies.fuse",
    "compressor.strategies.mirror_pad",
    "compressor.strategies.lower_activations",
    "compressor.strategies.space_to_depth",
    "compressor.strategies.quantize",
    "compressor.strategies.mixed_precision",
    "compressor.strategies.aeq_quantize",
    "compressor.strategies.evaluate",
    "compressor.strategies.metrics",
)
BLOCK_ENV = "COMPRESSOR_BLOCK_PLUGINS"
TRACE_ENV = "COMPRESSOR_TRACE_HOOKS"
NO_ENTRYPOINTS_ENV = "COMPRESSOR_NO_ENTRYPOINTS"


@dataclass
class PluginRecord:
    """One plugin as `compressor plugins` shows it."""

    name: str
    distribution: str
    version: str
    builtin: bool
    error: str = ""


class _PluginManager(pluggy.PluginManager):
    """pluggy's manager, with the built-in plugins' hooks marked ``tryfirst``: built-ins
    register their strategies and profiles before any third-party plugin, so a name
    clash fails the third-party plugin, never a built-in."""

    builtin_names: set[str] = set()
    _registering: str | None = None

    def register(self, plugin: Any, name: str | None = None) -> str | None:
        """pluggy's ``register``, remembering the name while the hooks are parsed."""
        self._registering = name
        try:
            return super().register(plugin, name)
        finally:
            self._registering = None

    def parse_hookimpl_opts(self, plugin: Any, name: str) -> Any:
        """Hook options as pluggy reads them; ``tryfirst`` for built-in plugins."""
        opts = super().parse_hookimpl_opts(plugin, name)
        if opts is not None and self._registering in self.builtin_names:
            opts = {**opts, "tryfirst": True}
        return opts


def _blocked_names() -> set[str]:
    return {n.strip() for n in os.environ.get(BLOCK_ENV, "").split(",") if n.strip()}


class PluginHost:
    """Owns the pluggy manager and the registries built from the hooks."""

    def __init__(self, load_entrypoints: bool | None = None) -> None:
        self.pm = _PluginManager(PROJECT_NAME)
        self.pm.builtin_names = set(DEFAULT_PLUGINS)
        self.pm.add_hookspecs(hookspecs)
        self.records: list[PluginRecord] = []
        self.warnings: list[str] = []
        self._hook_failures: list[tuple[str, str, Exception]] = []
        self._strategies: StrategyRegistry | None = None
        self._profiles: ProfileRegistry | None = None
        self._keras_objects: KerasObjectRegistry | None = None
        self._metrics: MetricRegistry | None = None
        blocked = _blocked_names()
        for name in blocked:
            self.pm.set_blocked(name)
        if os.environ.get(TRACE_ENV):
            self.pm.trace.root.setwriter(sys.stderr.write)
            self.pm.enable_tracing()
        if load_entrypoints is None:
            load_entrypoints = not os.environ.get(NO_ENTRYPOINTS_ENV)
        if load_entrypoints:
            self._load_entrypoints(blocked)
        # pluggy calls the last registered first: built-ins are registered in reverse so
        # their hooks run in DEFAULT_PLUGINS order (and are listed in that order).
        for module_name in reversed(DEFAULT_PLUGINS):
            if module_name in blocked:
                continue
            try:
                module = importlib.import_module(module_name)
            except Exception as exc:  # a broken built-in must not hide the others
                self._record_failure(module_name, "compressor", __version__, True, exc)
                continue
            self._register(module, module_name, "compressor", __version__, True)
        order = {name: i for i, name in enumerate(DEFAULT_PLUGINS)}
        self.records.sort(key=lambda r: order.get(r.name, -1) if r.builtin else -1)

    def _load_entrypoints(self, blocked: set[str]) -> None:
        for ep in metadata.entry_points(group=PROJECT_NAME):
            dist = ep.dist.name if ep.dist else "?"
            version = ep.dist.version if ep.dist else "?"
            if ep.name in blocked:
                continue
            try:
                plugin = ep.load()
            except Exception as exc:
                self._record_failure(ep.name, dist, version, False, exc)
                continue
            self._register(plugin, ep.name, dist, version, False)

    def _record_failure(
        self, name: str, dist: str, version: str, builtin: bool, exc: BaseException
    ) -> None:
        message = f"failed to load: {type(exc).__name__}: {exc}".splitlines()[0]
        self.records.append(PluginRecord(name, dist, version, builtin, message))

    def add_plugin(self, plugin: Any, name: str, distribution: str = "local") -> None:
        """Register a plugin object (a module or an object with ``@hookimpl`` methods)
        as if it were installed: how tests and notebooks add a plugin without pip.
        Call it before the registries are first used (``strategies``, ``profiles``)."""
        self._register(plugin, name, distribution, "local", False)

    def _register(self, plugin: Any, name: str, dist: str, version: str, builtin: bool) -> None:
        try:
            self.pm.register(plugin, name=name)
        except Exception as exc:
            self._record_failure(name, dist, version, builtin, exc)
            return
        self._guard_hookimpls(plugin, name)
        unknown = [hc.name for hc in self.pm.get_hookcallers(plugin) or [] if not hc.has_spec()]
        if unknown:
            self.pm.unregister(plugin)
            known = ", ".join(
                sorted(n for n in dir(hookspecs) if n.startswith(("register_", "on_")))
            )
            self.records.append(
                PluginRecord(
                    name,
                    dist,
                    version,
                    builtin,
                    f"unknown hook {', '.join(unknown)} (known hooks: {known})",
                )
            )
            return
        self.records.append(PluginRecord(name, dist, version, builtin))

    def _fail_plugin(self, plugin_name: str, exc: BaseException) -> None:
        for record in self.records:
            if record.name == plugin_name and not record.error:
                record.error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        plugin = self.pm.get_plugin(plugin_name)
        if plugin is not None:
            self.pm.unregister(plugin)

    def _guard_hookimpls(self, plugin: Any, name: str) -> None:
        """Wrap each of ``plugin``'s hook implementations so an exception in it is
        recorded against the plugin instead of aborting the hook call for all plugins;
        hooks are then called through pluggy (``pm.hook``), so tracing, ``tryfirst`` /
        ``trylast`` and wrappers work as pluggy documents them."""
        for caller in self.pm.get_hookcallers(plugin) or []:
            for impl in caller.get_hookimpls():
                if impl.plugin is plugin and not (impl.hookwrapper or impl.wrapper):
                    impl.function = self._guarded(impl.function, name, caller.name)

    def _guarded(self, function: Any, plugin_name: str, hook_name: str) -> Any:
        failures = self._hook_failures

        @functools.wraps(function)
        def call(*args: Any) -> Any:
            for arg in args:  # registries attribute what is added to the calling plugin
                if hasattr(arg, "current_plugin"):
                    arg.current_plugin = plugin_name
            try:
                return function(*args)
            except Exception as exc:
                failures.append((plugin_name, hook_name, exc))
                return None

        return call

    def _call_hook(self, hook_name: str, **kwargs: Any) -> list[tuple[str, str, Exception]]:
        """Call ``hook_name`` through pluggy; returns (plugin, hook, exception) for each
        implementation that raised."""
        start = len(self._hook_failures)
        getattr(self.pm.hook, hook_name)(**kwargs)
        failures = self._hook_failures[start:]
        del self._hook_failures[start:]
        return failures

    def _call_registration(self, hook_name: str, registry: Any) -> None:
        """Call a registration hook; a plugin that raises is failed and unregistered,
        and what it had registered is dropped, without touching the others."""
        for plugin_name, _hook, exc in self._call_hook(hook_name, registry=registry):
            if not isinstance(exc, CompressorError):
                exc = RuntimeError(f"{type(exc).__name__}: {exc}")
            self._fail_plugin(plugin_name, exc)
            drop = getattr(registry, "drop_plugin", None)
            if drop is not None:
                drop(plugin_name)
        registry.current_plugin = "compressor"

    @property
    def strategies(self) -> StrategyRegistry:
        """All registered strategies (built on first use)."""
        if self._strategies is None:
            self._strategies = StrategyRegistry()
            self._call_registration("register_strategies", self._strategies)
            self._strategies.failed_plugins = {r.name: r.error for r in self.errors()}
        return self._strategies

    @property
    def profiles(self) -> ProfileRegistry:
        """All registered hardware profiles (built on first use)."""
        if self._profiles is None:
            from compressor.engine.host_profile import host_profile_for

            self._profiles = ProfileRegistry(host_profile_for)
            self._call_registration("register_hardware_profiles", self._profiles)
        return self._profiles

    def keras_objects(self) -> dict[str, Any]:
        """Custom Keras objects from all plugins, for loading models (imports TF)."""
        if self._keras_objects is None:
            self._keras_objects = KerasObjectRegistry()
            self._call_registration("register_keras_objects", self._keras_objects)
        return self._keras_objects.as_dict()

    @property
    def metrics(self) -> MetricRegistry:
        """All registered fidelity metrics (built on first use)."""
        if self._metrics is None:
            self._metrics = MetricRegistry()
            self._call_registration("register_metrics", self._metrics)
        return self._metrics

    def fidelity_judge(
        self, tasks: dict[str, str] | None = None, metrics: dict[str, str] | None = None
    ) -> FidelityJudge:
        """A judge over this host's metrics with the run's ``--task``/``--metric`` choices."""
        return FidelityJudge(self.metrics, tasks, metrics)

    def run_context(self, **fields: Any) -> RunContext:
        """A ``RunContext`` wired to this host: LiteRT's float32 converter, the custom
        Keras objects and the metrics its plugins registered (``fields`` are RunContext's
        own)."""
        from compressor.litert.conversion import convert_float32

        fields.setdefault("float_converter", convert_float32)
        fields.setdefault("keras_objects", self.keras_objects())
        fields.setdefault("fidelity_judge", self.fidelity_judge())
        return RunContext(**fields)

    def notify(self, hook_name: str, **kwargs: Any) -> None:
        """Call a lifecycle hook on every plugin; a failing observer becomes a warning."""
        for plugin_name, _hook, exc in self._call_hook(hook_name, **kwargs):
            self.warnings.append(
                f"plugin '{plugin_name}' failed in {hook_name}: {type(exc).__name__}: {exc}"
            )

    def errors(self) -> list[PluginRecord]:
        """Plugins that failed to load or register."""
        return [r for r in self.records if r.error]


_HOST: PluginHost | None = None


def get_host() -> PluginHost:
    """The process-wide plugin host (created on first use)."""
    global _HOST
    if _HOST is None:
        _HOST = PluginHost()
    return _HOST


def reset_host() -> None:
    """Forget the process-wide host (tests, or after installing plugins)."""
    global _HOST
    _HOST = None
