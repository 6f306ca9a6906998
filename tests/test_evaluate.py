import pathlib
import shutil

import numpy as np
import pytest

from ganjax import classifier, evaluate, input_pipeline
from ganjax.config import load_experiment
from tests.conftest import EXPERIMENTS


@pytest.fixture(scope='module')
def evaluator():
  return evaluate.Evaluator()


def test_shipped_classifier_meets_its_recorded_accuracy():
  params = classifier.load()
  _, held_out = classifier.split()
  recorded = classifier.recorded_accuracy()
  assert recorded >= 0.98
  assert classifier.accuracy(params, held_out) >= recorded - 1e-9


def test_noise_and_one_repeated_digit_score_far_worse_than_real(evaluator):
  train, held_out = classifier.split()
  real = evaluate.Evaluator(reference=evaluate.to_unit(held_out.images[:2500]))(
    evaluate.to_unit(held_out.images[2500:])
  )
  noise = evaluator(np.random.default_rng(0).uniform(-1, 1, (2000, 28, 28, 1)).astype(np.float32))
  collapsed = evaluator(np.repeat(evaluate.to_unit(train.images[:1]), 2000, axis=0))
  assert real['classes_covered'] == 10 and real['recall'] > 0.6 and real['coverage'] > 0.6
  assert noise['fd'] > 20 * real['fd'] and noise['precision'] < 0.05
  # A collapsed generator: one class, no recall, no coverage, no pixel variation.
  assert collapsed['classes_covered'] == 1 and collapsed['recall'] < 0.01 and collapsed['coverage'] < 0.01
  assert collapsed['pixel_std'] < 1e-5 and real['pixel_std'] > 0.3


def test_evaluator_rejects_other_image_shapes(evaluator):
  with pytest.raises(ValueError, match='needs images of shape'):
    evaluator(np.zeros((10, 32, 32, 3), np.float32))


def test_table_lists_every_column_and_mean_std_rows():
  row = dict.fromkeys(evaluate.COLUMNS, 1.0) | {'classes_covered': 3}
  summary = evaluate.mean_std([row, row | {'fd': 3.0}])
  assert summary['fd'] == (2.0, np.std([1.0, 3.0], ddof=1))
  table = evaluate.format_table({'run': row, 'mean': summary})
  for column in evaluate.COLUMNS:
    assert column in table
  assert '2 ± 1.4' in table.splitlines()[2]


def test_copy_check_flags_training_images_and_not_held_out_ones():
  train, held_out = classifier.split()
  train_images = evaluate.to_unit(train.images)
  evaluator = evaluate.Evaluator(train_images=train_images)
  replayed = evaluator(train_images[:1000])
  fresh = evaluator(evaluate.to_unit(held_out.images[:1000]))
  assert replayed['copy_fraction'] == 1.0 and replayed['nn_ratio'] == 0.0
  assert fresh['copy_fraction'] < 0.15 and fresh['nn_ratio'] > 0.8
  grid = evaluator.neighbours(train_images[:2], train_images, k=3)
  assert grid.shape == (8, 28, 28, 1)
  np.testing.assert_array_equal(grid[1], train_images[0])  # a training image's nearest neighbour is itself


def test_cli_prints_a_comparison_table(tmp_path, tiny_config):
  from ganjax import train
  from tests.conftest import run_cli

  tiny_config.eval.every_steps = 0
  train.train_and_evaluate(tiny_config, tmp_path / 'a')
  tiny_config.seed = 1
  train.train_and_evaluate(tiny_config, tmp_path / 'b')
  proc = run_cli('ganjax.evaluate', f'--workdir={tmp_path}/a', f'--workdir={tmp_path}/b', '--step=10', '--num=300')
  assert proc.returncode == 0, proc.stderr[-2000:]
  lines = proc.stdout.splitlines()
  header = next(i for i, line in enumerate(lines) if 'classifier_score' in line)
  rows = lines[header + 1 :]
  assert [row.split()[0] for row in rows] == [f'{tmp_path}/a', f'{tmp_path}/b']
  columns = lines[header].split()
  assert {'fd', 'precision', 'coverage', 'copy_fraction'} <= set(columns) and 'fid_inception' not in columns
  assert all(len(row.split()) == 3 + len(columns) for row in rows)  # name, '@', '10', the columns
  assert f"{tmp_path}/a: features: ganjax's MNIST classifier" in proc.stdout
  proc = run_cli('ganjax.evaluate', f'--workdir={tmp_path}/a', '--num=100', f'--neighbours={tmp_path}/nn.png')
  assert proc.returncode == 0 and (tmp_path / 'nn.png').is_file(), proc.stderr[-2000:]
  proc = run_cli('ganjax.evaluate', f'--workdir={tmp_path}/none')
  assert proc.returncode != 0 and 'ganjax: error: no checkpoints in' in proc.stderr


def _one_error_line(proc, fragment):
  assert proc.returncode == 1, proc.stderr[-2000:]
  lines = proc.stderr.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith('ganjax: error:') and fragment in lines[0], proc.stderr[-2000:]


def test_sweep_rows_mean_std_and_one_line_errors(tmp_path, tiny_config):
  from ganjax import train
  from tests.conftest import run_cli

  tiny_config.eval.every_steps = 0
  tiny_config.train.num_steps = 10
  tiny_config.sweep.field, tiny_config.sweep.choices = 'seed', (0, 1)
  train.train_and_evaluate(tiny_config, tmp_path / 'sweep')
  proc = run_cli('ganjax.evaluate', f'--workdir={tmp_path}/sweep', '--num=200')
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert 'member 0 @ 10' in proc.stdout and 'member 1 @ 10' in proc.stdout
  assert 'mean ± std (2 members)' in proc.stdout
  (tmp_path / 'sweep' / 'member_1').rename(tmp_path / 'member_1_moved')
  _one_error_line(run_cli('ganjax.evaluate', f'--workdir={tmp_path}/sweep'), 'member_1/ is missing')
  # A run that is not MNIST (toy points: their mode statistics), and a copy check whose training data are gone.
  toy = load_experiment(EXPERIMENTS / 'toy_ring8.py')
  toy.train.num_steps, toy.eval.every_steps, toy.train.sample_every_steps = 2, 0, 0
  train.train_and_evaluate(toy, tmp_path / 'toy')
  proc = run_cli('ganjax.evaluate', f'--workdir={tmp_path}/toy', '--num=200')
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert 'features: toy mode statistics' in proc.stdout and 'modes_covered' in proc.stdout
  tiny_config.sweep.field, tiny_config.sweep.choices = '', ()
  tiny_config.data.source, tiny_config.data.dir, tiny_config.data.split = 'idx', str(tmp_path / 'idx'), 'test'
  shipped = pathlib.Path(input_pipeline.SHIPPED_DIR)
  (tmp_path / 'idx').mkdir()
  for name in ('t10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz'):
    shutil.copy(shipped / name, tmp_path / 'idx' / name)
  train.train_and_evaluate(tiny_config, tmp_path / 'idx_run')
  shutil.rmtree(tmp_path / 'idx')
  proc = run_cli('ganjax.evaluate', f'--workdir={tmp_path}/idx_run', '--num=100')
  _one_error_line(proc, 'the copy check needs the images G trained on')
  proc = run_cli('ganjax.evaluate', f'--workdir={tmp_path}/idx_run', '--num=100', '--nocopy_check')
  assert proc.returncode == 0, proc.stderr[-2000:]
