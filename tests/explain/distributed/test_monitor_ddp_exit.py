"""A user's script under torchrun: a monitored DDP model that outlives destroy_process_group (kept
to interpreter exit) must not abort the processes at exit."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

_SCRIPT = textwrap.dedent('''
    import sys
    import torch
    import torch.distributed as dist
    from torch import nn
    from explain import TrainingMonitor

    dist.init_process_group("gloo")
    torch.manual_seed(0)
    model = nn.parallel.DistributedDataParallel(
        nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3)))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = torch.randn(64, 6), torch.randint(0, 3, (64,))
    mon = TrainingMonitor(model, every=2)
    mon.start()
    for s in range(8):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x[8 * s:8 * s + 8]), y[8 * s:8 * s + 8])
        loss.backward()
        opt.step()
        mon.step(loss=loss.detach())
    if sys.argv[1] == "closed":
        mon.close()
        model.keep = [model, mon]   # a reference cycle: freed by the collector, at exit
    dist.destroy_process_group()
    # one write per rank: print("steps", x) writes its pieces separately, and two ranks
    # sharing the pipe interleaved them ("stepssteps [0, 2, 4, 6]")
    sys.stdout.write(f"steps {mon.history.steps}\\n")
    sys.stdout.flush()
''')


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["open", "closed"])
def test_a_monitored_ddp_model_alive_at_exit_does_not_abort(tmp_path: Path, mode: str) -> None:
    # Arrange: the monitor left open (its hooks on the model) or closed and held in a cycle
    script = tmp_path / "user.py"
    script.write_text(_SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[3]),
                                          os.environ.get("PYTHONPATH", "")])}
    # Act
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                           "--nproc_per_node", "2", str(script), mode],
                          capture_output=True, text=True, env=env, timeout=240)
    # Assert: both ranks finished and exited cleanly
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("steps [0, 2, 4, 6]") == 2, done.stdout
    assert "terminate called" not in done.stderr
