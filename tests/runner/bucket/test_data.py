"""The data phase against a real S3 server: sync, manifest, prefixes, incremental, stale files."""

from __future__ import annotations

import json
import os
import stat
import time

import pytest

from launcher.runner import data
from launcher.runner.s3 import MASTER_KEY_HINT, ObjectInfo
from launcher.runner.spec import DataLink, DataSource, RunSecrets
from launcher.runner.status import PhaseFailed

from .conftest import make_context, put, secret_free

DATASET = {"a.bin": b"alpha-1", "sub/b.bin": b"bravo-22", "sub/deep/c.bin": b"c" * 3000}


@pytest.fixture
def dataset(s3_server, bucket, tmp_path):
    for key, body in DATASET.items():
        put(s3_server, bucket, f"datasets/v1/{key}", body, tmp_path)
    return DATASET


def tree(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_sync_fetches_the_prefix_and_counts_it(ctx, dataset):
    manifest = data.sync(ctx)
    assert (manifest.files, manifest.bytes) == (3, sum(len(b) for b in dataset.values()))
    assert manifest.source == f"s3://{ctx.spec.storage.bucket}/datasets/v1/"
    assert manifest.fetched == 3 and manifest.removed == 0
    assert tree(ctx.mount / "data") == dataset
    for path in (ctx.mount / "data").rglob("*"):
        assert path.stat().st_mode & 0o004, path  # the trainer can read it
    log = (ctx.mount.parent / "log" / "runner.log").read_text()
    assert "3 files" in log and secret_free(log)


@pytest.mark.parametrize("prefix", ["datasets/v1", "datasets/v1/", "/datasets/v1/"])
def test_prefix_is_a_folder_not_a_string_prefix(s3_server, bucket, tmp_path, prefix):
    for key in ("datasets/v1/x.bin", "datasets/v10/y.bin", "datasets/v1.tar", "datasets/v1x"):
        put(s3_server, bucket, key, b"data", tmp_path)
    ctx = make_context(tmp_path, s3_server, bucket, data_prefix=prefix)
    manifest = data.sync(ctx)
    assert tree(ctx.mount / "data") == {"x.bin": b"data"}
    assert manifest.files == 1


@pytest.mark.parametrize("prefix, why", [("", "empty"), ("/", "empty"), ("data*", "wildcard"),
                                         ("a/../b", "plain path")])
def test_unusable_prefixes_are_refused(s3_server, bucket, tmp_path, prefix, why):
    ctx = make_context(tmp_path, s3_server, bucket, data_prefix=prefix)
    with pytest.raises(PhaseFailed, match=why):
        data.sync(ctx)


def test_an_empty_prefix_fails_and_keeps_the_local_cache(s3_server, bucket, tmp_path, dataset):
    data.sync(make_context(tmp_path, s3_server, bucket))
    empty = make_context(tmp_path, s3_server, bucket, data_prefix="datasets/v2")
    with pytest.raises(PhaseFailed, match="no objects under"):
        data.sync(empty)
    assert tree(tmp_path / "mnt" / "data") == dataset  # nothing was deleted


def test_resync_fetches_only_what_changed_including_same_size_rewrites(
        ctx, dataset, s3_server, tmp_path):
    data.sync(ctx)
    local = ctx.mount / "data"
    before = {rel: (local / rel).stat() for rel in dataset}
    assert data.sync(ctx).fetched == 0
    # S3 times have whole seconds: rewrite in a later second than the first download.
    time.sleep(1.05 - time.time() % 1)
    put(s3_server, ctx.spec.storage.bucket, "datasets/v1/a.bin", b"ALPHA-1", tmp_path)
    manifest = data.sync(ctx)
    assert manifest.fetched == 1 and manifest.files == 3
    assert (local / "a.bin").read_bytes() == b"ALPHA-1"  # same size, new content
    for rel in ("sub/b.bin", "sub/deep/c.bin"):
        after = (local / rel).stat()
        assert (after.st_ino, after.st_mtime_ns) == (before[rel].st_ino, before[rel].st_mtime_ns)


def test_a_same_size_rewrite_its_time_does_not_show_is_caught_by_its_etag(
        ctx, dataset, s3_server, tmp_path):
    data.sync(ctx)
    local = ctx.mount / "data"
    put(s3_server, ctx.spec.storage.bucket, "datasets/v1/a.bin", b"ALPHA-1", tmp_path)
    future = time.time() + 3600  # the local copy looks newer than the rewrite: sync skips it
    os.utime(local / "a.bin", (future, future))
    manifest = data.sync(ctx)
    assert (local / "a.bin").read_bytes() == b"ALPHA-1"
    assert (manifest.fetched, manifest.removed) == (1, 1)
    state = json.loads((ctx.mount / data.STATE_FILE).read_text())
    assert set(state["files"]) == set(dataset) and state["source"].endswith("/datasets/v1/")


def test_a_file_the_record_does_not_vouch_for_is_fetched_again(ctx, dataset):
    data.sync(ctx)
    local = ctx.mount / "data"
    record = ctx.mount / data.STATE_FILE
    state = json.loads(record.read_text())
    del state["files"]["sub/b.bin"]  # e.g. fetched by a run that died before recording it
    record.write_text(json.dumps(state))
    (local / "sub" / "b.bin").write_bytes(b"BRAVO-22")  # same size, unknown content
    assert data.sync(ctx).fetched == 1
    assert (local / "sub" / "b.bin").read_bytes() == dataset["sub/b.bin"]


def test_an_unreadable_record_falls_back_to_size_and_time(ctx, dataset):
    data.sync(ctx)
    (ctx.mount / data.STATE_FILE).write_text("{not json")
    manifest = data.sync(ctx)
    assert (manifest.fetched, manifest.removed) == (0, 0)
    assert json.loads((ctx.mount / data.STATE_FILE).read_text())["files"]  # rewritten


def test_stale_local_files_are_removed_so_the_volume_matches_the_bucket(ctx, dataset):
    local = ctx.mount / "data"
    (local / "old" / "nested").mkdir(parents=True)
    (local / "old" / "nested" / "v0.bin").write_bytes(b"old version")
    (local / "stale.bin").write_bytes(b"x")
    (local / "a.bin").mkdir()  # a directory where a file belongs
    (local / "a.bin" / "junk").write_bytes(b"j")
    os.symlink("/etc/hostname", local / "link.bin")
    os.mkfifo(local / "pipe")
    manifest = data.sync(ctx)
    assert manifest.removed == 5
    assert tree(local) == dataset
    assert sorted(p.name for p in local.iterdir()) == ["a.bin", "sub"]


def test_a_local_file_of_the_wrong_size_is_refetched(ctx, dataset):
    data.sync(ctx)
    target = ctx.mount / "data" / "sub" / "b.bin"
    target.write_bytes(b"truncated")
    assert data.sync(ctx).fetched == 1
    assert target.read_bytes() == dataset["sub/b.bin"]


def test_a_refused_key_fails_the_phase_scrubbed_and_deletes_nothing(
        s3_server, bucket, tmp_path, dataset):
    good = make_context(tmp_path, s3_server, bucket)
    data.sync(good)
    wrong = RunSecrets({"B2_KEY_ID": "unknown-key-id-123", "B2_APP_KEY": "bad-app-key-4567"})
    ctx = make_context(tmp_path, s3_server, bucket, secrets=wrong)
    with pytest.raises(PhaseFailed) as caught:
        data.sync(ctx)
    assert MASTER_KEY_HINT in caught.value.reason and "bad-app-key-4567" not in caught.value.reason
    assert tree(tmp_path / "mnt" / "data") == dataset


class FakeTool:
    def __init__(self, keys):
        self.objects = [ObjectInfo(key, 1) for key in keys]

    def ls(self, url):
        return self.objects


@pytest.mark.parametrize("keys, why", [
    (["p/../../etc/cron.d/x"], "not a safe relative path"),
    (["p//x"], "not a safe relative path"),
    (["p/a", "p/a/b"], "both an object and a folder"),
])
def test_keys_a_filesystem_cannot_hold_safely_are_refused(keys, why):
    with pytest.raises(PhaseFailed, match=why):
        data.listing(FakeTool(keys), "s3://b/p/", "p/")


def test_folder_markers_are_not_files():
    assert data.listing(FakeTool(["p/dir/", "p/dir/f"]), "s3://b/p/", "p/") == {
        "dir/f": (1, "")}


def test_compare_reports_every_kind_of_difference(tmp_path):
    (tmp_path / "extra").write_bytes(b"1")
    (tmp_path / "short").write_bytes(b"1")
    problems = data.compare(tmp_path, {"short": 2, "missing": 1})
    assert problems == ["missing missing", "unexpected extra", "size of short: 1 != 2"]


def test_make_readable_adds_read_bits_only(tmp_path):
    (tmp_path / "d").mkdir(mode=0o700)
    (tmp_path / "d" / "f").write_bytes(b"1")
    (tmp_path / "d" / "f").chmod(0o600)
    data.make_readable(tmp_path)
    assert stat.S_IMODE((tmp_path / "d" / "f").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "d").stat().st_mode) == 0o755


# -- several sources, include patterns, links ------------------------------------------------

UPS_LAYOUT = {"full/burgers1d/burgers1d_train_000.h5": b"train-shard-0",
              "full/burgers1d/burgers1d_train_001.h5": b"train-shard-1!",
              "pdebench/burgers1d_full_v1/burgers1d_val.h5": b"val",
              "pdebench/burgers1d_full_v1/burgers1d_test.h5": b"test-split",
              "pdebench/burgers1d_full_v1/notes.txt": b"not data"}
UPS_SOURCES = (DataSource("full/burgers1d", dest="full/burgers1d",
                          include=("burgers1d_train_000.h5",)),
               DataSource("pdebench/burgers1d_full_v1/", dest="pdebench",
                          include=("*.h5",)))
UPS_LINKS = (DataLink("pdebench/burgers1d_train.h5", "full/burgers1d/burgers1d_train_000.h5"),)


@pytest.fixture
def ups_bucket(s3_server, bucket, tmp_path):
    for key, body in UPS_LAYOUT.items():
        put(s3_server, bucket, key, body, tmp_path)
    return bucket


def ups_context(tmp_path, s3_server, bucket, **changes):
    fields = {"data_sources": UPS_SOURCES, "data_links": UPS_LINKS, **changes}
    return make_context(tmp_path, s3_server, bucket, **fields)


def test_sources_land_in_their_folders_narrowed_by_include_with_links(
        s3_server, ups_bucket, tmp_path):
    ctx = ups_context(tmp_path, s3_server, ups_bucket)
    manifest = data.sync(ctx)
    root = ctx.mount / "data"
    assert tree(root) == {"full/burgers1d/burgers1d_train_000.h5": b"train-shard-0",
                          "pdebench/burgers1d_val.h5": b"val",
                          "pdebench/burgers1d_test.h5": b"test-split",
                          "pdebench/burgers1d_train.h5": b"train-shard-0"}
    link = root / "pdebench" / "burgers1d_train.h5"
    assert link.is_symlink() and os.readlink(link) == "../full/burgers1d/burgers1d_train_000.h5"
    assert (manifest.files, manifest.fetched) == (3, 3)  # links are not files of the data set
    assert f"s3://{ups_bucket}/full/burgers1d/" in manifest.source
    assert f"s3://{ups_bucket}/pdebench/burgers1d_full_v1/" in manifest.source


def test_a_second_sync_of_several_sources_fetches_only_what_changed(
        s3_server, ups_bucket, tmp_path):
    ctx = ups_context(tmp_path, s3_server, ups_bucket)
    data.sync(ctx)
    put(s3_server, ups_bucket, "pdebench/burgers1d_full_v1/burgers1d_val.h5", b"VAL", tmp_path)
    manifest = data.sync(ctx)
    assert (manifest.fetched, manifest.removed) == (1, 1)
    assert (ctx.mount / "data" / "pdebench" / "burgers1d_val.h5").read_bytes() == b"VAL"
    assert (ctx.mount / "data" / "pdebench" / "burgers1d_train.h5").is_symlink()


def test_a_source_from_another_bucket(s3_server, bucket, tmp_path):
    other = f"{bucket}-other"
    s3_server.make_bucket(other)
    put(s3_server, other, "shared/x.h5", b"x", tmp_path)
    put(s3_server, bucket, "datasets/v1/a.bin", b"a", tmp_path)
    ctx = make_context(tmp_path, s3_server, bucket, data_sources=(
        DataSource("datasets/v1", dest="mine"), DataSource("shared", dest="theirs",
                                                           bucket=other)))
    data.sync(ctx)
    assert tree(ctx.mount / "data") == {"mine/a.bin": b"a", "theirs/x.h5": b"x"}


@pytest.mark.parametrize("sources, why", [
    ((DataSource("a", dest="x"), DataSource("b", dest="x/y")), "overlap"),
    ((DataSource("a", dest=""), DataSource("b", dest="y")), "overlap"),
    ((DataSource("a", dest="../up"),), "not a plain path"),
    ((DataSource("full/burgers1d", dest="t", include=("*.zarr",)),), "match"),
])
def test_unusable_sources_are_refused(s3_server, ups_bucket, tmp_path, sources, why):
    ctx = make_context(tmp_path, s3_server, ups_bucket, data_sources=sources)
    with pytest.raises(PhaseFailed, match=why):
        data.sync(ctx)


@pytest.mark.parametrize("link, why", [
    (DataLink("pdebench/x.h5", "pdebench/missing.h5"), "not a file of the data set"),
    (DataLink("pdebench/burgers1d_val.h5", "pdebench/burgers1d_test.h5"), "a file of the"),
    (DataLink("../x.h5", "pdebench/burgers1d_val.h5"), "not plain paths"),
])
def test_unusable_links_are_refused(s3_server, ups_bucket, tmp_path, link, why):
    ctx = ups_context(tmp_path, s3_server, ups_bucket, data_links=(link,))
    with pytest.raises(PhaseFailed, match=why):
        data.sync(ctx)
