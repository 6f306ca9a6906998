"""ganjax.inception and ganjax.fid: the Flax FID Inception against pytorch-fid on the same random weights,
the torch-free weights reader, and the scores' closed forms."""

import json
import os
import pathlib
import subprocess
import sys

import jax
import numpy as np
import pytest

from ganjax import inception, torch_pickle
from ganjax import packed as packed_lib
from ganjax.errors import DataError

ROOT = pathlib.Path(__file__).resolve().parent.parent


@pytest.fixture(scope='module')
def reference(tmp_path_factory):
  """(pytorch-fid's network with random weights, those weights saved by torch)."""
  torch = pytest.importorskip('torch', reason="the reference needs torch: pip install -e '.[bench]'")
  pytest.importorskip('pytorch_fid', reason="the reference needs pytorch-fid: pip install -e '.[bench]'")
  sys.path.insert(0, str(ROOT / 'tests'))
  import pytorch_fid_reference

  net = pytorch_fid_reference.random_fid_inception(seed=0)
  path = tmp_path_factory.mktemp('weights') / 'random_inception.pth'
  torch.save(net.state_dict(), path)
  return net, path


def test_the_flax_inception_equals_pytorch_fids_on_the_same_random_weights(reference, tmp_path, monkeypatch):
  import pytorch_fid_reference
  import torch
  from pytorch_fid.inception import InceptionV3

  net, path = reference
  monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path / 'cache'))
  with pytest.raises(DataError, match='not pytorch-fid'):  # random weights are not the published file
    inception.load_weights(path)
  variables, sha, official = inception.load_weights(path, allow_other=True)
  assert not official and sha == inception.sha256_of(path)
  assert list((tmp_path / 'cache' / 'ganjax' / 'inception').glob('*.npz'))  # converted once, cached
  cached, _, _ = inception.load_weights(path, allow_other=True)
  for a, b in zip(jax.tree.leaves(cached), jax.tree.leaves(variables), strict=True):
    np.testing.assert_array_equal(a, b)
  with pytorch_fid_reference.hub_with(path):
    model = InceptionV3([3]).eval()
  rng = np.random.default_rng(0)
  # Upsampled (32x32), and downsampled without antialiasing (320x320), RGB; a grey set too.
  for shape in ((4, 32, 32, 3), (2, 320, 320, 3), (2, 28, 28, 1)):
    images = rng.random(shape, np.float32)
    pool, logits = inception.extract(variables, images, batch_size=4)
    rgb = torch.from_numpy(np.repeat(images, 3 // shape[-1], axis=-1)).permute(0, 3, 1, 2)
    with torch.no_grad():
      want = model(rgb)[0][:, :, 0, 0].numpy()
      want_logits = net.fc(torch.from_numpy(want)).numpy()
    scale = np.abs(want).max()
    assert scale > 0.1  # calibrated weights: features of unit scale, not faded to zero
    np.testing.assert_allclose(pool, want, rtol=1e-4, atol=1e-4 * scale)
    np.testing.assert_allclose(logits, want_logits, rtol=1e-4, atol=1e-4 * np.abs(want_logits).max())


def test_the_weights_reader_reads_both_torch_formats_and_refuses_code(tmp_path):
  torch = pytest.importorskip('torch', reason="needs torch to write the files: pip install -e '.[bench]'")
  layer = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
  state = layer.state_dict()
  state['view'] = torch.arange(12.0).reshape(3, 4).T  # a strided view of a shared storage
  for zipped in (True, False):
    file = tmp_path / f'w{zipped}.pth'
    torch.save(state, file, _use_new_zipfile_serialization=zipped)
    got = torch_pickle.load_state_dict(file)
    assert sorted(got) == sorted(state)
    for key, value in state.items():
      np.testing.assert_array_equal(got[key], value.numpy())
  evil = tmp_path / 'evil.pth'
  torch.save({'x': torch.zeros(1), 'f': print}, evil)  # a pickle that names a callable
  with pytest.raises(DataError, match='print, which is not part of a state dict'):
    torch_pickle.load_state_dict(evil)
  (tmp_path / 'junk.pth').write_bytes(b'not a checkpoint')
  with pytest.raises(DataError, match='junk.pth'):
    torch_pickle.load_state_dict(tmp_path / 'junk.pth')
  with pytest.raises(DataError, match='FID Inception'):
    inception.to_flax(torch_pickle.load_state_dict(tmp_path / 'wTrue.pth'), 'w.pth')


def test_the_frechet_distance_is_zero_for_identical_statistics_and_matches_the_closed_form():
  from ganjax import fid

  rng = np.random.default_rng(0)
  q, _ = np.linalg.qr(rng.normal(size=(6, 6)))
  a, b = rng.uniform(0.5, 2.0, 6), rng.uniform(0.5, 2.0, 6)
  s1, s2 = q @ np.diag(a) @ q.T, q @ np.diag(b) @ q.T  # commuting: Tr sqrt(S1 S2) = sum sqrt(a b)
  mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
  assert abs(fid.frechet_distance(mu1, s1, mu1, s1)) < 1e-8
  want = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
  np.testing.assert_allclose(fid.frechet_distance(mu1, s1, mu2, s2), want, rtol=1e-8)
  features = rng.normal(size=(500, 6))
  mu, sigma = fid.statistics(features)
  np.testing.assert_allclose(sigma, np.cov(features.T), rtol=1e-12)


def test_the_inception_score_is_1_for_uniform_logits_and_the_class_count_for_even_one_hots():
  from ganjax import fid

  assert fid.inception_score(np.zeros((200, 1008)))[0] == pytest.approx(1.0, abs=1e-9)
  one_hot = 100.0 * np.eye(10)[np.arange(200) % 10]  # every split of 20 holds each class twice
  mean, std = fid.inception_score(one_hot, splits=10)
  assert mean == pytest.approx(10.0, rel=1e-6) and std < 1e-6
  rng = np.random.default_rng(0)
  same = fid.kernel_inception_distance(rng.normal(size=(300, 8)), rng.normal(size=(300, 8)), 20, 100)
  apart = fid.kernel_inception_distance(rng.normal(size=(300, 8)), 1 + rng.normal(size=(300, 8)), 20, 100)
  assert abs(same[0]) < 0.05 < apart[0]  # the unbiased MMD^2: about 0 for one distribution


def _write_pngs(folder: pathlib.Path, num: int, seed: int, smooth: bool) -> None:
  from PIL import Image

  folder.mkdir(parents=True)
  rng = np.random.default_rng(seed)
  for i in range(num):
    image = rng.integers(0, 256, (32, 32, 3)).astype(np.float64)
    if smooth:  # another distribution: blurred blocks
      image = np.kron(image[::8, ::8], np.ones((8, 8, 1)))
    Image.fromarray(image.astype(np.uint8)).save(folder / f'{i:03d}.png')


def test_ganjax_fid_on_two_folders_equals_pytorch_fid_with_the_same_weights(reference, tmp_path, monkeypatch):
  import pytorch_fid_reference

  _, weights = reference
  a, b = tmp_path / 'a', tmp_path / 'b'
  _write_pngs(a, 40, 0, smooth=False)
  _write_pngs(b, 40, 1, smooth=True)
  monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path / 'cache'))  # the converted weights' cache, here too
  env = dict(os.environ)
  fid_args = [f'--inception_weights={weights}', '--allow_other_weights']
  ours = _run('-m', 'ganjax.fid', str(a), str(b), *fid_args, '--prdc', env=env)
  assert 'other weights' in ours
  prdc = next(line for line in ours.splitlines() if line.startswith('precision:')).split()
  assert [prdc[0], prdc[2], prdc[4], prdc[6]] == ['precision:', 'recall:', 'density:', 'coverage:']
  assert all(0 <= float(v) <= 1 for v in (prdc[1], prdc[3], prdc[7])) and float(prdc[5]) >= 0
  with pytorch_fid_reference.hub_with(weights) as torch_home:
    env['TORCH_HOME'] = str(torch_home)
    reference_cli = str(ROOT / 'tests' / 'pytorch_fid_reference.py')
    theirs = _run(reference_cli, str(a), str(b), '--device', 'cpu', '--batch-size', '20', '--num-workers', '0', env=env)
  got = float(ours.strip().splitlines()[-1].removeprefix('FID: '))
  want = float(theirs.strip().splitlines()[-1].removeprefix('FID: ').strip())
  assert want > 1  # two different distributions
  np.testing.assert_allclose(got, want, rtol=1e-3)
  # --save_stats writes pytorch-fid's arrays; statistics on one side give the same FID.
  stats = tmp_path / 'a_stats.npz'
  _run('-m', 'ganjax.fid', '--save_stats', str(a), str(stats), *fid_args, env=env)
  with np.load(stats) as saved:
    assert sorted(saved) == ['mu', 'sigma'] and saved['sigma'].shape == (2048, 2048)
  from ganjax import fid

  variables, _, _ = inception.load_weights(weights, allow_other=True)
  from_stats = fid._scores([stats, b], variables, None, 20, False, False)[-1]
  # The CLI runs Eigen's convolutions (host.prefer_eigen_convolutions), this process YNNPACK's: rounding apart.
  np.testing.assert_allclose(float(from_stats.removeprefix('FID: ')), got, rtol=1e-5)


def _run(*args: str, env: dict) -> str:
  """stdout of `python ARGS` run from the repository, which must succeed."""
  proc = subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, cwd=ROOT)
  assert proc.returncode == 0, proc.stderr
  return proc.stdout


def test_ganjax_fid_says_what_is_wrong_in_one_line(tmp_path):
  from ganjax import fid

  def run(*args):
    full = {k: v for k, v in os.environ.items() if k != inception.WEIGHTS_ENV}
    proc = subprocess.run([sys.executable, '-m', 'ganjax.fid', *args], capture_output=True, text=True, env=full)
    assert proc.returncode == 1 and 'Traceback' not in proc.stderr, proc.stderr
    return proc.stderr.strip()

  assert 'need the FID Inception weights' in run(str(tmp_path), str(tmp_path))
  assert 'do not exist' in run('a', 'b', f'--inception_weights={tmp_path / "none.pth"}')
  (tmp_path / 'empty').mkdir()
  with pytest.raises(DataError, match='no image files'):
    fid.load_set(tmp_path / 'empty')
  with pytest.raises(DataError, match='does not exist'):
    fid.load_set(tmp_path / 'missing')
  _write_pngs(tmp_path / 'few', 3, 0, smooth=False)
  with pytest.raises(DataError, match='--num 5 is more than the 3 images'):
    fid.load_set(tmp_path / 'few', num=5)
  np.savez(tmp_path / 'other.npz', x=np.zeros(3))
  with pytest.raises(DataError, match='neither statistics'):
    fid.load_set(tmp_path / 'other.npz')
  (tmp_path / 'truncated.npz').write_bytes((tmp_path / 'other.npz').read_bytes()[:40])
  with pytest.raises(DataError, match='truncated.npz is not a readable .npz'):
    fid.load_set(tmp_path / 'truncated.npz')
  with pytest.raises(DataError, match='cannot write'):
    fid._save_stats(tmp_path / 'no_such_folder' / 'stats.npz', np.zeros(2), np.eye(2))
  assert not list((tmp_path / 'no_such_folder').parent.glob('.*partial*'))


def test_a_run_on_other_images_is_scored_on_the_inception_against_a_cached_reference(reference, tmp_path, monkeypatch):
  """eval.features='auto' with weights: eval/fid_inception etc. during training, the training images'
  statistics cached beside the packed set and reused by ganjax.evaluate; without weights one line says
  how to turn FID on; 'inception' without weights is a one-line error."""
  from ganjax import dataset, evaluate, fid, inception_metrics, train
  from tests.conftest import run_cli
  from tests.test_dataset import make_folder
  from tests.test_images import _tiny

  _, weights = reference
  monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path / 'cache'))
  monkeypatch.delenv(inception.WEIGHTS_ENV, raising=False)
  packed = tmp_path / 'p32'
  dataset.pack(make_folder(tmp_path / 'src', per_class=10), packed, '32', labels='none', progress=False)
  config = _tiny('images_dcgan', packed, steps=4)
  config.eval.num_samples, config.eval.reference_num, config.eval.batch_size = 10, 20, 10
  config.eval.inception_weights, config.eval.allow_other_weights = str(weights), True
  train.train_and_evaluate(config, tmp_path / 'run')
  rows = [json.loads(line) for line in (tmp_path / 'run' / 'metrics.jsonl').read_text().splitlines()]
  (scores,) = [row for row in rows if 'eval/fid_inception' in row]
  for name in ('fid_inception', 'kid_inception', 'is', 'precision_inception', 'coverage_inception', 'pixel_std'):
    assert np.isfinite(scores[f'eval/{name}']), name
  assert scores['eval/fid_inception'] > 0 and scores['eval/is'] >= 1
  # The reference: 20 of the 30 training images, cached beside the set; its statistics are theirs.
  (cached,) = packed.glob('fid_reference-*-20.npz')
  images, _, _ = packed_lib.open_packed(packed)
  variables, _, _ = inception.load_weights(weights, allow_other=True)
  pool, _ = inception.extract(variables, images[inception_metrics.subset(len(images), 20)], 10)
  with np.load(cached) as ref:
    np.testing.assert_allclose(ref['mu'], fid.statistics(pool)[0], rtol=1e-5, atol=1e-6)
  stamp = cached.stat().st_mtime_ns
  proc = run_cli(
    'ganjax.evaluate', f'--workdir={tmp_path / "run"}', '--num=10', env={'XDG_CACHE_HOME': str(tmp_path / 'cache')}
  )
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert 'features: FID Inception (other weights' in proc.stdout and 'fid_inception' in proc.stdout
  assert cached.stat().st_mtime_ns == stamp  # reused, not computed again
  # No weights: pixel statistics, and one line on how to turn FID on.
  said = []
  config.eval.inception_weights = ''
  score, what = evaluate.make_scorer(config, images, say=said.append)
  assert 'pixel' in what and len(said) == 1 and 'set --config.eval.inception_weights' in said[0]
  assert set(score(np.zeros((10, 32, 32, 3), np.float32))) == {'pixel_std'}
  config.eval.features = 'inception'
  with pytest.raises(DataError, match='need the FID Inception weights'):
    evaluate.make_scorer(config, images)
