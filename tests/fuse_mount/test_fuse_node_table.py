"""The journal a successor daemon replays: every node id and handle the kernel may
still send must come back with its path, whatever happened in between."""

from __future__ import annotations

import os
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from fuse_mount.node_table import ROOT, NodeTable


def test_replay_gives_back_ids_renames_and_handles(tmp_path: Path) -> None:
    j = str(tmp_path / "nodes.journal")
    t = NodeTable(j)
    a = t.lookup("/a")
    ab = t.lookup("/a/b\tweird\nname")
    gone = t.lookup("/gone")
    t.forget(gone, 1)
    t.rename("/a", "/z")
    fh_r = t.new_handle("r", os.O_RDONLY, "/z/b\tweird\nname")
    fh_w = t.new_handle("w", os.O_WRONLY | os.O_CREAT, "/z/new")
    fh_done = t.new_handle("w", os.O_WRONLY, "/z/done")
    t.finished(fh_done)
    fh_closed = t.new_handle("r", 0, "/z")
    t.close_handle(fh_closed)
    # the daemon dies here: no close(), no flush
    s = NodeTable(j)
    assert s.path(ROOT) == "/"
    assert s.path(a) == "/z" and s.path(ab) == "/z/b\tweird\nname"
    assert s.path(gone) is None
    assert s.lookup("/z") == a                     # the same name keeps its id
    assert {fh: (h.kind, h.path, h.finished) for fh, h in s.handles.items()} == {
        fh_r: ("r", "/z/b\tweird\nname", False), fh_w: ("w", "/z/new", False),
        fh_done: ("w", "/z/done", True)}
    assert s.lookup("/fresh") not in (a, ab, gone)
    s.lost(fh_w)
    assert NodeTable(j).handles[fh_w].kind == "l"   # a later successor leaves it alone


def test_a_torn_last_record_keeps_everything_before_it(tmp_path: Path) -> None:
    j = tmp_path / "nodes.journal"
    t = NodeTable(str(j))
    x = t.lookup("/x")
    t.close()
    with open(j, "ab") as fh:
        fh.write(b"N\t99")                         # SIGKILL in the middle of a write
    assert NodeTable(str(j)).path(x) == "/x"


def test_compaction_keeps_the_live_records_only(tmp_path: Path) -> None:
    j = tmp_path / "nodes.journal"
    t = NodeTable(str(j))
    keep = t.lookup("/keep")
    for i in range(6000):                          # many short-lived nodes
        t.forget(t.lookup(f"/tmp{i}"), 1)
    assert len(j.read_bytes().splitlines()) < 6000   # compacted on the way
    assert NodeTable(str(j)).path(keep) == "/keep"


names = st.sampled_from(["a", "b", "c"])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["lookup", "forget", "rename", "detach"]),
                          names, names), max_size=40))
def test_replay_equals_the_live_table(tmp_path_factory, ops) -> None:
    """Whatever sequence of lookups, forgets, renames and removals: a replay of the
    journal resolves every live node id to the same path as the table that wrote it."""
    j = str(tmp_path_factory.mktemp("j") / "nodes.journal")
    t = NodeTable(j)
    ids: list[int] = []
    for op, x, y in ops:
        if op == "lookup":
            ids.append(t.lookup(f"/{x}/{y}" if x != y else f"/{x}"))
        elif op == "forget" and ids:
            t.forget(ids.pop(0), 1)
        elif op == "rename":
            t.rename(f"/{x}", f"/{y}") if x != y else None
        else:
            t.detach(f"/{x}")
    s = NodeTable(j)
    for nodeid in set(ids):
        assert s.path(nodeid) == t.path(nodeid)
