"""Data parallelism: the same run on 1 and 4 (forced CPU) devices, and checkpoints across device counts.

Each run is a `python -m ganjax.main` subprocess, since the device count is
fixed when JAX starts. Runs that do not depend on each other start together.
"""

import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

import ganjax
from ganjax import train
from ganjax.errors import ConfigError
from tests.conftest import ROOT, forced_devices

# Measured on the tiny config after 20 steps: 1.8e-5 (G, including Adam
# moments and BatchNorm statistics) and 3e-8 (D). Only the order of the
# cross-device sums differs.
ATOL = 1e-4


def _start(workdir, devices: int, steps: int) -> subprocess.Popen:
  args = [
    '--config=experiments/tiny.py',
    f'--workdir={workdir}',
    f'--config.train.num_steps={steps}',
    '--config.eval.every_steps=0',
    '--config.train.sample_every_steps=0',
  ]
  env = {**os.environ, 'PYTHONUNBUFFERED': '1', **forced_devices(devices)}
  return subprocess.Popen(
    [sys.executable, '-m', 'ganjax.main', *args],
    cwd=ROOT,
    env=env,
    stdout=subprocess.PIPE,
    stderr=subprocess.STDOUT,
    text=True,
  )


def _wait(*procs: subprocess.Popen) -> list[str]:
  outs = []
  for proc in procs:
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    outs.append(out)
  return outs


def _float_leaves(run: ganjax.Run) -> list[np.ndarray]:
  leaves = jax.tree.leaves({'g': run.g_state, 'd': run.d_state})
  return [
    np.asarray(x, np.float64) for x in leaves if hasattr(x, 'dtype') and jax.numpy.issubdtype(x.dtype, np.floating)
  ]


def _assert_close(a: ganjax.Run, b: ganjax.Run) -> None:
  assert a.step == b.step
  for x, y in zip(_float_leaves(a), _float_leaves(b), strict=True):
    np.testing.assert_allclose(x, y, rtol=0, atol=ATOL)


def _train_losses(workdir) -> dict[int, float]:
  records = [json.loads(line) for line in (workdir / 'metrics.jsonl').read_text().splitlines()]
  return {r['step']: r['d_loss'] for r in records if 'd_loss' in r}


@pytest.fixture(scope='module')
def reference_runs(tmp_path_factory):
  """The tiny config for 20 steps on 1 device and on 4 devices."""
  root = tmp_path_factory.mktemp('parallel')
  one, four = root / 'one', root / 'four'
  outs = _wait(_start(one, 1, 20), _start(four, 4, 20))
  assert 'on 1 device(s)' in outs[0] and 'on 4 device(s)' in outs[1]
  return one, four


def test_four_devices_follow_the_one_device_trajectory(reference_runs):
  one, four = reference_runs
  # The 4-device checkpoint is restored here, on this process' single device.
  _assert_close(ganjax.restore(one), ganjax.restore(four))
  losses_one, losses_four = _train_losses(one), _train_losses(four)
  assert losses_one.keys() == losses_four.keys() == {5, 10, 15, 20}
  np.testing.assert_allclose(list(losses_four.values()), list(losses_one.values()), rtol=1e-5)


def test_checkpoints_resume_on_another_device_count(reference_runs, tmp_path):
  one, _ = reference_runs
  from_four, from_one = tmp_path / 'from_four', tmp_path / 'from_one'
  _wait(_start(from_four, 4, 10), _start(from_one, 1, 10))
  # Saved on 4 devices, resumed on 1; saved on 1, resumed on 4.
  outs = _wait(_start(from_four, 1, 20), _start(from_one, 4, 20))
  assert all('resuming from the checkpoint at step 10' in out for out in outs)
  _assert_close(ganjax.restore(from_four), ganjax.restore(one))
  _assert_close(ganjax.restore(from_one), ganjax.restore(one))


def test_batch_must_divide_by_the_device_count(tiny_config, tmp_path, monkeypatch):
  monkeypatch.setattr(jax, 'device_count', lambda: 3)
  with pytest.raises(ConfigError, match=r'train.batch_size=16 is the global batch and must divide by the 3 devices'):
    train.train_and_evaluate(tiny_config, tmp_path / 'run')
