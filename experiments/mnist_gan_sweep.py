"""Three seeds of the default experiment trained side by side in one compiled program.

`sweep.field` names the config field to vary and `sweep.choices` its values,
one member each; members are vmapped over stacked states, so K members cost
one compilation and one dispatch per step. Member k writes its metrics,
sample grids and metrics.png to WORKDIR/member_k; the checkpoint holds all
members (`ganjax.restore(WORKDIR, member=k)` picks one).

Sweepable: 'seed', 'opt.g_lr', 'opt.d_lr', 'loss.real_label'. For a learning
rate sweep, e.g.:
  python -m ganjax.main --config=experiments/mnist_gan_sweep.py --workdir=runs/lr_sweep \
    --config.sweep.field=opt.g_lr --config.sweep.choices='(1e-4, 2e-4, 4e-4)'

Launch:
  python -m ganjax.main --config=experiments/mnist_gan_sweep.py --workdir=runs/mnist_gan_sweep
"""

from ganjax.config import sibling


def get_config():
  config = sibling(__file__, 'mnist_gan')
  config.sweep.field = 'seed'
  config.sweep.choices = (0, 1, 2)
  return config
