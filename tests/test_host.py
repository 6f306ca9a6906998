"""ganjax.host: glibc's allocator told to keep freed memory, so XLA:CPU's large buffers stop page-faulting."""

import json
import os
import pathlib
import subprocess
import sys

import pytest

from ganjax import host
from ganjax.config import tutorial_config

# A jitted program with an 81 MB temporary (the matmul's output, before the reduction): above the
# 64 MiB that a worker thread's glibc arena holds, so by default it is mmap'd afresh on every call.
_PROBE = """
import json, resource, sys
from ganjax import host
from ganjax.config import tutorial_config
applied = host.keep_freed_memory() if sys.argv[1] == 'keep' else None
import jax, jax.numpy as jnp
f = jax.jit(lambda a, b: jnp.sum(jnp.tanh(a @ b)))
a, b = jnp.ones((4500, 8)), jnp.ones((8, 4500))
f(a, b).block_until_ready()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(3):
  f(a, b).block_until_ready()
print(json.dumps({'applied': applied, 'faults': (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 3}))
"""


def _probe(mode: str, **env) -> dict:
  clean = {k: v for k, v in os.environ.items() if k not in host._USER_SETTINGS}
  out = subprocess.run(
    [sys.executable, '-c', _PROBE, mode], env={**clean, 'JAX_PLATFORMS': 'cpu', **env}, capture_output=True, text=True
  )
  assert out.returncode == 0, out.stderr
  return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith('linux'), reason='glibc only')
def test_kept_memory_stops_the_page_faults_of_large_xla_buffers():
  default, kept = _probe('default'), _probe('keep')
  assert kept['applied'] is True
  # By default each call maps its 81 MB afresh: one fault per 4 KiB page it writes.
  assert default['faults'] > 10_000, default
  assert kept['faults'] < default['faults'] / 10, (kept, default)


def test_the_environments_own_malloc_settings_win():
  assert host.keep_freed_memory({'MALLOC_ARENA_MAX': '4'}) is False
  assert host.keep_freed_memory({'MALLOC_TRIM_THRESHOLD_': '0'}) is False


def test_compilation_cache_folder_follows_the_environment(tmp_path):
  home = pathlib.Path.home()
  assert host.compilation_cache_dir({}) == home / '.cache' / 'ganjax'
  assert host.compilation_cache_dir({'XDG_CACHE_HOME': str(tmp_path)}) == tmp_path / 'ganjax'
  assert host.compilation_cache_dir({'GANJAX_COMPILATION_CACHE': str(tmp_path / 'c')}) == tmp_path / 'c'
  assert host.compilation_cache_dir({'GANJAX_COMPILATION_CACHE': 'off'}) is None
  # JAX's own setting is left to JAX, unless ganjax's variable names a folder.
  assert host.compilation_cache_dir({'JAX_COMPILATION_CACHE_DIR': str(tmp_path)}) is None


_COMPILE = """
import sys
from ganjax import host
from ganjax.config import tutorial_config
print(host.enable_compilation_cache())
import jax, jax.numpy as jnp
print(float(jax.jit(lambda x: jnp.sin(x) @ jnp.cos(x).T)(jnp.ones((64, 64))).sum()))
"""


def _compile(env: dict) -> subprocess.Popen:
  clean = {k: v for k, v in os.environ.items() if not k.startswith('JAX_')}
  return subprocess.Popen(
    [sys.executable, '-c', _COMPILE], env={**clean, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
  )


def test_compilation_cache_is_shared_by_concurrent_processes(tmp_path):
  cache = tmp_path / 'cache'
  procs = [_compile({'GANJAX_COMPILATION_CACHE': str(cache)}) for _ in range(3)]
  results = [p.communicate(timeout=300) for p in procs]
  for (out, err), p in zip(results, procs, strict=True):
    assert p.returncode == 0, err
    assert 'Error' not in err and 'warning' not in err.lower(), err
    assert out.split() == [str(cache), results[0][0].split()[1]]
  entries = list(cache.glob('*-cache'))
  assert entries, 'nothing was cached'
  # A later process reads the entries back (a hit leaves the entry count as it was) and agrees.
  out, err = _compile({'GANJAX_COMPILATION_CACHE': str(cache)}).communicate(timeout=300)
  assert out.split()[1] == results[0][0].split()[1] and len(list(cache.glob('*-cache'))) == len(entries)


def test_unwritable_compilation_cache_warns_once_and_goes_on(tmp_path):
  blocker = tmp_path / 'file'
  blocker.write_text('not a folder')
  proc = _compile({'GANJAX_COMPILATION_CACHE': str(blocker / 'cache')})
  out, err = proc.communicate(timeout=300)
  assert proc.returncode == 0, err
  lines = [line for line in err.splitlines() if line.strip()]
  assert len(lines) == 1 and lines[0].startswith('ganjax: warning: the compilation cache'), err
  assert out.split()[0] == 'None'


def test_lax_conv_runs_get_eigen_convolutions_when_this_jaxlib_knows_the_flag():
  assert not host.xla_knows('--xla_ganjax_no_such_flag=1')  # XLA aborts the probe, not this process
  known = host.xla_knows(host.EIGEN_CONV_FLAG)
  model = tutorial_config().model
  env = {}
  assert not host.prefer_eigen_convolutions(model, env) and env == {}  # 'auto': patches on CPU, no lax.conv
  model.d_conv_impl = 'xla'
  assert host.prefer_eigen_convolutions(model, env) == known
  assert env == ({'XLA_FLAGS': host.EIGEN_CONV_FLAG} if known else {})
  chosen = {'XLA_FLAGS': '--xla_cpu_experimental_ynn_fusion_type=individual_dot'}
  assert not host.prefer_eigen_convolutions(model, chosen)  # the user's own choice stays
  assert chosen == {'XLA_FLAGS': '--xla_cpu_experimental_ynn_fusion_type=individual_dot'}
  resnet, env = tutorial_config().model, {}
  resnet.g_arch = 'resnet'  # its stride-1 convolutions are lax.convs whatever conv_impl says
  assert host.prefer_eigen_convolutions(resnet, env) == known
  env = {}  # the FID Inception's convolutions are lax.convs too (ganjax.fid, ganjax.evaluate, eval.features)
  assert host.prefer_eigen_convolutions(None, env, inception=True) == known
  assert env == ({'XLA_FLAGS': host.EIGEN_CONV_FLAG} if known else {})
