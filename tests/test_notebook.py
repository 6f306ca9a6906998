"""The Colab notebook runs headless from top to bottom (so it never rots)."""

import nbformat
import pytest
from nbclient import NotebookClient

from tests.conftest import ROOT

NOTEBOOK = ROOT / 'notebooks' / 'colab.ipynb'


def test_colab_notebook_runs_and_draws_its_figures(tmp_path, monkeypatch):
  nb = nbformat.read(NOTEBOOK, as_version=4)
  # Runs in tmp_path (its runs/ go there) and finds this repository through GANJAX_REPO.
  monkeypatch.setenv('GANJAX_REPO', str(ROOT))
  work = tmp_path / 'notebooks'
  work.mkdir()
  client = NotebookClient(nb, timeout=600, kernel_name='python3', resources={'metadata': {'path': str(work)}})
  try:
    client.execute()
  except Exception as e:  # nbclient's CellExecutionError carries the cell and its traceback
    pytest.fail(f'notebook failed: {e}')
  outputs = [o for cell in nb.cells if cell.cell_type == 'code' for o in cell.get('outputs', [])]
  images = [o for o in outputs if o.get('output_type') == 'display_data' and 'image/png' in o.get('data', {})]
  assert len(images) == 2  # the sample grid and the sweep's loss curves
  text = ''.join(o.get('text', '') for o in outputs if o.get('output_type') == 'stream')
  assert 'restored step 20 - samples (64, 28, 28, 1)' in text
  assert 'member 2 has seed 2' in text
  assert (work / 'runs' / 'colab_sweep' / 'member_2' / 'metrics.jsonl').is_file()
