"""The MNIST feature network behind ganjax's sample-quality metrics.

A small CNN trained deterministically on the first half of the shipped MNIST
test split (5,000 digits; the only real MNIST that ships here); the second
half (5,000 digits) is held out, both to measure its accuracy and as the
reference set of the metrics. Its 128-d penultimate activations are the
features of the "classifier Frechet distance" and friends, which are not
Inception FIDs and must not be compared with them.

Reproduce the shipped weights (about a minute on 2 CPU cores):

  python -m ganjax.classifier
"""

import json
import pathlib
import sys

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from ganjax import input_pipeline
from ganjax.errors import DataError

WEIGHTS = pathlib.Path(__file__).parent / 'data' / 'mnist_classifier.msgpack'
RECORD = WEIGHTS.with_suffix('.json')
NUM_TRAIN = input_pipeline.CLASSIFIER_HALF  # the first half of the shipped split trains; the rest is held out
FEATURES = 128
_SEED, _EPOCHS, _BATCH, _LR = 0, 20, 100, 1e-3


class Classifier(nn.Module):
  """Conv32-pool-Conv64-pool-Dense128-Dense10; `features()` is the 128-d layer."""

  @nn.compact
  def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    for width in (32, 64):
      x = nn.relu(nn.Conv(width, (3, 3))(x))
      x = nn.max_pool(x, (2, 2), strides=(2, 2))
    features = nn.relu(nn.Dense(FEATURES)(x.reshape((x.shape[0], -1))))
    return features, nn.Dense(10)(features)


def split() -> tuple[input_pipeline.Dataset, input_pipeline.Dataset]:
  """(train half, held-out half) of the shipped MNIST test split, images uint8."""
  ds = input_pipeline.load_shipped_mnist()
  train = input_pipeline.Dataset(ds.images[:NUM_TRAIN], ds.labels[:NUM_TRAIN], 'mnist-test[:5000]')
  held_out = input_pipeline.Dataset(ds.images[NUM_TRAIN:], ds.labels[NUM_TRAIN:], 'mnist-test[5000:]')
  return train, held_out


def train_classifier() -> tuple[dict, float]:
  """Trains the classifier from seed 0; returns (params, held-out accuracy)."""
  train, held_out = split()
  x = input_pipeline.to_unit_range(jnp.asarray(train.images))
  y = jnp.asarray(train.labels)
  model = Classifier()
  params = model.init(jax.random.key(_SEED), x[:1])['params']
  tx = optax.adam(_LR)
  opt_state = tx.init(params)

  def shift(image, key):  # random translation by up to 2 pixels: cheap augmentation
    padded = jnp.pad(image, ((2, 2), (2, 2), (0, 0)), constant_values=-1.0)
    dy, dx = jax.random.randint(key, (2,), 0, 5)
    return jax.lax.dynamic_slice(padded, (dy, dx, 0), image.shape)

  @jax.jit
  def step(params, opt_state, xb, yb, key):
    xb = jax.vmap(shift)(xb, jax.random.split(key, len(xb)))

    def loss_fn(p):
      logits = model.apply({'params': p}, xb)[1]
      return optax.softmax_cross_entropy_with_integer_labels(logits, yb).mean()

    grads = jax.grad(loss_fn)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state

  for epoch in range(_EPOCHS):
    perm = jax.random.permutation(jax.random.fold_in(jax.random.key(_SEED), epoch), len(x))
    for i in range(len(x) // _BATCH):
      idx = perm[i * _BATCH : (i + 1) * _BATCH]
      key = jax.random.fold_in(jax.random.key(_SEED + 1), epoch * 1000 + i)
      params, opt_state = step(params, opt_state, x[idx], y[idx], key)
  return params, accuracy(params, held_out)


def accuracy(params: dict, ds: input_pipeline.Dataset) -> float:
  """Top-1 accuracy on a dataset of uint8 images."""
  logits = predict(params, np.asarray(input_pipeline.to_unit_range(jnp.asarray(ds.images))))[1]
  return float(np.mean(np.argmax(logits, axis=1) == ds.labels))


@jax.jit
def _apply(params: dict, images: jax.Array) -> tuple[jax.Array, jax.Array]:
  return Classifier().apply({'params': params}, images)


def predict(params: dict, images: np.ndarray, batch: int = 1000) -> tuple[np.ndarray, np.ndarray]:
  """(features (N, 128), logits (N, 10)) of images (N, 28, 28, 1) in [-1, 1], in batches."""
  feats, logits = [], []
  for i in range(0, len(images), batch):
    f, lg = _apply(params, jnp.asarray(images[i : i + batch], jnp.float32))
    feats.append(np.asarray(f))
    logits.append(np.asarray(lg))
  return np.concatenate(feats), np.concatenate(logits)


def load() -> dict:
  """The shipped classifier params; DataError if the file is missing or does not fit."""
  if not WEIGHTS.is_file():
    raise DataError(f'missing classifier weights {WEIGHTS}; rebuild them with `python -m ganjax.classifier`')
  template = Classifier().init(jax.random.key(0), jnp.zeros((1, 28, 28, 1)))['params']
  try:
    return flax.serialization.from_bytes(template, WEIGHTS.read_bytes())
  except Exception as e:
    raise DataError(f'classifier weights {WEIGHTS} are unreadable: {e}') from e


def recorded_accuracy() -> float:
  """The held-out accuracy written when the shipped weights were trained."""
  return json.loads(RECORD.read_text())['held_out_accuracy']


def main() -> None:
  params, acc = train_classifier()
  WEIGHTS.write_bytes(flax.serialization.to_bytes(params))
  record = {
    'held_out_accuracy': acc,
    'train': 'shipped MNIST test split, images 0-4999',
    'held_out': 'shipped MNIST test split, images 5000-9999',
    'seed': _SEED,
    'epochs': _EPOCHS,
    'batch_size': _BATCH,
    'adam_lr': _LR,
    'augmentation': 'random shifts of up to 2 pixels',
  }
  RECORD.write_text(json.dumps(record, indent=2) + '\n')
  print(f'held-out accuracy {acc:.4f}; wrote {WEIGHTS} ({WEIGHTS.stat().st_size // 1024} KiB) and {RECORD}')


if __name__ == '__main__':
  sys.exit(main())
