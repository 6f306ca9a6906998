import numpy as np
import pytest

from ganjax import metrics


def _gaussian(n, mean, std, dim=8, seed=0):
  return np.random.default_rng(seed).normal(mean, std, (n, dim)).astype(np.float32)


def test_frechet_distance_of_a_set_with_itself_is_zero():
  x = _gaussian(2000, 0.0, 1.0)
  assert abs(metrics.frechet_distance(x, x)) < 1e-6


def test_frechet_distance_matches_the_closed_form_for_gaussians():
  # For N(m1, s1^2 I) and N(m2, s2^2 I) in d dims: |m1 - m2|^2 + d (s1 - s2)^2.
  x, y = _gaussian(20000, 0.0, 1.0, seed=1), _gaussian(20000, 0.5, 2.0, seed=2)
  expected = 8 * 0.5**2 + 8 * (1.0 - 2.0) ** 2
  assert metrics.frechet_distance(x, y) == pytest.approx(expected, rel=0.03)


def test_kid_is_near_zero_for_one_distribution_and_large_for_two():
  x, y = _gaussian(4000, 0.0, 1.0, seed=3), _gaussian(4000, 0.0, 1.0, seed=4)
  same = metrics.kid(x, y)
  different = metrics.kid(x, _gaussian(4000, 1.0, 1.0, seed=5))
  assert abs(same) < 0.01 * different
  assert different > 0.1


def test_kth_nn_radius_matches_brute_force():
  x = _gaussian(500, 0.0, 1.0, dim=4, seed=6)
  d = np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1))
  np.testing.assert_allclose(metrics.kth_nn_radius(x, 3), np.sort(d, axis=1)[:, 3], rtol=1e-4, atol=1e-4)


def test_precision_recall_density_coverage_on_constructed_sets():
  # Real points on a line at 0..99; each point's 3rd (5th) neighbour is 2 (3) away.
  real = np.stack([np.arange(100.0), np.zeros(100)], axis=1).astype(np.float32)
  # Fakes: 50 on top of the first half of the real points, 50 far away.
  fake = np.concatenate([real[:50], real[:50] + [0.0, 1000.0]]).astype(np.float32)
  precision, recall = metrics.precision_recall(real, fake, k=3)
  assert precision == pytest.approx(0.5)  # half the fakes lie on the real manifold
  assert 0.5 <= recall <= 0.53  # the first half of the reals, plus the edge within the fakes' radius
  density, coverage = metrics.density_coverage(real, fake, k=5)
  assert coverage == pytest.approx(0.53)  # real 0..49, and 50..52 whose 3-unit balls reach fake 49
  # Each on-manifold fake sits in ~7 of the 5-NN balls (about 11 at most); the 50 far ones in none.
  assert 0.5 < density < 1.2


def test_class_stats_of_one_class_and_of_all_classes():
  one = np.tile(np.eye(10)[3] * 20, (100, 1))
  stats = metrics.class_stats(one)
  assert stats['classes_covered'] == 1 and stats['max_class_share'] == 1.0
  assert stats['classifier_score'] == pytest.approx(1.0, abs=1e-3)
  every = np.tile(np.eye(10) * 20, (10, 1))
  stats = metrics.class_stats(every)
  assert stats['classes_covered'] == 10 and stats['classifier_score'] == pytest.approx(10.0, rel=1e-3)


def test_nearest_matches_brute_force():
  x, points = _gaussian(300, 0.0, 1.0, dim=4, seed=7), _gaussian(700, 0.0, 1.0, dim=4, seed=8)
  d = np.sqrt(((x[:, None] - points[None]) ** 2).sum(-1))
  for k in (1, 4):
    dist, index = metrics.nearest(x, points, k)
    np.testing.assert_array_equal(index, np.argsort(d, axis=1)[:, :k])
    np.testing.assert_allclose(dist, np.sort(d, axis=1)[:, :k], rtol=1e-4, atol=1e-4)


def test_copy_stats_tell_replayed_training_points_from_new_draws():
  train = _gaussian(2000, 0.0, 1.0, seed=9)
  real_nn = metrics.kth_nn_radius(train, 1)  # each training point to its nearest other one
  fresh = _gaussian(2000, 0.0, 1.0, seed=10)  # new draws from the same distribution
  copies = train[:2000] + 1e-3 * _gaussian(2000, 0.0, 1.0, seed=11)  # replayed training points
  new = metrics.copy_stats(metrics.nearest(fresh, train)[0][:, 0], real_nn, 0.05)
  copied = metrics.copy_stats(metrics.nearest(copies, train)[0][:, 0], real_nn, 0.05)
  assert 0.02 < new['copy_fraction'] < 0.1 and 0.8 < new['nn_ratio'] < 1.25
  assert copied['copy_fraction'] > 0.99 and copied['nn_ratio'] < 0.05


def test_kid_over_whole_sets_is_the_unbiased_mmd2_written_out():
  """With subsets as large as the sets, every subset is the whole set: KID is the unbiased MMD^2 itself."""
  rng = np.random.default_rng(0)
  x, y = rng.normal(size=(24, 5)), rng.normal(0.5, 1.2, size=(24, 5))
  m, d = len(x), x.shape[1]

  def k(a, b):  # the cubic polynomial kernel, one pair at a time
    return (float(np.dot(a, b)) / d + 1.0) ** 3

  xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
  yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
  xy = sum(k(a, b) for a in x for b in y) / (m * m)
  assert metrics.kid(x, y, num_subsets=3, subset_size=m) == pytest.approx(xx + yy - 2 * xy, rel=1e-5)
