"""`python tests/hang_in_save.py STEP MARKER <ganjax.main flags>`: ganjax.main, with the save of STEP hanging.

The save hangs inside Orbax (its temporary folder made, the metadata not written) after writing
the file MARKER, so that a test can kill the process provably in the middle of a save. The patch
lives here, not in ganjax: production code carries no test hooks.
"""

import pathlib
import sys
import time

import orbax.checkpoint as ocp
from absl import app

from ganjax import checkpoint, main

STEP, MARKER = int(sys.argv[1]), pathlib.Path(sys.argv[2])
_save = checkpoint.Checkpointer.save


def _save_that_hangs(self, step, *args, **kwargs):
  if step == STEP:

    async def hang_forever(handler, directory, *unused_args, **unused_kwargs):
      # Orbax may create the temporary folders on a background thread, after this call starts:
      # the marker waits for them, so that the test sees a save provably midway.
      while not pathlib.Path(directory).exists():
        time.sleep(0.01)
      MARKER.write_text(str(directory))
      while True:
        time.sleep(60)

    ocp.JsonCheckpointHandler.async_save = hang_forever
  return _save(self, step, *args, **kwargs)


checkpoint.Checkpointer.save = _save_that_hangs

if __name__ == '__main__':
  sys.argv = [sys.argv[0], *sys.argv[3:]]
  app.run(main.main, flags_parser=main._parse_flags)
