import shutil
import subprocess

import pytest

from tests.conftest import ROOT


@pytest.mark.skipif(shutil.which('ruff') is None, reason='ruff not installed (pip install -e .[test])')
def test_ruff_lint_and_format_are_clean():
  lint = subprocess.run(['ruff', 'check', '.'], cwd=ROOT, capture_output=True, text=True)
  assert lint.returncode == 0, lint.stdout
  fmt = subprocess.run(['ruff', 'format', '--check', '.'], cwd=ROOT, capture_output=True, text=True)
  assert fmt.returncode == 0, fmt.stdout
