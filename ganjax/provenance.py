"""Which code, libraries and machine produced a result: recorded in `summary.json` and checkpoints.

A GAN's numbers depend on more than its config: JAX has changed its random streams between
versions (`jax_threefry_partitionable` became the default in 0.5.0), and XLA:CPU's float results
depend on the thread count. So every run records the commit (or the package version when ganjax
is installed from a wheel), the library versions, the backend, the devices and the CPU cores.
"""

import importlib.metadata
import os
import pathlib
import subprocess
from typing import Any

# The libraries whose versions can change a run's numbers or its checkpoints.
LIBRARIES = ('jax', 'jaxlib', 'flax', 'optax', 'orbax-checkpoint')
_PACKAGE = pathlib.Path(__file__).resolve().parent
# What a run executes: a change anywhere else (docs, figures, tests) does not make its code dirty.
_CODE_PATHS = ('ganjax', 'experiments', 'pyproject.toml')


def versions() -> dict[str, str]:
  """{library: installed version} for `LIBRARIES` and ganjax itself."""
  found = {}
  for name in ('ganjax', *LIBRARIES):
    try:
      found[name] = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
      found[name] = 'unknown'
  return found


def _git(*args: str) -> str | None:
  try:
    proc = subprocess.run(
      ['git', '-C', str(_PACKAGE.parent), *args], capture_output=True, text=True, timeout=10, check=True
    )
  except (OSError, subprocess.SubprocessError):
    return None
  return proc.stdout.strip()


def code() -> dict[str, Any]:
  """The code that runs: {'commit', 'commit_date', 'dirty'} from a git checkout, else {'version'}.

  `dirty` is True when the package, the configs or pyproject.toml differ from the commit, so the
  commit alone does not say which code ran. Asked afresh each time (a few git calls): a notebook
  may commit between runs, and a run asks once, as it starts.
  """
  if (_PACKAGE.parent / '.git').exists() and _git('ls-files', '--error-unmatch', str(_PACKAGE / '__init__.py')):
    commit = _git('rev-parse', 'HEAD')
    if commit:
      return {
        'commit': commit,
        'commit_date': _git('show', '-s', '--format=%cs', commit),
        'dirty': bool(_git('status', '--porcelain', '--untracked-files=no', '--', *_CODE_PATHS)),
      }
  return {'version': versions()['ganjax']}


def describe_code(info: dict[str, Any] | None = None) -> str:
  """One phrase for a table header: 'commit 1a2b3c4 of 2026-12-02 (with uncommitted changes)' or 'ganjax 0.1.0'."""
  info = code() if info is None else info
  if 'commit' not in info:
    return f'ganjax {info.get("version", "unknown")}'
  dirty = ' (with uncommitted changes)' if info.get('dirty') else ''
  return f'commit {info["commit"][:7]} of {info.get("commit_date")}{dirty}'


def cpu_cores() -> int:
  """The CPU cores this process may run on: the size of XLA:CPU's thread pool."""
  return len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count() or 1


def record(code_info: dict[str, Any] | None = None) -> dict[str, Any]:
  """Everything above, with the backend and devices of the running JAX (it initialises the backend).

  `code_info`: what `code()` said when the run started. A run records the code it started with: the
  checkout may move on (a commit, an edit) while it trains.
  """
  import jax

  return {
    'code': code() if code_info is None else code_info,
    'versions': versions(),
    'backend': jax.default_backend(),
    'device_kind': jax.devices()[0].device_kind,
    'device_count': jax.device_count(),
    'process_count': jax.process_count(),
    'cpu_cores': cpu_cores(),
  }


def version_change(saved: dict[str, str] | None) -> str | None:
  """A one-line note when the JAX that wrote a checkpoint (`saved` versions) is not the one running."""
  if not saved:
    return None  # written before versions were recorded: nothing to compare
  now = versions()
  changed = [
    f'{name} {saved[name]} -> {now[name]}' for name in ('jax', 'jaxlib') if saved.get(name, now[name]) != now[name]
  ]
  if not changed:
    return None
  return (
    f'this checkpoint was written under another JAX ({", ".join(changed)}); it restores, but random streams '
    '(initialisation, latents, data order) may differ from the original run from here on'
  )
