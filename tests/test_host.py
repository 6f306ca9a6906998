"""ganjax.host: glibc's allocator told to keep freed memory, so XLA:CPU's large buffers stop page-faulting."""

import json
import os
import subprocess
import sys

import pytest

from ganjax import host

# A jitted program with an 81 MB temporary (the matmul's output, before the reduction): above the
# 64 MiB that a worker thread's glibc arena holds, so by default it is mmap'd afresh on every call.
_PROBE = """
import json, resource, sys
from ganjax import host
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
