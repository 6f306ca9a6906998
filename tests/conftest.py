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

import gc  # noqa: E402

import jax  # noqa: E402
import pytest  # noqa: E402

from ganjax.config import load_experiment  # noqa: E402

# Each compiled XLA:CPU program holds memory maps of its code. The suite runs hundreds of programs in
# one process and passed Linux's vm.max_map_count (65,530): XLA then aborts the process while loading
# a program. Measured: 700-5,000 maps per training test. Past this count the compiled programs go.
MAX_MAPS = 30_000


def _memory_maps() -> int:
  try:
    with open('/proc/self/maps') as f:
      return sum(1 for _ in f)
  except OSError:  # not Linux
    return 0


@pytest.fixture(autouse=True)
def _bounded_memory_maps():
  yield
  if _memory_maps() > MAX_MAPS:
    jax.clear_caches()
    gc.collect()


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
