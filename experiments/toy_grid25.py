"""Toy benchmark: 25 Gaussians on a 5x5 grid (spacing 2, std 0.05), MLP G and D.

The same model and training as `toy_ring8.py`, on the harder grid.

Launch:
  python -m ganjax.main --config=experiments/toy_grid25.py --workdir=runs/toy_grid25
"""

from ganjax.config import sibling


def get_config():
  config = sibling(__file__, 'toy_ring8')
  config.data.toy_name = 'grid25'
  return config
