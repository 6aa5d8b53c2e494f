"""Live progress: the trainer's file and the line `sqlft run` prints from it while a notebook trains."""

import json
import time
from types import SimpleNamespace

from sqlft.progress import ProgressFile, ProgressPrinter, progress_line


def test_the_progress_file_says_step_loss_and_time_left(tmp_path):
    path = tmp_path / "phase1" / "progress.json"
    callback = ProgressFile(path)
    state = SimpleNamespace(global_step=10, max_steps=40, is_world_process_zero=True)
    callback.on_train_begin(None, state, None)
    callback.on_log(None, state, None, logs={"loss": 0.5})
    state.global_step = 20
    callback.on_step_end(None, state, None)
    progress = json.loads(path.read_text())
    assert progress["step"] == 20 and progress["max_steps"] == 40 and progress["loss"] == 0.5
    assert progress["seconds_left"] >= 0
    assert progress_line(progress).startswith("step 20/40  loss 0.500  about ")


def test_the_printer_prints_each_change_once(tmp_path):
    path, lines = tmp_path / "progress.json", []
    with ProgressPrinter(path, "phase1", lines.append, every=0.02) as printer:
        time.sleep(0.1)  # no file yet: nothing printed
        path.write_text(json.dumps({"step": 1, "max_steps": 4, "loss": None, "seconds_left": 90}))
        time.sleep(0.2)
    assert lines == ["phase1: step 1/4  loss -  about 1.5 min left"] and printer.printed
