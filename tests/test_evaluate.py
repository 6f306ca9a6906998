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
