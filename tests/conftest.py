"""Shared helpers: the tiny experiment config and a subprocess runner for the CLI."""

import os
import pathlib
import subprocess
import sys

import pytest

from ganjax.config import load_experiment

ROOT = pathlib.Path(__file__).resolve().parent.parent
EXPERIMENTS = ROOT / 'experiments'


@pytest.fixture
def tiny_config():
  """experiments/tiny.py: small widths, 20 steps, 512 images; trains in seconds."""
  return load_experiment(EXPERIMENTS / 'tiny.py')


def run_cli(module: str, *args: str, timeout: float = 300, **popen) -> subprocess.CompletedProcess:
  """Runs `python -m module args` from the repo root and returns the finished process."""
  env = {**os.environ, 'PYTHONUNBUFFERED': '1'}
  return subprocess.run(
      [sys.executable, '-m', module, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, **popen
  )
