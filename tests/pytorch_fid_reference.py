"""pytorch-fid, the reference of ganjax.inception and ganjax.fid, importable beside this project's CPU torch.

PyPI's torchvision wheels are built against PyPI's CUDA torch; beside the CPU torch wheel (the bench
extra) their C extension does not load, and torchvision 0.28's import then stops at two fake-kernel
registrations for its `nms` and `qnms` operators. Defining those two operator schemas first lets
torchvision import; its model definitions (all pytorch-fid uses) are pure Python. Run as a script,
this file is `python -m pytorch_fid` with that shim.
"""

import contextlib
import sys
from unittest import mock

_LIBS = []  # the schema library must outlive the import


def import_torchvision():
  import torch

  try:
    import torchvision
  except RuntimeError as e:
    if 'torchvision::nms' not in str(e):
      raise
    for name in [m for m in sys.modules if m == 'torchvision' or m.startswith('torchvision.')]:
      del sys.modules[name]
    lib = torch.library.Library('torchvision', 'DEF')
    for op in ('nms', 'qnms'):
      lib.define(f'{op}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor')
    _LIBS.append(lib)
    import torchvision
  return torchvision


def random_fid_inception(seed: int = 0):
  """pytorch-fid's FID Inception (torchvision's Inception3 with its FID blocks) with random weights,
  BatchNorm affine terms randomised and running statistics calibrated on random images, so that every
  layer's activations are of unit scale (an uncalibrated random network fades to zeros)."""
  import torch

  import_torchvision()
  from pytorch_fid import inception

  torch.manual_seed(seed)
  with (
    mock.patch.object(inception, 'load_state_dict_from_url', lambda *a, **k: None),
    mock.patch.object(torch.nn.Module, 'load_state_dict', lambda self, *a, **k: None),
  ):
    net = inception.fid_inception_v3()
  bns = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
  with torch.no_grad():
    for bn in bns:
      bn.weight.uniform_(0.5, 1.5), bn.bias.normal_(0, 0.1)
      bn.momentum = None  # a cumulative average: after one batch, that batch's statistics
      bn.reset_running_stats()
    net.train()
    x = 2 * torch.nn.functional.interpolate(torch.rand(16, 3, 64, 64), size=(299, 299), mode='bilinear') - 1
    for block in ('Conv2d_1a_3x3', 'Conv2d_2a_3x3', 'Conv2d_2b_3x3'):
      x = getattr(net, block)(x)
    x = torch.nn.functional.max_pool2d(x, 3, 2)
    x = torch.nn.functional.max_pool2d(net.Conv2d_4a_3x3(net.Conv2d_3b_1x1(x)), 3, 2)
    for block in ('5b', '5c', '5d', '6a', '6b', '6c', '6d', '6e', '7a', '7b', '7c'):
      x = getattr(net, f'Mixed_{block}')(x)
  net.eval()
  return net


@contextlib.contextmanager
def hub_with(weights_file):
  """A torch home (yielded: TORCH_HOME for a subprocess) whose hub cache, also set in this process, holds
  `weights_file` under pytorch-fid's name: `load_state_dict_from_url` then loads it instead of downloading."""
  import pathlib
  import shutil
  import tempfile

  import torch
  from pytorch_fid.inception import FID_WEIGHTS_URL

  old = torch.hub.get_dir()
  with tempfile.TemporaryDirectory() as home:
    hub = pathlib.Path(home) / 'hub'
    (hub / 'checkpoints').mkdir(parents=True)
    shutil.copy(weights_file, hub / 'checkpoints' / FID_WEIGHTS_URL.rsplit('/', 1)[1])
    torch.hub.set_dir(str(hub))
    try:
      yield pathlib.Path(home)
    finally:
      torch.hub.set_dir(old)


if __name__ == '__main__':  # python tests/pytorch_fid_reference.py ARGS: python -m pytorch_fid ARGS
  import_torchvision()
  from pytorch_fid import fid_score

  fid_score.main()
