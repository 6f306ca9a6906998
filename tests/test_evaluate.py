import numpy as np
import pytest

from ganjax import classifier, evaluate


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


def test_table_lists_every_column():
  row = dict.fromkeys(evaluate.COLUMNS, 1.0) | {'classes_covered': 3}
  table = evaluate.format_table({'run': row})
  for column in evaluate.COLUMNS:
    assert column in table


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
  assert all(len(row.split()) == 3 + len(evaluate.COLUMNS) for row in rows)  # name, '@', '10', the columns
  proc = run_cli('ganjax.evaluate', f'--workdir={tmp_path}/none')
  assert proc.returncode != 0 and 'ganjax: error: no checkpoints in' in proc.stderr
