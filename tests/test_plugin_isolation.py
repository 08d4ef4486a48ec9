"""A plugin's exception drops or fails only its own strategy, named with the plugin; hooks
go through pluggy (tracing, tryfirst)."""

from __future__ import annotations

import pytest

from compressor.api import Estimate, Strategy, StrategyConfig, Support, hookimpl
from compressor.core.errors import PlanError, StageError
from compressor.models.default import default_model_info
from compressor.planning.plan import Plan, StageSpec
from compressor.planning.planner import plan_pipeline
from tests.conftest import invoke_cli

PROFILES = ("x86-cpu", "pixel-cpu", "pixel-gpu", "edgetpu")


def _plugin_with(method: str):
    """A plugin whose quantize strategy 'fragile-int8' raises in ``method``."""

    class Fragile(Strategy):
        name = "fragile-int8"
        stage = "quantize"
        summary = "raises on purpose"
        Config = StrategyConfig
        produces_precision = "int8"

        def candidate_params(self, profile, info):
            if method == "candidate_params":
                raise RuntimeError("kaboom")
            return [{}]

        def supports(self, profile, info, pipeline):
            if method == "supports":
                raise RuntimeError("kaboom")
            return Support.yes()

        def estimate(self, profile, info, params, pipeline):
            if method == "estimate":
                raise RuntimeError("kaboom")
            return Estimate(precision="int8", ssim_loss=0.0)  # tempting: it would win

        def rewrite_info(self, info, params):
            if method == "rewrite_info":
                raise RuntimeError("kaboom")
            return info

        def apply(self, artifact, context, config):
            raise RuntimeError("kaboom in apply")

    class Plugin:
        @hookimpl
        def register_strategies(self, registry):
            registry.add(Fragile)

    return Plugin()


@pytest.mark.parametrize("method", ["candidate_params", "supports", "estimate", "rewrite_info"])
def test_a_raising_planning_method_drops_only_that_strategy(plugin_host, method):
    plugin_host.add_plugin(_plugin_with(method), "fragile-plugin")
    info = default_model_info(32)
    for profile in PROFILES:
        result = plan_pipeline(plugin_host.profiles.resolve(profile), info, plugin_host.strategies)
        assert "fragile-int8" not in result.chosen.label
        expected = f"plugin 'fragile-plugin': strategy 'fragile-int8' failed in {method}"
        assert any(expected in w and "kaboom" in w for w in result.warnings), result.warnings
        rejected = [r.reason for r in result.rejections if r.strategy == "fragile-int8"]
        assert rejected and expected in rejected[0]


def test_a_raising_apply_fails_the_stage_naming_plugin_and_strategy(
    plugin_host, tmp_path, images_dir
):
    from compressor.engine.job import SearchOptions, run_job

    plugin_host.add_plugin(_plugin_with("none"), "fragile-plugin")
    plan = Plan(
        profile="x86-cpu",
        stages=[StageSpec(stage="quantize", strategy="fragile-int8"),
                StageSpec(stage="evaluate", strategy="litert-evaluate")],
    )  # fmt: skip
    plan.save(tmp_path / "plan.yaml")
    with pytest.raises(StageError) as caught:
        run_job(plugin_host, None, tmp_path / "plan.yaml", None, images_dir, tmp_path / "run",
                input_size=32, options=SearchOptions(search=False))  # fmt: skip
    assert "fragile-int8, plugin 'fragile-plugin'" in caught.value.message
    assert "kaboom in apply" in caught.value.message


@pytest.mark.fast
def test_a_plugin_failing_to_register_is_warned_about_and_named_for_unknown_strategies(
    plugin_host, monkeypatch
):
    class Broken:
        @hookimpl
        def register_strategies(self, registry):
            raise ImportError("No module named 'fancy_kernels'")

    plugin_host.add_plugin(Broken(), "fancy-plugin")
    with pytest.raises(PlanError) as caught:
        plugin_host.strategies.get("fancy-int4")
    assert "fancy-plugin" in caught.value.hint and "fancy_kernels" in caught.value.hint
    with pytest.raises(PlanError) as caught:
        plugin_host.strategies.get("tflite-float61")
    assert "did you mean tflite-float16" in caught.value.hint
    monkeypatch.setattr("compressor.engine.plugin_host._HOST", plugin_host)
    result = invoke_cli("plan", "--profile", "edgetpu")
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if "warning:" in line]
    assert len(warnings) == 1 and "plugin 'fancy-plugin'" in warnings[0]
    assert "fancy_kernels" in warnings[0]


@pytest.mark.fast
def test_hooks_run_through_pluggy_tryfirst_first(plugin_host):
    calls = []

    class Early:
        @hookimpl(tryfirst=True)
        def on_run_started(self, context):
            calls.append("early")

    class Late:
        @hookimpl
        def on_run_started(self, context):
            calls.append("late")

    plugin_host.add_plugin(Early(), "early")
    plugin_host.add_plugin(Late(), "late")  # registered last: pluggy would call it first
    plugin_host.notify("on_run_started", context=None)
    assert calls == ["early", "late"]


@pytest.mark.fast
def test_trace_env_prints_hook_calls(monkeypatch, capsys):
    from compressor.engine.plugin_host import PluginHost

    monkeypatch.setenv("COMPRESSOR_TRACE_HOOKS", "1")
    host = PluginHost(load_entrypoints=False)
    host.strategies  # noqa: B018 - calls register_strategies through pluggy
    err = capsys.readouterr().err
    assert "register_strategies [hook]" in err and "finish register_strategies" in err
