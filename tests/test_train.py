import json

import numpy as np
import pytest

from ganjax import train
from ganjax.errors import DivergenceError, WorkdirError
from tests.conftest import run_cli


def _records(workdir):
  return [json.loads(line) for line in (workdir / 'metrics.jsonl').read_text().splitlines()]


def test_cli_end_to_end_writes_everything(tmp_path):
  workdir = tmp_path / 'run'
  proc = run_cli(
    'ganjax.main', '--config=experiments/tiny.py', f'--workdir={workdir}', '--config.checkpoint.enabled=False'
  )
  assert proc.returncode == 0, proc.stderr
  out = proc.stdout + proc.stderr
  # The tutorial's line, at every log_every_steps (5) of 20 steps.
  for step in (5, 10, 15, 20):
    assert f'{step}/20 [D loss: ' in out
  assert 'acc.: ' in out and '[G loss: ' in out
  assert 'steps/s' in out and 'done: 20 steps' in out
  assert (workdir / 'samples' / 'step_000010.png').is_file() and (workdir / 'samples' / 'step_000020.png').is_file()
  assert list((workdir / 'tensorboard').glob('events.out.tfevents.*'))
  assert (workdir / 'metrics.png').is_file() and (workdir / 'summary.json').is_file()
  config = json.loads((workdir / 'config.json').read_text())
  assert config['train']['num_steps'] == 20
  records = _records(workdir)
  train_steps = [r['step'] for r in records if 'd_loss' in r]
  assert train_steps == [5, 10, 15, 20]
  assert any('eval/pixel_std' in r and 'eval/fd' in r and 'eval/coverage' in r for r in records)
  for r in records:
    assert all(np.isfinite(v) for v in r.values())


def test_sample_grid_is_an_8x8_grid_of_28px_digits(tmp_path, tiny_config):
  from PIL import Image

  tiny_config.train.num_sample_images = 64
  tiny_config.checkpoint.enabled = False
  tiny_config.eval.every_steps = 0
  train.train_and_evaluate(tiny_config, tmp_path)
  grid = Image.open(tmp_path / 'samples' / 'step_000020.png')
  assert grid.size == (8 * 30 + 2, 8 * 30 + 2) and grid.mode == 'L'


def test_same_seed_same_metrics_other_seed_other_metrics(tmp_path, tiny_config):
  tiny_config.checkpoint.enabled = False
  for name in ('a', 'b'):
    train.train_and_evaluate(tiny_config, tmp_path / name)
  tiny_config.seed = 1
  train.train_and_evaluate(tiny_config, tmp_path / 'c')
  assert _records(tmp_path / 'a') == _records(tmp_path / 'b')
  assert _records(tmp_path / 'a') != _records(tmp_path / 'c')


def test_non_finite_loss_stops_and_names_step_and_metric(tmp_path, tiny_config):
  tiny_config.opt.g_lr = 1e30  # G's params overflow in the first update
  tiny_config.train.log_every_steps = 1
  tiny_config.checkpoint.enabled = False
  with pytest.raises(DivergenceError, match=r'non-finite \w+ \((nan|inf)\) at step 1\b'):
    train.train_and_evaluate(tiny_config, tmp_path)


def test_workdir_that_cannot_be_written(tmp_path, tiny_config):
  blocker = tmp_path / 'a_file'
  blocker.write_text('not a folder')
  with pytest.raises(WorkdirError, match='not writable'):
    train.train_and_evaluate(tiny_config, blocker / 'run')


def test_the_default_experiment_trains_and_logs_the_copy_check(tmp_path):
  from ganjax.config import load_experiment
  from tests.conftest import EXPERIMENTS

  config = load_experiment(EXPERIMENTS / 'mnist_gan.py')
  config.train.num_steps, config.train.log_every_steps = 4, 2
  config.train.sample_every_steps = config.eval.every_steps = 4
  config.eval.num_samples = 100
  config.data.limit = 640
  out = train.train_and_evaluate(config, tmp_path)
  g = out['g_state']
  assert g.ema_params and g.ema_batch_stats and int(g.step) == 4 and int(out['d_state'].step) == 4
  last = [r for r in _records(tmp_path) if 'eval/fd' in r][-1]
  assert 0 <= last['eval/copy_fraction'] <= 1 and last['eval/nn_ratio'] > 0
  assert last['eval/classes_covered'] >= 1 and np.isfinite(last['eval/fd'])
