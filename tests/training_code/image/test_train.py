"""Training the image CNN: learning, the script-mode contract, precision choice and resuming."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from image import data as image_data
from image import hardware as image_hardware
from image import preprocess as image_preprocess
from image import train as image_train

# fp32: `--precision auto` would train in bf16 on CPUs with native bf16 and in fp32 elsewhere, and the
# figures below would depend on the machine. bf16 and `auto` are tested on their own below.
ARGS = ["--epochs", "3", "--batch-size", "16", "--lr", "3e-3", "--width", "8", "--workers", "0",
        "--image-size", "16", "--augment", "none", "--no-export", "--precision", "fp32"]


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Ten classes of 16x16 digits, 30 each, split into train/validation/test."""
    root = tmp_path_factory.mktemp("digits")
    image_data.main(["--out", str(root / "raw"), "--source", "digits", "--per-class", "30", "--size", "16"])
    image_preprocess.main(["--input", str(root / "raw"), "--output-dir", str(root / "split")])
    return root / "split"


def _train(data: Path, out: Path, *extra: str) -> int:
    return image_train.main([
        "--train", str(data / "train"), "--validation", str(data / "validation"),
        "--model-dir", str(out / "model"), "--output-data-dir", str(out / "output"), *ARGS, *extra])


def _weights(model_dir: Path) -> dict[str, torch.Tensor]:
    saved: dict[str, Any] = torch.load(model_dir / "model.pt", weights_only=True)
    return saved["state_dict"]


def test_training_beats_chance_and_writes_the_model_contract(
        digits: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _train(digits, tmp_path) == 0
    out = capsys.readouterr().out
    accuracies = [float(v) for v in re.findall(r"^validation:accuracy=([0-9.]+)$", out, re.M)]
    assert len(accuracies) == 3 + 1  # one per epoch, and the final (best) model's
    assert re.search(r"^validation:loss=[0-9.]+$", out, re.M)
    assert accuracies[-1] >= 0.4, f"10 classes: chance is 0.1, got {accuracies}"

    model_dir = tmp_path / "model"
    meta = json.loads((model_dir / "model_meta.json").read_text())
    assert meta["inference_module"] == "image_inference"
    assert meta["workload"] == "image"
    assert meta["problem_type"] == "multiclass"
    assert meta["classes"] == [str(d) for d in range(10)]
    assert json.loads((model_dir / "labels.json").read_text()) == meta["classes"]
    assert meta["metrics"]["validation:accuracy"] == accuracies[-1]
    assert meta["training"]["precision"] == "fp32"
    history = json.loads((tmp_path / "output" / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2, 3]
    assert set(_weights(model_dir)) == set(image_train.build_model(image_train.ModelConfig(10, 1, 8, 16)).state_dict())


def test_an_interrupted_run_resumes_to_the_same_model(
        digits: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    _train(digits, tmp_path / "straight", "--checkpoint-dir", str(tmp_path / "ckpt_straight"))

    real_save = image_train.save_checkpoint
    saves: list[int] = []

    def crash_after_two(path: Path, state: dict[str, Any]) -> None:
        real_save(path, state)
        saves.append(state["progress"]["epoch"])
        if len(saves) == 2:
            raise KeyboardInterrupt("spot instance reclaimed")

    monkeypatch.setattr(image_train, "save_checkpoint", crash_after_two)
    with pytest.raises(KeyboardInterrupt):
        _train(digits, tmp_path / "resumed", "--checkpoint-dir", str(tmp_path / "ckpt"))
    assert not (tmp_path / "resumed" / "model").exists()
    capsys.readouterr()

    _train(digits, tmp_path / "resumed", "--checkpoint-dir", str(tmp_path / "ckpt"))
    out = capsys.readouterr().out
    assert "after epoch 2" in out
    assert re.findall(r"^epoch (\d+)/3", out, re.M) == ["3"], "only the missing epoch is trained"
    straight, resumed = _weights(tmp_path / "straight" / "model"), _weights(tmp_path / "resumed" / "model")
    for name, w in straight.items():
        torch.testing.assert_close(resumed[name], w, rtol=0, atol=1e-6, msg=name)


def test_a_checkpoint_from_other_settings_is_refused(digits: Path, tmp_path: Path) -> None:
    _train(digits, tmp_path / "a", "--checkpoint-dir", str(tmp_path / "ckpt"), "--epochs", "1")
    with pytest.raises(ValueError, match="different settings"):
        _train(digits, tmp_path / "b", "--checkpoint-dir", str(tmp_path / "ckpt"), "--width", "12")


def test_hyperparameters_take_both_spellings_and_a_typo_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SM_CHANNEL_TRAIN", "/data/train")
    monkeypatch.setenv("SM_MODEL_DIR", "/opt/ml/model")
    cfg = image_train.parse_config(["--batch_size", "32", "--image-size", "28", "--_tuning_objective_metric",
                                    "validation:accuracy"])
    assert (cfg.batch_size, cfg.image_size) == (32, 28)
    assert cfg.train == Path("/data/train") and cfg.model_dir == Path("/opt/ml/model")
    assert image_train.parse_config(["--train", "x"]).train == Path("x")  # the flag beats the variable
    assert image_train.parse_config(["--export", "false"]).export is False  # as a tuner passes booleans
    assert image_train.parse_config(["--no-export"]).export is False
    assert image_train.parse_config(["--export"]).export is True
    with pytest.raises(SystemExit):
        image_train.parse_config(["--learning-rate", "0.1"])
    with pytest.raises(SystemExit):
        image_train.parse_config(["--precision", "int4"])


def test_precision_follows_the_hardware(tmp_path: Path) -> None:
    resolve = image_train.resolve_precision
    assert resolve("auto", "cpu", False, {"avx2", "fma"}) == "fp32"  # bf16 emulated: slower, not faster
    assert resolve("auto", "cpu", False, {"avx512f", "avx512_bf16"}) == "bf16"
    assert resolve("auto", "cpu", False, {"amx_bf16", "amx_tile"}) == "bf16"
    assert resolve("auto", "cuda", True, set()) == "bf16"
    assert resolve("auto", "cuda", False, set()) == "fp16"
    assert resolve("bf16", "cpu", False, set()) == "bf16"  # asked for explicitly: honoured
    with pytest.raises(ValueError, match="fp16 needs a CUDA GPU"):
        resolve("fp16", "cpu", False, set())
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512_bf16\n")
    assert image_hardware.cpu_flags(cpuinfo) == {"fpu", "avx2", "avx512_bf16"}
    assert image_hardware.cpu_flags(tmp_path / "missing") == set()


def test_bf16_autocast_trains_on_cpu(digits: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _train(digits, tmp_path, "--precision", "bf16", "--epochs", "1")
    assert "precision bf16" in capsys.readouterr().out
    assert all(w.dtype == torch.float32 for w in _weights(tmp_path / "model").values())


def test_auto_precision_is_what_this_cpu_computes_natively(digits: Path, tmp_path: Path) -> None:
    """Whatever the machine: `auto` trains in the precision resolve_precision picks for its flags."""
    _train(digits, tmp_path, "--precision", "auto", "--epochs", "1")
    meta = json.loads((tmp_path / "model" / "model_meta.json").read_text())
    expected = image_train.resolve_precision("auto", "cpu", False, image_hardware.cpu_flags())
    assert meta["training"]["precision"] == expected


def test_positive_class_is_the_defect() -> None:
    assert image_train.positive_class(["defect", "ok"]) == "defect"
    assert image_train.positive_class(["cat", "dog"]) == "dog"
    assert image_train.positive_class(["a", "b", "c"]) is None


class _RecordingMlflow:
    """Stands in for the mlflow module (a real tracking store costs ~30 s of start-up per test)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any, Any]] = []

    def start_run(self) -> None:
        self.calls.append(("start_run", None, None))

    def log_params(self, params: dict[str, Any]) -> None:
        self.calls.append(("log_params", params, None))

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        self.calls.append(("log_metrics", metrics, step))

    def log_artifact(self, path: str) -> None:
        self.calls.append(("log_artifact", path, None))

    def end_run(self) -> None:
        self.calls.append(("end_run", None, None))


def test_metrics_go_to_mlflow_only_when_a_tracking_uri_is_set(
        digits: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = _RecordingMlflow()
    monkeypatch.setitem(sys.modules, "mlflow", fake)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    _train(digits, tmp_path / "off", "--epochs", "1")
    assert fake.calls == []

    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.invalid")
    _train(digits, tmp_path / "on", "--epochs", "2")
    names = [c[0] for c in fake.calls]
    assert names[0] == "start_run" and names[-1] == "end_run"
    params = next(p for n, p, _ in fake.calls if n == "log_params")
    assert params["width"] == 8 and params["precision_used"] == "fp32"
    per_epoch = [(m, step) for n, m, step in fake.calls if n == "log_metrics" and step is not None]
    assert [step for _, step in per_epoch] == [1, 2]
    assert set(per_epoch[0][0]) == {"train_loss", "validation_loss", "validation_accuracy"}
    final = next(m for n, m, step in fake.calls if n == "log_metrics" and step is None)
    meta = json.loads((tmp_path / "on" / "model" / "model_meta.json").read_text())
    assert final["final_validation_accuracy"] == meta["metrics"]["validation:accuracy"]


def test_several_instances_without_torchrun_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two SageMaker hosts and no torch.distributed launch would train two separate models."""
    monkeypatch.setenv("SM_HOSTS", json.dumps(["algo-1", "algo-2"]))
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    with pytest.raises(SystemExit, match=r"2 instances \(algo-1, algo-2\) but no torch.distributed launch"):
        image_train.setup_distributed()
    monkeypatch.setenv("SM_HOSTS", json.dumps(["algo-1"]))
    assert image_train.setup_distributed().world == 1
