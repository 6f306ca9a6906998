"""ganjax: GANs in JAX/Flax, from the tutorial MNIST GAN to a research baseline.

run = ganjax.restore('runs/mnist_gan')      # .config, .g_state, .d_state, .step
images = ganjax.sample(run, 64, seed=0)     # numpy (64, 28, 28, 1) in [-1, 1]
rows = ganjax.class_grid(run, per_class=10)  # a conditional run: one row per class
"""

import importlib

__version__ = '0.1.0'
__all__ = ['Run', 'class_grid', 'restore', 'sample', 'train_and_evaluate']

# Loaded on first use, so `python -m ganjax.<tool>` does not import its own module twice.
_LAZY = {
  'Run': 'ganjax.checkpoint',
  'restore': 'ganjax.checkpoint',
  'sample': 'ganjax.sampling',
  'class_grid': 'ganjax.sampling',
  'train_and_evaluate': 'ganjax.train',
}


def __getattr__(name: str):
  if name in _LAZY:
    return getattr(importlib.import_module(_LAZY[name]), name)
  raise AttributeError(f'module ganjax has no attribute {name!r}')
