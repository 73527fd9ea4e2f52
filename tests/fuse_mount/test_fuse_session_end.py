"""The own FUSE loop's end: when the connection goes away every worker returns on its
own while the session wakes the others with a signal.  Signalling a worker that
had just exited crashed the daemon (SIGSEGV in ``pthread_kill``) at about one
unmount in ten, before its clean-up ran (found as cache directives left behind
after NodeUnstageVolume).

A pipe stands in for ``/dev/fuse``: closing its write end makes every blocked
``read`` return at once, as ENODEV does at an unmount.  The loop runs in a child
process, since the bug kills the process it is in; 500 endings with 32 workers
crashed the old code every time (4 of 4 runs) and take a few seconds.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

_ENDINGS = textwrap.dedent("""
    import os, sys
    from fuse_mount.session import Session
    for _ in range(500):
        r, w = os.pipe()
        s = Session(r, lambda opcode: None, threads=32)
        s.start()
        os.close(w)        # every worker's read returns 0: the connection ended
        s.wait()
        assert s.ended
        os.close(r)
    print("ended 500 times")
""")


def test_a_session_ends_cleanly_when_its_workers_all_see_the_end_at_once() -> None:
    proc = subprocess.run([sys.executable, "-c", _ENDINGS], capture_output=True, text=True,
                          timeout=240)
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-2000:])
    assert "ended 500 times" in proc.stdout
