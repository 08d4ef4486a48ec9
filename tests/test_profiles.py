"""Hardware profiles: shipped ones load; invalid YAML is rejected naming file and field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from compressor.core.errors import ProfileError
from compressor.core.host import host_arch, host_isa
from compressor.core.profiles import builtin_profile_paths, load_profile_file
from tests.conftest import invoke_cli, run_cli

REQUIRED = {"pixel-gpu", "pixel-cpu", "x86-cpu", "edgetpu"}


def _builtin(name: str):
    return load_profile_file(next(p for p in builtin_profile_paths() if p.stem == name))


@pytest.mark.fast
def test_shipped_profiles_load_and_state_their_targets(host):
    assert set(host.profiles.names()) >= REQUIRED
    gpu = host.profiles.resolve("pixel-gpu")
    assert gpu.delegate == "gpu" and gpu.runs("float16") and not gpu.runs("int8")
    tpu = host.profiles.resolve("edgetpu")
    assert tpu.requires_full_integer and set(tpu.precisions) == {"int8"}
    assert set(tpu.io_types) <= {"int8", "uint8"}
    for name in ("x86-cpu", "pixel-cpu"):
        cpu = host.profiles.resolve(name)
        assert cpu.delegate == "xnnpack" and cpu.runs("int8")


def _write(tmp_path: Path, data) -> Path:
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def _base() -> dict:
    return yaml.safe_load(builtin_profile_paths()[0].read_text())


@pytest.mark.fast
def test_unknown_key_names_file_and_field(tmp_path):
    data = _base() | {"trheads": 4}
    with pytest.raises(ProfileError) as error:
        load_profile_file(_write(tmp_path, data))
    assert "p.yaml" in error.value.message and "trheads: unknown key" in error.value.message


@pytest.mark.fast
def test_wrong_type_and_missing_field_are_errors(tmp_path):
    data = _base() | {"threads": "many"}
    with pytest.raises(ProfileError, match="threads"):
        load_profile_file(_write(tmp_path, data))
    data = _base()
    del data["supported_ops"]
    with pytest.raises(ProfileError, match="supported_ops: Field required"):
        load_profile_file(_write(tmp_path, data))
    data = _base()
    data["precisions"]["int4"] = {"gmacs_per_s": 1.0, "gelems_per_s": 1.0}
    with pytest.raises(ProfileError, match="precisions.int4"):
        load_profile_file(_write(tmp_path, data))


@pytest.mark.fast
def test_not_yaml_and_not_mapping(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: edge\nthreads: [unclosed\n", encoding="utf-8")
    with pytest.raises(ProfileError, match=r"line 3, column 1: expected ',' or ']'"):
        load_profile_file(path)
    path.write_text("- a\n- b\n", encoding="utf-8")
    with pytest.raises(ProfileError, match="expected a mapping"):
        load_profile_file(path)


@pytest.mark.fast
def test_resolve_by_path_and_unknown_name(host, tmp_path):
    data = _base() | {"name": "my-board"}
    path = _write(tmp_path, data)
    assert host.profiles.resolve(str(path)).name == "my-board"
    with pytest.raises(ProfileError, match="unknown profile 'nosuch'"):
        host.profiles.resolve("nosuch")
    with pytest.raises(ProfileError, match="does not exist"):
        host.profiles.resolve(str(tmp_path / "missing.yaml"))


@pytest.mark.fast
def test_profiles_show_prints_one_profile_as_json():
    import json

    from tests.conftest import run_cli

    result = run_cli("profiles", "--show", "edgetpu")
    assert result.returncode == 0
    assert json.loads(result.stdout)["requires_full_integer"] is True


def test_calibration_fits_rates_that_reproduce_the_measured_latencies(host):
    from compressor.engine.calibration import fit_profile, measure_workloads
    from compressor.planning.cost_model import estimate_latency_ms

    base = host.profiles.resolve("x86-cpu")
    measured = measure_workloads(["float32", "int8"], threads=1, size=16, runs=3)
    assert {(m.workload, m.precision) for m in measured} == {
        (w, p) for w in ("overhead", "conv", "elementwise", "norm") for p in ("float32", "int8")
    }
    assert all(m.latency_ms > 0 for m in measured)
    calibrated = fit_profile(base, measured, "x86-here", "test host")
    assert calibrated.name == "x86-here" and calibrated.description.startswith("test host (")
    assert calibrated.precisions["dynamic_int8"] == base.precisions["dynamic_int8"]  # untouched
    for precision in ("float32", "int8"):
        spec = calibrated.precisions[precision]
        assert spec.gmacs_per_s > 0 and spec.gelems_per_s > 0 and spec.norm_gelems_per_s > 0
    # the conv workload is dominated by MACs: the fitted profile explains its latency
    from compressor.core.model_info import model_info_from_keras
    from compressor.engine.calibration import _workloads

    conv_info = model_info_from_keras(_workloads(16)["conv"])
    conv = next(m for m in measured if m.workload == "conv" and m.precision == "float32")
    estimate = estimate_latency_ms(calibrated, conv_info, "float32")
    assert estimate == pytest.approx(conv.latency_ms, rel=0.05)


@pytest.mark.slow
@pytest.mark.skipif(host_arch() != "x86_64", reason="x86-cpu describes an x86_64 host")
def test_calibrate_command_writes_a_profile_the_planner_accepts(tmp_path):
    output = tmp_path / "mine.yaml"
    args = ("profiles", "calibrate", "x86-cpu", "-o", str(output), "--size", "8", "--runs", "3")
    result = run_cli(*args)
    assert result.returncode == 0, result.stderr[-2000:]
    profile = load_profile_file(output)
    assert profile.name == "x86-cpu-calibrated"
    assert set(profile.precisions) == set(_builtin("x86-cpu").precisions)
    assert profile.arch == "x86_64" and list(profile.isa) == list(host_isa())
    assert output.read_text().startswith("# Calibrated by `compressor profiles calibrate x86-cpu`")
    assert run_cli("plan", "--profile", str(output)).returncode == 0
    again = run_cli("profiles", "calibrate", "x86-cpu", "-o", str(output))
    assert again.returncode != 0 and "already exists" in again.stderr


@pytest.mark.fast
@pytest.mark.parametrize("name", ["pixel-gpu", "edgetpu", "pixel-cpu"])
def test_calibrate_refuses_a_profile_whose_target_is_not_this_host(tmp_path, name):
    if name == "pixel-cpu" and host_arch() == "arm64":
        pytest.skip("pixel-cpu is an arm64 CPU profile: this host may calibrate it")
    output = tmp_path / "mine.yaml"
    result = invoke_cli("profiles", "calibrate", name, "-o", str(output))
    assert result.returncode == 2 and not output.exists()
    message = result.stderr.strip().splitlines()[0]
    assert f"profile {name} targets" in message and "cannot be measured here" in message
