import copy
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

import ganjax
from ganjax import checkpoint, train
from ganjax.errors import CheckpointError, DivergenceError
from tests.conftest import ROOT, run_cli

TINY = '--config=experiments/tiny.py'


def _assert_trees_identical(a, b):
  leaves_a, leaves_b = jax.tree.leaves(a), jax.tree.leaves(b)
  assert len(leaves_a) == len(leaves_b)
  for x, y in zip(leaves_a, leaves_b, strict=True):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def _records(workdir):
  return [json.loads(line) for line in (workdir / 'metrics.jsonl').read_text().splitlines()]


def _train_records(workdir):
  return [r for r in _records(workdir) if 'd_loss' in r]


def _cli(workdir, *overrides):
  proc = run_cli('ganjax.main', TINY, f'--workdir={workdir}', *overrides)
  assert proc.returncode == 0, proc.stderr[-3000:]
  return proc.stdout + proc.stderr


def test_stop_and_resume_is_bitwise_identical_to_one_run(tmp_path):
  _cli(tmp_path / 'once', '--config.train.num_steps=20')
  _cli(tmp_path / 'twice', '--config.train.num_steps=10')
  out = _cli(tmp_path / 'twice', '--config.train.num_steps=20')
  assert 'resuming from the checkpoint at step 10' in out
  once, twice = ganjax.restore(tmp_path / 'once'), ganjax.restore(tmp_path / 'twice')
  assert once.step == twice.step == 20
  _assert_trees_identical((once.g_state, once.d_state), (twice.g_state, twice.d_state))
  # Every metric of every logged step, before and after the resume, is the same.
  assert _records(tmp_path / 'once') == _records(tmp_path / 'twice')


def test_sigterm_saves_and_resume_matches_an_uninterrupted_run(tmp_path):
  workdir = tmp_path / 'killed'
  cmd = [
    sys.executable,
    '-m',
    'ganjax.main',
    TINY,
    f'--workdir={workdir}',
    '--config.train.num_steps=1000000',
    '--config.checkpoint.every_steps=0',
    '--config.eval.every_steps=0',
    '--config.train.sample_every_steps=0',
  ]
  proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
  deadline = time.time() + 240
  while time.time() < deadline and not ((workdir / 'metrics.jsonl').exists() and _train_records(workdir)):
    time.sleep(0.2)
  proc.send_signal(signal.SIGTERM)
  out, _ = proc.communicate(timeout=120)
  assert proc.returncode == 0, out[-3000:]
  assert 'stopped by SIGTERM after step' in out
  stopped = ganjax.restore(workdir).step
  assert stopped > 0
  total = stopped + 15
  common = ['--config.eval.every_steps=0', '--config.train.sample_every_steps=0', f'--config.train.num_steps={total}']
  out = _cli(workdir, *common)
  assert f'resuming from the checkpoint at step {stopped}' in out
  _cli(tmp_path / 'straight', *common)
  resumed, straight = ganjax.restore(workdir), ganjax.restore(tmp_path / 'straight')
  assert resumed.step == straight.step == total
  _assert_trees_identical((resumed.g_state, resumed.d_state), (straight.g_state, straight.d_state))
  assert _train_records(workdir)[-1] == _train_records(tmp_path / 'straight')[-1]


def test_partial_checkpoint_left_by_a_killed_save_is_ignored(tmp_path):
  _cli(tmp_path, '--config.train.num_steps=20')
  ckpt = tmp_path / 'checkpoints'
  # What a process killed (SIGKILL) in the middle of saving step 30 leaves: Orbax
  # writes into a temporary folder and renames it only once complete.
  partial = ckpt / '30.orbax-checkpoint-tmp-1234567'
  shutil.copytree(ckpt / '20', partial)
  (partial / 'state').joinpath('half_written').write_bytes(b'\0' * 100)
  assert ganjax.restore(tmp_path).step == 20
  out = _cli(tmp_path, '--config.train.num_steps=40')
  assert 'resuming from the checkpoint at step 20' in out
  assert ganjax.restore(tmp_path).step == 40


def test_divergence_leaves_the_last_good_checkpoint(tmp_path, tiny_config):
  tiny_config.train.num_steps = 10
  train.train_and_evaluate(tiny_config, tmp_path)
  good = ganjax.restore(tmp_path)
  tiny_config.train.num_steps = 20
  tiny_config.opt.g_lr = 1e30
  with pytest.raises(DivergenceError, match='at step 1[0-9]'):
    train.train_and_evaluate(tiny_config, tmp_path)
  after = ganjax.restore(tmp_path)
  assert after.step == 10
  _assert_trees_identical((good.g_state, good.d_state), (after.g_state, after.d_state))


def test_restore_from_checkpoint_alone_and_sample(tmp_path, tiny_config):
  result = train.train_and_evaluate(tiny_config, tmp_path)
  (tmp_path / 'config.json').unlink()  # the checkpoint carries its config
  run = ganjax.restore(tmp_path)
  assert run.step == 20 and run.config.model.g_features == (16, 32)
  _assert_trees_identical(run.g_state.params, result['g_state'].params)
  images = ganjax.sample(run, 37, seed=3, batch_size=16)
  assert images.shape == (37, 28, 28, 1) and images.dtype == np.float32
  assert images.min() >= -1 and images.max() <= 1
  np.testing.assert_array_equal(images, ganjax.sample(run, 37, seed=3, batch_size=16))
  assert not np.array_equal(images, ganjax.sample(run, 37, seed=4, batch_size=16))
  assert ganjax.restore(tmp_path, step=10).step == 10


def test_restore_errors_name_the_problem(tmp_path, tiny_config):
  with pytest.raises(CheckpointError, match='no checkpoints in'):
    ganjax.restore(tmp_path)
  train.train_and_evaluate(tiny_config, tmp_path)
  with pytest.raises(CheckpointError, match=r'no checkpoint for step 15; checkpoints in .*: steps \[10, 20\]'):
    ganjax.restore(tmp_path, step=15)
  # A changed model: the same workdir resumed with other widths.
  tiny_config.model.g_features = (16, 64)
  tiny_config.train.num_steps = 30
  with pytest.raises(
    CheckpointError,
    match=r'does not fit this model: g/params/BatchNorm_1/bias is \(32,\) in the checkpoint but \(64,\) in the model',
  ):
    train.train_and_evaluate(tiny_config, tmp_path)
  # A corrupt checkpoint: its array files overwritten.
  for f in (tmp_path / 'checkpoints' / '20' / 'state').rglob('*'):
    if f.is_file() and f.stat().st_size > 0 and 'metadata' not in f.name:
      f.write_bytes(b'garbage')
  with pytest.raises(CheckpointError, match='unreadable or corrupt'):
    ganjax.restore(tmp_path, step=20)


def test_fresh_start_moves_old_checkpoints_aside(tmp_path, tiny_config):
  tiny_config.train.num_steps = 10
  train.train_and_evaluate(tiny_config, tmp_path)
  tiny_config.checkpoint.resume = False
  train.train_and_evaluate(tiny_config, tmp_path)
  old = list(tmp_path.glob('checkpoints.old-*'))
  assert len(old) == 1 and (old[0] / '10').is_dir()
  assert ganjax.restore(tmp_path).step == 10


def test_sample_cli_writes_png_and_npz(tmp_path, tiny_config):
  train.train_and_evaluate(tiny_config, tmp_path)
  proc = run_cli('ganjax.sample', f'--workdir={tmp_path}', '--num=16', f'--out={tmp_path}/grid.png')
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert (tmp_path / 'grid.png').is_file()
  proc = run_cli('ganjax.sample', f'--workdir={tmp_path}', '--num=5', '--step=10', f'--out={tmp_path}/s.npz')
  assert proc.returncode == 0, proc.stderr[-2000:]
  images = np.load(tmp_path / 's.npz')['images']
  assert images.shape == (5, 28, 28, 1)
  proc = run_cli('ganjax.sample', f'--workdir={tmp_path}/none', '--num=5', f'--out={tmp_path}/s.npz')
  assert proc.returncode != 0 and 'ganjax: error: no checkpoints in' in proc.stderr


def test_sigkill_during_saves_resumes_from_a_complete_checkpoint(tmp_path):
  # Saving every step keeps the process inside a save most of the time, so the
  # SIGKILL very likely lands mid-save; whatever it hits, the next run must resume.
  cmd = [
    sys.executable,
    '-m',
    'ganjax.main',
    TINY,
    f'--workdir={tmp_path}',
    '--config.train.num_steps=1000000',
    '--config.checkpoint.every_steps=1',
    '--config.eval.every_steps=0',
    '--config.train.sample_every_steps=0',
  ]
  proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  deadline = time.time() + 240
  ckpt = tmp_path / 'checkpoints'
  while time.time() < deadline and not (ckpt.is_dir() and len([p for p in ckpt.iterdir() if p.name.isdigit()]) >= 3):
    time.sleep(0.05)
  proc.kill()
  proc.wait(timeout=60)
  last = ganjax.restore(tmp_path)
  out = _cli(tmp_path, f'--config.train.num_steps={last.step + 5}', '--config.checkpoint.every_steps=1')
  assert f'resuming from the checkpoint at step {last.step}' in out
  assert ganjax.restore(tmp_path).step == last.step + 5


def test_sigkill_provably_mid_save_resumes_and_matches_an_uninterrupted_run(tmp_path):
  steps = ('--config.train.num_steps=30', '--config.checkpoint.every_steps=10', '--config.eval.every_steps=0')
  _cli(tmp_path / 'once', *steps)
  workdir, marker = tmp_path / 'killed', tmp_path / 'hanging'
  # ganjax.main, with Orbax patched by the test's wrapper so that the save of step 20 hangs midway.
  hang = ROOT / 'tests' / 'hang_in_save.py'
  cmd = [sys.executable, str(hang), '20', str(marker), TINY, f'--workdir={workdir}', *steps]
  env = {**os.environ, 'PYTHONPATH': str(ROOT)}
  proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  deadline = time.time() + 240
  while time.time() < deadline and not marker.exists() and proc.poll() is None:
    time.sleep(0.05)
  assert marker.exists(), 'the run never reached the hang inside the save of step 20'
  # Inside the save: Orbax's temporary folder for step 20 exists, and no step 20 is complete.
  ckpt = workdir / 'checkpoints'
  assert any(p.name.startswith('20.orbax-checkpoint-tmp') for p in ckpt.iterdir()), sorted(ckpt.iterdir())
  proc.kill()
  proc.wait(timeout=60)
  assert ganjax.restore(workdir).step == 10
  out = _cli(workdir, *steps)
  assert 'resuming from the checkpoint at step 10' in out
  once, resumed = ganjax.restore(tmp_path / 'once'), ganjax.restore(workdir)
  assert once.step == resumed.step == 30
  _assert_trees_identical((once.g_state, once.d_state), (resumed.g_state, resumed.d_state))
  assert _train_records(tmp_path / 'once') == _train_records(workdir)


def test_warm_start_copies_params_and_restarts_the_optimizer(tmp_path, tiny_config):
  tiny_config.train.num_steps = 10
  source = train.train_and_evaluate(tiny_config, tmp_path / 'source')
  tiny_config.checkpoint.init_from = str(tmp_path / 'source')
  tiny_config.train.num_steps = 1
  tiny_config.opt.g_lr = tiny_config.opt.d_lr = 1e-12  # one step that barely moves the params
  result = train.train_and_evaluate(tiny_config, tmp_path / 'warm')
  assert int(result['g_state'].step) == 1  # the step counter restarted
  np.testing.assert_allclose(
    result['g_state'].params['Dense_0']['kernel'], source['g_state'].params['Dense_0']['kernel'], atol=1e-9
  )
  tiny_config.model.d_features = (4, 16)
  with pytest.raises(CheckpointError, match='init_from=.* does not fit this model: d/params/Conv_1'):
    train.train_and_evaluate(tiny_config, tmp_path / 'other')


def test_warm_start_from_a_sweep_takes_the_member_it_names(tmp_path, tiny_config):
  sweep = copy.deepcopy(tiny_config)
  sweep.train.num_steps, sweep.eval.every_steps = 4, 0
  sweep.sweep.field, sweep.sweep.choices = 'seed', (0, 3)
  train.train_and_evaluate(sweep, tmp_path / 'sweep')
  member = ganjax.restore(tmp_path / 'sweep', member=1)
  tiny_config.checkpoint.init_from = str(tmp_path / 'sweep')
  tiny_config.train.num_steps, tiny_config.eval.every_steps = 1, 0
  with pytest.raises(CheckpointError, match=r'sweep of 2 members .* member=0..1 \(checkpoint.init_member'):
    train.train_and_evaluate(tiny_config, tmp_path / 'unnamed')
  tiny_config.checkpoint.init_member = 1
  tiny_config.opt.g_lr = tiny_config.opt.d_lr = 1e-12  # one step that barely moves the params
  result = train.train_and_evaluate(tiny_config, tmp_path / 'warm')
  for net, ours, theirs in (('g', result['g_state'], member.g_state), ('d', result['d_state'], member.d_state)):
    ours, theirs = jax.tree.leaves(ours.params), jax.tree.leaves(theirs.params)
    for a, b in zip(ours, theirs, strict=True):
      np.testing.assert_allclose(a, b, atol=1e-9, err_msg=net)
  other = ganjax.restore(tmp_path / 'sweep', member=0)  # the other member's networks differ
  assert not np.allclose(jax.tree.leaves(other.g_state.params)[0], jax.tree.leaves(member.g_state.params)[0])
  tiny_config.checkpoint.init_from = str(tmp_path / 'warm')  # a plain run has no members to pick from
  with pytest.raises(CheckpointError, match='is not a sweep; .* no checkpoint.init_member'):
    train.train_and_evaluate(tiny_config, tmp_path / 'from_plain')


def test_restore_is_quiet(tmp_path, tiny_config):
  tiny_config.train.num_steps = 2
  tiny_config.eval.every_steps = 0
  train.train_and_evaluate(tiny_config, tmp_path)
  code = f'import ganjax; ganjax.restore({str(tmp_path)!r}); print("ok")'
  proc = subprocess.run([sys.executable, '-c', code], cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0 and proc.stdout.strip() == 'ok', proc.stderr[-2000:]
  assert proc.stderr.strip() == '', proc.stderr[-2000:]


def test_unreadable_latest_checkpoint_resumes_from_the_newest_readable_one_and_keeps_it(tmp_path):
  workdir = tmp_path / 'run'
  _cli(workdir, '--config.train.num_steps=20')  # checkpoints at 10 and 20
  # The latest checkpoint's metadata half-written (a disk that filled up, a copy cut short).
  meta = workdir / 'checkpoints' / '20' / 'meta' / 'metadata'
  half = meta.read_text()[:40]
  meta.write_text(half)
  out = _cli(workdir, '--config.train.num_steps=30')
  line = next(line for line in out.splitlines() if 'cannot be read' in line)
  assert 'step 20' in line and 'resuming from step 10 instead' in line
  (kept,) = (workdir / 'checkpoints.unreadable').iterdir()  # moved aside, not deleted
  assert kept.name.startswith('20-') and (kept / 'meta' / 'metadata').read_text() == half
  assert 'resuming from the checkpoint at step 10' in out
  _cli(tmp_path / 'straight', '--config.train.num_steps=30')
  resumed, straight = ganjax.restore(workdir), ganjax.restore(tmp_path / 'straight')
  assert resumed.step == straight.step == 30
  _assert_trees_identical((resumed.g_state, resumed.d_state), (straight.g_state, straight.d_state))
  # Nothing readable at all: one line, exit 1.
  for step in checkpoint.Checkpointer(workdir, resumed.config).all_steps():
    (workdir / 'checkpoints' / str(step) / 'meta' / 'metadata').write_text('{')
  proc = run_cli('ganjax.main', TINY, f'--workdir={workdir}', '--config.train.num_steps=40')
  assert proc.returncode == 1 and proc.stderr.strip().startswith('ganjax: error: no readable checkpoint'), proc.stderr
  assert len(proc.stderr.strip().splitlines()) == 1


def test_resume_with_another_config_lists_the_changes_and_warns_about_linear_schedules(tmp_path):
  workdir = tmp_path / 'run'
  _cli(workdir, '--config.train.num_steps=10')
  out = _cli(workdir, '--config.train.num_steps=12', '--config.train.log_every_steps=2')
  (line,) = [line for line in out.splitlines() if 'config differs' in line]
  assert 'in 2 field(s)' in line and 'train.num_steps: 10 -> 12' in line and 'train.log_every_steps: 5 -> 2' in line
  assert 'linear' not in line  # tiny's schedules are constant
  assert 'config differs' not in _cli(workdir, '--config.train.num_steps=12', '--config.train.log_every_steps=2')
  linear = tmp_path / 'linear'
  _cli(linear, '--config.train.num_steps=10', '--config.opt.schedule=linear')
  out = _cli(linear, '--config.train.num_steps=14', '--config.opt.schedule=linear')
  (line,) = [line for line in out.splitlines() if 'config differs' in line]
  assert 'train.num_steps: 10 -> 14' in line and 'opt.schedule decay linearly over train.num_steps' in line
  # A change that makes the checkpoint unusable stays an error.
  proc = run_cli(
    'ganjax.main', TINY, f'--workdir={workdir}', '--config.train.num_steps=16', '--config.model.latent_dim=9'
  )
  assert proc.returncode == 1 and 'does not fit this model' in proc.stderr
