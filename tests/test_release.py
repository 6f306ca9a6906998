"""The wheel a stranger installs: it holds every file ganjax reads at run time, and it runs from another folder."""

import os
import pathlib
import shutil
import subprocess
import sys
import zipfile

import pytest

from tests.conftest import ROOT

# Files ganjax reads at run time, as they sit in a checkout, and where the wheel must hold them.
_RUNTIME_GLOBS = {'ganjax': ('**/*',), 'experiments': ('*.py',)}


def _runtime_files() -> dict[str, pathlib.Path]:
  """{path inside the wheel: file in the checkout} for the package's files and the shipped configs."""
  files = {}
  for folder, patterns in _RUNTIME_GLOBS.items():
    for pattern in patterns:
      for path in (ROOT / folder).glob(pattern):
        if path.is_file() and '__pycache__' not in path.parts and path.suffix != '.pyc':
          inside = path.relative_to(ROOT / folder)
          files[
            str(pathlib.PurePosixPath('ganjax', *(('experiments',) if folder == 'experiments' else ()), *inside.parts))
          ] = path
  return files


# Not part of a source tree: runs, caches, and setuptools' own build folders (whose stale files
# would otherwise be packed again).
_NOT_SOURCE = shutil.ignore_patterns(
  '.git', 'runs', '.jax_cache', 'build', 'dist', '*.egg-info', '__pycache__', '.pytest_cache', '.ruff_cache'
)


@pytest.fixture(scope='module')
def wheel(tmp_path_factory) -> pathlib.Path:
  source = tmp_path_factory.mktemp('source') / 'ganjax'
  shutil.copytree(ROOT, source, ignore=_NOT_SOURCE)
  out = tmp_path_factory.mktemp('wheel')
  proc = subprocess.run(
    [sys.executable, '-m', 'pip', 'wheel', '--no-deps', '-q', '-w', str(out), str(source)],
    capture_output=True,
    text=True,
    timeout=600,
  )
  assert proc.returncode == 0, proc.stderr[-3000:]
  (path,) = out.glob('ganjax-*.whl')
  return path


def test_wheel_holds_every_runtime_file_and_the_licences(wheel):
  names = set(zipfile.ZipFile(wheel).namelist())
  wanted = _runtime_files()
  assert 'ganjax/data/mnist_classifier.msgpack' in wanted and 'ganjax/experiments/mnist_gan.py' in wanted
  missing = sorted(set(wanted) - names)
  assert not missing, f'files ganjax reads at run time are not in the wheel: {missing}'
  for name, path in wanted.items():
    assert zipfile.ZipFile(wheel).read(name) == path.read_bytes(), name
  dist_info = {pathlib.PurePosixPath(n).name for n in names if '.dist-info/' in n}
  assert {'LICENSE', 'NOTICE'} <= dist_info
  notice = next(zipfile.ZipFile(wheel).read(n) for n in names if n.endswith('/NOTICE')).decode()
  assert 'LeCun' in notice and 'CC BY-SA 3.0' in notice


def test_installed_wheel_runs_the_default_evaluate_sample_and_api_from_another_folder(wheel, tmp_path):
  site = tmp_path / 'site'
  subprocess.run(
    [sys.executable, '-m', 'pip', 'install', '-q', '--no-deps', '--target', str(site), str(wheel)],
    check=True,
    capture_output=True,
    timeout=300,
  )
  elsewhere = tmp_path / 'elsewhere'
  elsewhere.mkdir()
  # PYTHONPATH comes before site-packages, so the checkout's own editable install cannot answer.
  env = {**os.environ, 'PYTHONPATH': str(site), 'PYTHONUNBUFFERED': '1'}

  def run(*args: str) -> str:
    proc = subprocess.run([sys.executable, *args], cwd=elsewhere, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f'{args}: {proc.stdout[-2000:]}{proc.stderr[-3000:]}'
    return proc.stdout

  # The README's quickstart command, shortened, with its periodic evaluation (the classifier's weights).
  out = run(
    '-m',
    'ganjax.main',
    '--config=experiments/mnist_gan.py',
    '--workdir=run',
    '--config.train.num_steps=4',
    '--config.train.log_every_steps=2',
    '--config.eval.every_steps=4',
    '--config.eval.num_samples=100',
    '--config.checkpoint.every_steps=2',
  )
  assert '4/4 [D loss:' in out and 'done: 4 steps' in out
  assert 'eval/fd' in (elsewhere / 'run' / 'metrics.jsonl').read_text()
  assert 'fd' in run('-m', 'ganjax.evaluate', '--workdir=run', '--num=200')
  assert 'real vs real' in run('-m', 'ganjax.evaluate', '--reference', '--num=200')
  run('-m', 'ganjax.sample', '--workdir=run', '--num=16', '--out=grid.png')
  assert (elsewhere / 'grid.png').stat().st_size > 0
  api = run(
    '-c',
    'import ganjax; from ganjax.config import load_experiment; '
    "run = ganjax.restore('run'); x = ganjax.sample(run, 4, seed=0); c = load_experiment('experiments/tiny.py'); "
    'print(ganjax.__file__, x.shape, c.train.num_steps)',
  )
  where, *rest = api.split()
  assert pathlib.Path(where).is_relative_to(site), where
  assert ' '.join(rest) == '(4, 28, 28, 1) 20'
