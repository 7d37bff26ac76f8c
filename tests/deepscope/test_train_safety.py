"""`deepscope train` never writes over a run: fresh folders by default, exit 2 on a taken one,
--overwrite / --resume to say what to do (issue 18)."""

from __future__ import annotations

import hashlib
import re
import threading

import pytest

import zoo
from deepscope.cli import main
from zoo import writer


def digest(folder) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


TRAIN = ["-q", "train", "mlp-digits", "--epochs", "1", "--device", "cpu"]


def test_without_out_each_run_gets_a_fresh_folder(tmp_path, monkeypatch, capsys):
    # Arrange
    monkeypatch.chdir(tmp_path)
    # Act
    codes = [main(TRAIN), main(TRAIN)]
    first = digest(tmp_path / "runs" / "mlp-digits")
    third = main(TRAIN)
    # Assert
    assert codes == [0, 0] and third == 0
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == [
        "mlp-digits", "mlp-digits-2", "mlp-digits-3"]
    assert digest(tmp_path / "runs" / "mlp-digits") == first
    assert capsys.readouterr().err == ""


def test_a_folder_holding_a_run_is_exit_2_with_one_line(tmp_path, capsys):
    # Arrange
    out = tmp_path / "r"
    assert main([*TRAIN, "--out", str(out)]) == 0
    before = digest(out)
    acc = zoo.load_run(out).test_accuracy
    # Act
    code = main([*TRAIN, "--out", str(out)])
    # Assert
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert re.fullmatch(
        rf"deepscope: error: Run folder '{re.escape(str(out))}' already holds a complete run: "
        rf"mlp on digits \(preset mlp-digits\), test accuracy {acc:.4f}, 1 epoch, saved "
        r"[\d-]+ [\d:]+\. Replace it with overwrite=True \(CLI: --overwrite; the old run stays "
        r"readable until the new one is saved\), or train into another folder\.\n", err)
    assert digest(out) == before


def test_overwrite_replaces_the_run(tmp_path, capsys):
    out = tmp_path / "r"
    assert main([*TRAIN, "--out", str(out)]) == 0
    code = main([*TRAIN[:4], "2", "--device", "cpu", "--out", str(out), "--overwrite"])
    assert code == 0 and zoo.load_run(out).epoch == 2
    assert capsys.readouterr().err == ""


def test_resume_and_overwrite_cannot_be_given_together(tmp_path, capsys):
    code = main([*TRAIN, "--out", str(tmp_path / "r"), "--resume", "--overwrite"])
    assert code == 2
    assert "argument --overwrite: not allowed with argument --resume" in capsys.readouterr().err


def test_a_folder_another_process_writes_is_exit_2_naming_it(tmp_path, capsys):
    # Arrange: another writer (a thread here; processes race in tests/zoo) holds the folder
    out = tmp_path / "r"
    held, done = threading.Event(), threading.Event()

    def hold() -> None:
        with writer.writer_lock(out):
            held.set()
            done.wait(60)

    holder = threading.Thread(target=hold)
    holder.start()
    held.wait(60)
    # Act
    try:
        code = main([*TRAIN, "--out", str(out)])
    finally:
        done.set()
        holder.join()
    # Assert
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert err.startswith(f"deepscope: error: Run folder '{out}' is being written by pid ")


def test_an_unknown_preset_chooses_no_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "mlp-digitz"]) == 2
    assert not (tmp_path / "runs").exists()


@pytest.fixture
def no_audit(monkeypatch):
    from deepscope.commands import audit
    monkeypatch.setattr(audit, "run", lambda args: 0)


def test_demo_resumes_an_unfinished_default_run(tmp_path, no_audit, capsys):
    # Arrange: mlp-digits stopped after 1 epoch
    runs = tmp_path / "runs"
    zoo.train(preset="mlp-digits", out=runs / "mlp-digits", stop_after=1, progress=False,
              monitor=False)
    # Act
    code = main(["demo", "--runs", str(runs), "--presets", "mlp-digits", "--no-dashboard"])
    # Assert
    out = capsys.readouterr().out
    assert code == 0
    assert out.startswith(f"[demo] mlp-digits: resuming {runs / 'mlp-digits'} from epoch 1\n")
    run = zoo.load_run(runs / "mlp-digits")
    assert run.metrics["complete"] is True
    assert run.epoch == zoo.get_preset("mlp-digits").config["epochs"]


def test_demo_replaces_an_unreadable_default_run(tmp_path, no_audit, capsys):
    runs = tmp_path / "runs"
    (runs / "mlp-digits").mkdir(parents=True)
    (runs / "mlp-digits" / "run.json").write_text("{broken")
    code = main(["-q", "demo", "--runs", str(runs), "--presets", "mlp-digits", "--no-dashboard"])
    assert code == 0 and zoo.load_run(runs / "mlp-digits").metrics["complete"] is True
