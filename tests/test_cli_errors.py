"""Every bad input the README lists, through the command line: exit 1, one line, no traceback."""

import gzip
import shutil

import pytest

from ganjax import input_pipeline
from tests.conftest import forced_devices, run_cli

TINY = '--config=experiments/tiny.py'
FAST = ('--config.train.num_steps=2', '--config.eval.every_steps=0', '--config.train.sample_every_steps=0')


def _assert_one_line(proc, fragment):
  assert proc.returncode == 1, (proc.returncode, proc.stderr[-3000:])
  assert 'Traceback' not in proc.stderr, proc.stderr[-3000:]
  lines = [line for line in proc.stderr.splitlines() if line.strip()]
  assert len(lines) == 1, proc.stderr[-3000:]
  assert lines[0].startswith('ganjax: error:') and fragment in lines[0], lines[0]


@pytest.mark.parametrize(
  ('args', 'fragment'),
  [
    (('--config.train.num_stepz=5',), 'num_stepz'),
    (('--config.train.num_steps=many',), 'num_steps'),
    (('--config.train.num_steps=0',), 'train.num_steps must be > 0'),
    (('--config.model.d_norm=layer',), 'model.d_norm must be one of'),
    (('--config.data.limit=8',), 'is larger than the dataset'),
    (('--config.data.source=idx',), "data.source='idx' needs data.dir"),
  ],
)
def test_bad_config(tmp_path, args, fragment):
  _assert_one_line(run_cli('ganjax.main', TINY, f'--workdir={tmp_path}', *args), fragment)


def test_missing_config_file(tmp_path):
  _assert_one_line(run_cli('ganjax.main', '--config=experiments/nope.py', f'--workdir={tmp_path}'), 'nope.py')


def test_missing_and_corrupt_data(tmp_path):
  data = tmp_path / 'idx'
  data.mkdir()
  args = (TINY, f'--workdir={tmp_path}/run', '--config.data.source=idx', f'--config.data.dir={data}')
  _assert_one_line(run_cli('ganjax.main', *args, '--config.data.split=test'), 't10k-images-idx3-ubyte.gz')
  for name in ('t10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz'):
    shutil.copy(input_pipeline.SHIPPED_DIR / name, data / name)
  with gzip.open(data / 't10k-labels-idx1-ubyte.gz', 'wb') as f:  # valid gzip, wrong bytes
    f.write(b'not the MNIST labels')
  _assert_one_line(run_cli('ganjax.main', *args, '--config.data.split=test'), 'checksum')


def test_unwritable_workdir(tmp_path):
  (tmp_path / 'file').write_text('a file, not a folder')
  _assert_one_line(run_cli('ganjax.main', TINY, f'--workdir={tmp_path}/file/run', *FAST), 'not writable')


def test_divergence(tmp_path):
  args = ('--config.opt.g_lr=1e30', '--config.train.log_every_steps=1', '--config.checkpoint.enabled=False')
  _assert_one_line(run_cli('ganjax.main', TINY, f'--workdir={tmp_path}', *FAST, *args), 'non-finite')


def test_batch_that_does_not_divide_by_the_devices(tmp_path):
  proc = run_cli('ganjax.main', TINY, f'--workdir={tmp_path}', *FAST, env=forced_devices(3))
  _assert_one_line(proc, 'must divide by the 3 devices')


def test_checkpoint_errors(tmp_path):
  run = tmp_path / 'run'
  proc = run_cli('ganjax.main', TINY, f'--workdir={run}', *FAST, '--config.checkpoint.every_steps=1')
  assert proc.returncode == 0, proc.stderr[-3000:]
  # Another model shape on resume, a step that does not exist, a workdir with no checkpoints.
  proc = run_cli('ganjax.main', TINY, f'--workdir={run}', *FAST, '--config.model.d_features=(4, 16)')
  _assert_one_line(proc, 'does not fit this model')
  _assert_one_line(
    run_cli('ganjax.sample', f'--workdir={run}', '--step=15', '--num=4', f'--out={tmp_path}/x.png'),
    'no checkpoint for step 15',
  )
  _assert_one_line(
    run_cli('ganjax.sample', f'--workdir={tmp_path}/none', '--num=4', f'--out={tmp_path}/x.png'), 'no checkpoints in'
  )
  _assert_one_line(run_cli('ganjax.evaluate', f'--workdir={tmp_path}/none'), 'no checkpoints in')
  # A corrupt checkpoint: its state files truncated.
  for path in (run / 'checkpoints' / '2' / 'state').rglob('*'):
    if path.is_file() and path.stat().st_size > 0:
      path.write_bytes(b'')
  _assert_one_line(run_cli('ganjax.sample', f'--workdir={run}', '--num=4', f'--out={tmp_path}/x.png'), 'checkpoint')
