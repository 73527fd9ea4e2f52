"""Metadata cache: TTL, negative entries, listings fill attributes, invalidation."""

from __future__ import annotations

from fuse_mount.metadata import MISSING, MetadataCache
from hdfs_client.base import FileStatus


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


def st(path, is_dir=False, length=0):
    return FileStatus(path=path, is_dir=is_dir, length=length, permission=0o644, owner="u",
                      group="g", mtime_ms=1, atime_ms=1)


def test_attr_expires_after_ttl():
    clock = Clock()
    c = MetadataCache(5, clock=clock)
    c.put_attr("/a", st("/a"))
    clock.t += 4.9
    assert c.get_attr("/a") == st("/a")
    clock.t += 0.2
    assert c.get_attr("/a") is MISSING


def test_negative_entries():
    clock = Clock()
    c = MetadataCache(5, clock=clock)
    c.put_negative("/nope")
    assert c.get_attr("/nope") is None
    clock.t += 6
    assert c.get_attr("/nope") is MISSING


def test_listing_fills_child_attributes():
    c = MetadataCache(5, clock=Clock())
    children = [st(f"/d/f{i}", length=i) for i in range(1000)]
    c.put_listing("/d", children)
    assert c.get_listing("/d") == children
    assert c.get_attr("/d/f999").length == 999


def test_root_listing_paths():
    c = MetadataCache(5, clock=Clock())
    c.put_listing("/", [st("/x")])
    assert c.get_attr("/x") == st("/x")


def test_invalidate_drops_parent_listing_and_tree():
    c = MetadataCache(5, clock=Clock())
    c.put_listing("/d", [st("/d/a"), st("/d/sub", is_dir=True)])
    c.put_listing("/d/sub", [st("/d/sub/x")])
    c.invalidate("/d/a")
    assert c.get_listing("/d") is None and c.get_attr("/d/a") is MISSING
    c.invalidate_tree("/d/sub")
    assert c.get_attr("/d/sub/x") is MISSING and c.get_listing("/d/sub") is None


def test_ttl_zero_disables():
    c = MetadataCache(0)
    c.put_attr("/a", st("/a"))
    c.put_listing("/", [st("/a")])
    assert c.get_attr("/a") is MISSING and c.get_listing("/") is None


def test_entry_bound():
    c = MetadataCache(5, max_entries=100, clock=Clock())
    for i in range(1000):
        c.put_attr(f"/f{i}", st(f"/f{i}"))
    assert len(c) == 100
    assert c.get_attr("/f999") is not MISSING and c.get_attr("/f0") is MISSING


def test_results_older_than_an_invalidation_are_not_cached():
    c = MetadataCache(5, clock=Clock())
    token = c.token()                 # an RPC starts ...
    c.invalidate("/d/new")            # ... a file is created meanwhile ...
    c.put_listing("/d", [st("/d/a")], token)   # ... the old answer arrives
    c.put_negative("/d/new", token)
    assert c.get_listing("/d") is None and c.get_attr("/d/new") is MISSING
    assert not c.listed_absent("/d/new")
    c.put_listing("/d", [st("/d/a")], c.token())
    assert c.listed_absent("/d/new") and not c.listed_absent("/d/a")


def test_listings_are_bounded_by_total_children():
    c = MetadataCache(5, max_entries=1000, clock=Clock())
    for d in range(5):
        c.put_listing(f"/d{d}", [st(f"/d{d}/f{i}") for i in range(400)])
    kept = [d for d in range(5) if c.get_listing(f"/d{d}") is not None]
    assert kept == [3, 4]                     # 2 x 400 <= 1000 < 3 x 400, newest kept
    c.invalidate("/d4/f0")                    # drops /d4's listing and its count
    c.put_listing("/d5", [st(f"/d5/f{i}") for i in range(600)])
    assert c.get_listing("/d3") is not None and c.get_listing("/d5") is not None
    c.put_listing("/huge", [st(f"/huge/f{i}") for i in range(5000)])
    assert c.get_listing("/huge") is None     # too big to keep as a listing...
    assert c.get_attr("/huge/f4999") is not MISSING  # ...but its attributes are cached
