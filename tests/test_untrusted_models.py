"""A model file is untrusted input: code it carries never runs unless --trust-model, on
every path that loads a model (run, plan, a plan's ``model:``, stylize); the format is
read from the bytes, not the suffix."""

from __future__ import annotations

import shutil

import pytest

from compressor.core.errors import ModelError
from compressor.ingest.keras_io import load_user_model
from compressor.ingest.model_trust import code_in_config, h5_model_config, sniff_format
from compressor.planning.plan import Plan, StageSpec
from tests.conftest import assert_one_line_error, build_lambda_model, invoke_cli


@pytest.fixture(scope="module")
def lambda_h5(tmp_path_factory):
    """(model.h5 whose Lambda touches ``marker``, marker path) — the marker must stay absent."""
    root = tmp_path_factory.mktemp("lambda")
    marker = root / "code-ran.txt"
    path = root / "lambda.h5"
    build_lambda_model(marker).save(path, save_format="h5")
    assert not marker.exists()
    return path, marker


def test_the_lambda_is_found_in_the_h5_config_without_deserializing(lambda_h5):
    path, marker = lambda_h5
    assert sniff_format(path) == "hdf5"
    found = code_in_config(h5_model_config(path))
    assert found == ["Lambda layer 'touches_a_file' (Python code)"]
    with pytest.raises(ModelError, match="carries code") as caught:
        load_user_model(path, {}, trust=False)
    assert "--trust-model" in caught.value.hint
    assert not marker.exists()


def test_run_plan_and_stylize_refuse_it_and_no_code_runs(lambda_h5, images_dir, tmp_path):
    path, marker = lambda_h5
    out = tmp_path / "run"
    result = invoke_cli("run", "--model", str(path), "--profile", "x86-cpu",
                        "--data", str(images_dir), "--output", str(out))  # fmt: skip
    assert_one_line_error(result, "carries code", "Lambda", "--trust-model")
    assert not out.exists()
    result = invoke_cli("plan", "--model", str(path), "--profile", "x86-cpu")
    assert_one_line_error(result, "carries code")
    result = invoke_cli("stylize", "--model", str(path), "--input", str(images_dir),
                        "--output", str(tmp_path / "styled"))  # fmt: skip
    assert_one_line_error(result, "carries code")
    assert not marker.exists()


def test_a_plans_model_field_is_checked_too(lambda_h5, images_dir, tmp_path):
    path, marker = lambda_h5
    plan = Plan(profile="x86-cpu", model=str(path),
                stages=[StageSpec(stage="quantize", strategy="tflite-float16"),
                        StageSpec(stage="evaluate", strategy="litert-evaluate")])  # fmt: skip
    plan.save(tmp_path / "plan.yaml")
    result = invoke_cli("run", "--plan", str(tmp_path / "plan.yaml"), "--data", str(images_dir),
                        "--output", str(tmp_path / "run"))  # fmt: skip
    assert_one_line_error(result, "carries code")
    assert not marker.exists()


def test_the_suffix_does_not_decide_the_format(lambda_h5, tmp_path):
    """An HDF5 file named .keras is read as HDF5 and checked as one (Keras would have
    loaded it outside safe mode)."""
    path, marker = lambda_h5
    disguised = tmp_path / "model.keras"
    shutil.copy(path, disguised)
    result = invoke_cli("plan", "--model", str(disguised), "--profile", "x86-cpu")
    assert_one_line_error(result, "carries code")
    not_a_model = tmp_path / "notes.keras"
    not_a_model.write_text("just text")
    result = invoke_cli("plan", "--model", str(not_a_model), "--profile", "x86-cpu")
    assert_one_line_error(result, "notes.keras", "not a valid .keras archive")
    assert not marker.exists()


def test_trust_model_loads_it_and_the_code_runs(lambda_h5, tmp_path):
    """The refusal is the check, not a broken file: trusted, the same file loads."""
    path, marker = lambda_h5
    trusted = tmp_path / "trusted.h5"
    shutil.copy(path, trusted)
    result = invoke_cli("plan", "--model", str(trusted), "--profile", "x86-cpu", "--trust-model")
    assert result.returncode == 0, result.stderr[-2000:]
    assert marker.exists()
    marker.unlink()
