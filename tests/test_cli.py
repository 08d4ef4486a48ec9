"""The `compressor` command end to end, in subprocesses, with real TF/tfmot/LiteRT."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.conftest import (
    REPO,
    assert_integer_only,
    build_tiny_cnn,
    invoke_cli,
    run_cli,
    run_ok,
)

REPORT_KEYS = {"profile", "plan", "stages", "baseline", "result", "artifact"}
MEASURE_KEYS = {"size_bytes", "gzip_bytes", "host_latency_ms", "estimated_latency_ms", "fidelity"}


def _assert_one_line_error(result: subprocess.CompletedProcess, *needles: str) -> None:
    assert result.returncode not in (0, 1), result.stderr
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    text = " ".join(lines)
    assert text.startswith("error:"), result.stderr
    for needle in needles:
        assert needle in text, text


def test_light_commands_do_not_import_tensorflow():
    script = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from compressor.cli.app import app\n"
        "for args in (['--help'], ['profiles'], ['plugins'], ['plan', '--profile', 'pixel-gpu'],"
        " ['plan', '--profile', 'edgetpu'], ['plan', '--profile', 'x86-cpu']):\n"
        "    result = CliRunner().invoke(app, args)\n"
        "    assert result.exit_code == 0, (args, result.output)\n"
        "heavy = [m for m in ('tensorflow', 'tf_keras', 'ai_edge_litert') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "print('ok')\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0 and "ok" in result.stdout, result.stderr


def test_profiles_plugins_and_plans_show_their_tables():
    profiles = run_cli("profiles")
    assert profiles.returncode == 0
    for name in ("pixel-gpu", "pixel-cpu", "x86-cpu", "edgetpu"):
        assert name in profiles.stdout
    plugins = run_cli("plugins")
    assert plugins.returncode == 0
    assert "compressor.strategies.prune" in plugins.stdout and "magnitude-prune" in plugins.stdout
    assert "swaps={}" in plugins.stdout and "PydanticUndefined" not in plugins.stdout


def _planned(tmp_path: Path, profile: str) -> tuple[subprocess.CompletedProcess, list[str]]:
    path = tmp_path / f"{profile}.yaml"
    result = run_cli("plan", "--profile", profile, "--output", str(path))
    assert result.returncode == 0, result.stderr
    return result, [s["strategy"] for s in yaml.safe_load(path.read_text())["stages"]]


@pytest.mark.parametrize(
    ("profile", "stages"),
    [
        ("pixel-gpu", ["tflite-float16", "litert-evaluate"]),
        ("x86-cpu", ["space-to-depth", "tflite-dynamic-int8", "litert-evaluate"]),
        ("edgetpu", ["tfmot-qat", "tflite-full-int8", "litert-evaluate"]),  # QAT measured to help
    ],
)
def test_plans_for_the_default_model_have_these_exact_stages(tmp_path, profile, stages):
    result, planned = _planned(tmp_path, profile)
    assert planned == stages
    for column in ("est. latency on", "est. SSIM", "predicted coverage", "Predicted (cost model"):
        assert column in result.stdout


def test_unknown_profile_is_one_line_error():
    _assert_one_line_error(invoke_cli("plan", "--profile", "nosuch"), "unknown profile 'nosuch'")


@pytest.fixture
def saved_cnn(tmp_path: Path) -> Path:
    path = tmp_path / "model.keras"
    build_tiny_cnn().save(path)
    return path


def _run_dir_is_valid(run_dir: Path) -> dict:
    report = json.loads((run_dir / "report.json").read_text())
    assert set(report) >= REPORT_KEYS
    for side in ("baseline", "result"):
        assert set(report[side]) >= MEASURE_KEYS
    for stage in report["stages"]:
        assert {"name", "strategy", "params", "seconds"} <= set(stage)
        assert (run_dir / stage["output"]).exists()
    assert (run_dir / "plan.yaml").is_file()
    return report


@pytest.mark.slow
def test_run_default_model_on_x86_cpu(tmp_path):
    out = tmp_path / "run"
    result = run_cli("run", "--profile", "x86-cpu", "--input-size", "64", "--output", str(out))
    assert result.returncode == 0, result.stderr[-2000:]
    report = _run_dir_is_valid(out)
    assert report["model"]["source"].startswith("built-in demo style generator")
    assert report["model"]["input_shape"] == [None, 64, 64, 3]
    assert (out / "report.html").is_file()
    # The README's main job: proven, not predicted. The shipped result meets the default
    # floor on held-out photos, and on this host (the target) it is the float model or a
    # candidate not slower than it; which one depends on this host's measurements.
    search = report["search"]
    assert search["met"] and report["constraints"]["met"]
    assert report["result"]["fidelity"]["ssim"] >= 0.99
    chosen = next(c for c in search["candidates"] if c["outcome"] == "chosen")
    if report["profile"]["runs_on_this_host"]:
        # ranked in a latency tier no slower than float32's (ties: not measurably slower)
        assert chosen["latency_tier_ms"] <= search["baseline_latency_tier_ms"]
    assert len([c for c in search["candidates"] if c["measured"]]) >= 3
    assert "Candidates measured" in result.stdout
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(out / report["artifact"]))
    interpreter.allocate_tensors()
    detail = interpreter.get_input_details()[0]
    interpreter.set_tensor(detail["index"], np.zeros(detail["shape"], detail["dtype"]))
    interpreter.invoke()
    shown = run_cli("report", str(out))
    assert shown.returncode == 0 and "host latency" in shown.stdout
    as_json = run_cli("report", str(out), "--json")
    assert json.loads(as_json.stdout)["artifact"] == report["artifact"]
    again = run_cli("run", "--profile", "x86-cpu", "--output", str(out))
    _assert_one_line_error(again, "already exists")


@pytest.mark.slow
def test_edgetpu_run_gives_integer_only_tflite(tmp_path, saved_cnn, images_dir):
    out = tmp_path / "tpu"
    plan = tmp_path / "tpu-plan.yaml"
    planned = run_cli("plan", "--profile", "edgetpu", "--model", str(saved_cnn), "-o", str(plan))
    assert planned.returncode == 0, planned.stderr
    assert yaml.safe_load(plan.read_text())["stages"][-2]["strategy"] == "tflite-full-int8"
    run_ok(out, "--profile", "edgetpu", "--model", str(saved_cnn), "--data", str(images_dir))
    report = _run_dir_is_valid(out)
    from compressor.litert.tflite_runtime import list_operators

    assert_integer_only(list_operators((out / report["artifact"]).read_bytes()))


@pytest.mark.slow
def test_edited_plan_runs_with_model_and_data(tmp_path, saved_cnn, images_dir):
    plan = tmp_path / "plan.yaml"
    planned = run_cli("plan", "--profile", "x86-cpu", "-m", str(saved_cnn), "-o", str(plan))
    assert planned.returncode == 0
    data = yaml.safe_load(plan.read_text())
    data["stages"] = [
        {
            "stage": "prune",
            "strategy": "magnitude-prune",
            "params": {"target_sparsity": 0.6, "fine_tune_steps": 4, "batch_size": 2},
        },
        {"stage": "fuse", "strategy": "fold-batchnorm"},
        {"stage": "quantize", "strategy": "tflite-full-int8", "params": {"io_type": "float32"}},
        {"stage": "evaluate", "strategy": "litert-evaluate", "params": {"runs": 3}},
    ]
    plan.write_text(yaml.safe_dump(data))
    out = tmp_path / "edited"
    run_ok(out, "--plan", str(plan), "--model", str(saved_cnn), "--data", str(images_dir))
    report = _run_dir_is_valid(out)
    assert [s["strategy"] for s in report["stages"]] == [
        "magnitude-prune",
        "fold-batchnorm",
        "tflite-full-int8",
        "litert-evaluate",
    ]
    assert report["stages"][0]["facts"]["sparsity"] >= 0.5  # 4-step schedule undershoots 0.6
    assert report["result"]["weight_zero_fraction"] > 0.3
    # Sparsity shrinks gzip at equal precision: the same model, unpruned, full int8.
    import tf_keras as keras

    from compressor.core.datasets import load_image_folder
    from compressor.litert.conversion import convert_keras
    from compressor.litert.measurement import gzip_size, weight_zero_fraction

    dense = convert_keras(
        keras.models.load_model(saved_cnn),
        "int8",
        load_image_folder(images_dir, (32, 32, 3)).train,
        "float32",
    )
    assert weight_zero_fraction(dense) < 0.05
    assert report["result"]["gzip_bytes"] < 0.9 * gzip_size(dense)


def _dense_model(tmp_path: Path) -> Path:
    import tf_keras as keras

    model = keras.Sequential([keras.Input((10,)), keras.layers.Dense(4)])
    path = tmp_path / "dense.keras"
    model.save(path)
    return path


@pytest.mark.parametrize(
    "case",
    ["missing", "corrupt", "not-image", "empty-data", "bad-images", "bad-plan", "bad-profile-yaml"],
)
def test_bad_input_is_one_clear_line_and_writes_nothing(tmp_path, saved_cnn, images_dir, case):
    out = tmp_path / "out"
    args = ["run", "--profile", "x86-cpu", "--output", str(out)]
    expected: tuple[str, ...] = ()
    if case == "missing":
        args += ["--model", str(tmp_path / "nope.keras")]
        expected = ("does not exist",)
    elif case == "corrupt":
        bad = tmp_path / "bad.keras"
        bad.write_bytes(b"not a zip at all")
        args += ["--model", str(bad)]
        expected = ("not a valid .keras archive",)
    elif case == "not-image":
        args += ["--model", str(_dense_model(tmp_path))]
        expected = ("is not an image",)
    elif case == "empty-data":
        empty = tmp_path / "empty"
        empty.mkdir()
        args += ["--model", str(saved_cnn), "--data", str(empty)]
        expected = ("has no image files",)
    elif case == "bad-images":
        junk = tmp_path / "junk"
        junk.mkdir()
        (junk / "a.png").write_bytes(b"garbage")
        args += ["--model", str(saved_cnn), "--data", str(junk)]
        expected = ("no readable image",)
    elif case == "bad-plan":
        plan = tmp_path / "plan.yaml"
        plan.write_text("profile: x86-cpu\nstages:\n- stage: quantize\n  strategy: tflite-int4\n")
        args = ["run", "--plan", str(plan), "--model", str(saved_cnn), "--output", str(out)]
        expected = ("unknown strategy 'tflite-int4'", "plan.yaml")
    elif case == "bad-profile-yaml":
        profile = tmp_path / "board.yaml"
        profile.write_text("name: board\nthreads: two\n")
        args = ["run", "--profile", str(profile), "--output", str(out)]
        expected = ("board.yaml", "threads")
    _assert_one_line_error(invoke_cli(*args), *expected)
    assert not out.exists()


def test_debug_flag_shows_the_traceback():
    result = run_cli("--debug", "plan", "--profile", "nosuch")
    assert result.returncode != 0 and "Traceback" in result.stderr


def test_report_of_a_non_run_is_an_error(tmp_path):
    _assert_one_line_error(invoke_cli("report", str(tmp_path)), "no report.json")


def test_readme_states_the_test_command():
    readme = (REPO / "README.md").read_text()
    assert "pip install -e '.[dev]'" in readme and "python -m pytest" in readme


def test_piped_output_honours_columns():
    result = run_cli("profiles", env_extra={"COLUMNS": "90"})
    assert result.returncode == 0
    assert max(len(line) for line in result.stdout.splitlines()) <= 90


def test_tables_at_80_columns_break_no_word_and_why_lines_name_whole_pipelines(host):
    """Every pipeline label of the plan's tables appears whole (wrapped at spaces, never
    inside a token such as prune-channels(0.75,4)), and no line exceeds 80 columns."""
    from compressor.models.default import default_model_info
    from compressor.planning.planner import plan_pipeline

    result = run_cli("plan", "--profile", "pixel-gpu", env_extra={"COLUMNS": "80"})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    cells = " ".join(part.strip() for line in lines for part in line.split("│"))
    profile = host.profiles.resolve("pixel-gpu")
    planned = plan_pipeline(profile, default_model_info(), host.strategies)
    for candidate in planned.ranked[1:6]:
        for token in candidate.label.split():
            assert token in cells.split(), token
    why = planned.reasons["quantize"]
    assert any(f"beats {c.label}:" in why for c in planned.ranked[1:]), why
