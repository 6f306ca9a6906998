"""Reads a PyTorch `state_dict` file (`torch.save`) into NumPy arrays, without PyTorch.

A `.pth` file is either a zip (torch >= 1.6's default: `<name>/data.pkl`, a pickle whose tensors
point by key at raw little-endian arrays stored as `<name>/data/<key>`) or the older "legacy"
stream (pickled magic number, protocol and system info, the pickle, the list of storage keys, then
each storage as an int64 element count and its bytes). Both are read here.

The pickle is not trusted: `find_class` admits only what a state dict holds (an OrderedDict, tensor
and parameter rebuilders, typed storages), so a crafted file cannot run code; anything else is a
DataError naming the file and the object.
"""

import collections
import io
import pathlib
import pickle
import zipfile
from typing import Any, NamedTuple

import numpy as np

from ganjax.errors import DataError

_DTYPES = {
  'FloatStorage': np.float32,
  'DoubleStorage': np.float64,
  'HalfStorage': np.float16,
  'LongStorage': np.int64,
  'IntStorage': np.int32,
  'ShortStorage': np.int16,
  'CharStorage': np.int8,
  'ByteStorage': np.uint8,
  'BoolStorage': np.bool_,
}
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


class _Storage:
  """A typed storage class as the pickle names it (`torch.FloatStorage`): its NumPy dtype."""

  def __init__(self, dtype):
    self.dtype = np.dtype(dtype).newbyteorder('<')


class _Later(NamedTuple):
  """A legacy file's storage, whose bytes follow the pickle."""

  key: str
  dtype: np.dtype


class _Deferred(NamedTuple):
  """A tensor of a legacy file, built once its storage's bytes are read."""

  storage: _Later
  args: tuple


def _rebuild_tensor(storage, offset, size, stride, *_):
  if isinstance(storage, _Later):
    return _Deferred(storage, (offset, size, stride))
  if not size:
    return np.array(storage[offset], copy=True)
  item = storage.itemsize
  view = np.lib.stride_tricks.as_strided(storage[offset:], tuple(size), tuple(s * item for s in stride))
  return np.array(view, dtype=storage.dtype.newbyteorder('='), copy=True)


def _rebuild_parameter(data, *_):
  return data


_ALLOWED = {
  ('collections', 'OrderedDict'): collections.OrderedDict,
  ('torch._utils', '_rebuild_tensor_v2'): _rebuild_tensor,
  ('torch._utils', '_rebuild_tensor'): _rebuild_tensor,
  ('torch._utils', '_rebuild_parameter'): _rebuild_parameter,
}


class _Unpickler(pickle.Unpickler):
  def __init__(self, file, path: pathlib.Path, read_storage):
    super().__init__(file)
    self.path, self.read_storage, self.storages = path, read_storage, {}

  def find_class(self, module: str, name: str) -> Any:
    if (module, name) in _ALLOWED:
      return _ALLOWED[module, name]
    if module == 'torch' and name in _DTYPES:
      return _Storage(_DTYPES[name])
    raise DataError(f'{self.path} holds {module}.{name}, which is not part of a state dict: not read')

  def persistent_load(self, pid):
    if not (isinstance(pid, tuple) and pid and pid[0] == 'storage' and isinstance(pid[1], _Storage)):
      raise DataError(f'{self.path}: unexpected persistent id {pid!r:.80}')
    kind, key = pid[1], str(pid[2])
    if len(pid) > 5 and pid[5] is not None:
      raise DataError(f'{self.path}: storage views (legacy format) are not supported')
    if key not in self.storages:
      self.storages[key] = self.read_storage(key, kind.dtype)
    return self.storages[key]


def load_state_dict(path: str | pathlib.Path) -> dict[str, np.ndarray]:
  """The tensors of a `torch.save`d state dict as {name: array}; DataError in one line for a bad file."""
  path = pathlib.Path(path)
  try:
    state = _load_zip(path) if zipfile.is_zipfile(path) else _load_legacy(path)
  except DataError:
    raise
  except (OSError, EOFError, ValueError, KeyError, pickle.UnpicklingError, zipfile.BadZipFile) as e:
    raise DataError(f'{path} is not a readable PyTorch state dict: {e}') from e
  if not isinstance(state, dict) or not all(isinstance(v, np.ndarray) for v in state.values()):
    raise DataError(f'{path} does not hold a state dict of tensors')
  return dict(state)


def _load_zip(path: pathlib.Path) -> Any:
  with zipfile.ZipFile(path) as archive:
    pickles = [n for n in archive.namelist() if n.endswith('/data.pkl') or n == 'data.pkl']
    if len(pickles) != 1:
      raise DataError(f'{path} is a zip but not a PyTorch checkpoint (no single data.pkl)')
    prefix = pickles[0][: -len('data.pkl')]

    def read_storage(key: str, dtype: np.dtype) -> np.ndarray:
      return np.frombuffer(archive.read(f'{prefix}data/{key}'), dtype)

    with archive.open(pickles[0]) as f:
      return _Unpickler(io.BytesIO(f.read()), path, read_storage).load()


def _load_legacy(path: pathlib.Path) -> Any:
  with open(path, 'rb') as f:
    header = _Unpickler(f, path, None)
    if header.load() != _LEGACY_MAGIC:
      raise DataError(f'{path} is neither a zip nor a legacy PyTorch file (wrong magic number)')
    header.load(), header.load()  # protocol version, system info
    unpickler = _Unpickler(f, path, _Later)  # tensors come out as _Deferred: their bytes follow
    state = unpickler.load()
    data = {}
    for key in _Unpickler(f, path, None).load():  # the storages, in this order
      dtype = unpickler.storages[str(key)].dtype
      count = int(np.frombuffer(f.read(8), '<i8')[0])
      data[str(key)] = np.frombuffer(f.read(count * dtype.itemsize), dtype)
  if not isinstance(state, dict) or not all(isinstance(t, _Deferred) for t in state.values()):
    raise DataError(f'{path} does not hold a state dict of tensors')
  return {name: _rebuild_tensor(data[t.storage.key], *t.args) for name, t in state.items()}
