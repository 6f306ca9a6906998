"""Shared helpers: the tiny experiment config and a subprocess runner for the CLI."""

import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
EXPERIMENTS = ROOT / 'experiments'

# Every test and CLI subprocess compiles the same tiny programs: a persistent
# XLA cache turns ~10 s of compilation per process into ~1 s. Set before JAX loads.
os.environ.setdefault('JAX_COMPILATION_CACHE_DIR', str(ROOT / '.jax_cache'))
os.environ.setdefault('JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS', '0')
os.environ.setdefault('JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES', '-1')

import pytest  # noqa: E402

from ganjax.config import load_experiment  # noqa: E402


@pytest.fixture
def tiny_config():
  """experiments/tiny.py: small widths, 20 steps, 512 images; trains in seconds."""
  return load_experiment(EXPERIMENTS / 'tiny.py')


def run_cli(
  module: str, *args: str, timeout: float = 300, env: dict | None = None, **popen
) -> subprocess.CompletedProcess:
  """Runs `python -m module args` from the repo root and returns the finished process."""
  env = {**os.environ, 'PYTHONUNBUFFERED': '1', **(env or {})}
  return subprocess.run(
    [sys.executable, '-m', module, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, **popen
  )


def forced_devices(n: int) -> dict:
  """Environment for a subprocess that sees `n` CPU devices (XLA's forced host platform count)."""
  return {'XLA_FLAGS': f'--xla_force_host_platform_device_count={n}'}
