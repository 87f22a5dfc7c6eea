"""The code phase: a pinned tarball from the bucket, or a pinned git commit."""

from __future__ import annotations

import hashlib
import io
import subprocess
import tarfile
from pathlib import Path

import pytest

from launcher.runner import code
from launcher.runner.spec import CodeSource
from launcher.runner.status import PhaseFailed

from .conftest import make_context, put

GIT_ID = ["-c", "user.name=t", "-c", "user.email=t@example.invalid",
          "-c", "init.defaultBranch=main"]


def tarball(members: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for info, body in members:
            if body is not None:
                info.size = len(body)
            tar.addfile(info, io.BytesIO(body) if body is not None else None)
    return buffer.getvalue()


def file_member(name: str, body: bytes, mode: int = 0o644) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.mode = mode
    return info, body


def link_member(name: str, target: str, kind=tarfile.SYMTYPE) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info, None


GOOD = tarball([file_member("train.py", b"print('hi')\n", 0o600),
                file_member("pkg/model.py", b"X = 1\n"),
                file_member("run.sh", b"#!/bin/sh\n", 0o755),
                link_member("pkg/alias.py", "model.py")])


def tarball_context(s3_server, bucket, tmp_path, body: bytes, sha: str | None = None):
    put(s3_server, bucket, "code/r-test.tar.gz", body, tmp_path)
    source = CodeSource(kind="tarball", tarball_key="code/r-test.tar.gz",
                        sha256=sha or hashlib.sha256(body).hexdigest())
    return make_context(tmp_path, s3_server, bucket, code=source)


def test_tarball_is_verified_extracted_readable_and_recorded(s3_server, bucket, tmp_path):
    ctx = tarball_context(s3_server, bucket, tmp_path, GOOD)
    old = Path(ctx.spec.paths.code_dir)
    old.mkdir(parents=True)
    (old / "leftover.py").write_text("from an earlier run")
    where = code.fetch(ctx)
    assert where == old
    assert sorted(p.relative_to(where).as_posix() for p in where.rglob("*")) == [
        "pkg", "pkg/alias.py", "pkg/model.py", "run.sh", "train.py"]
    assert (where / "train.py").stat().st_mode & 0o004  # the trainer may read it
    assert (where / "run.sh").stat().st_mode & 0o111
    assert (where / "pkg" / "alias.py").read_text() == "X = 1\n"
    sha = hashlib.sha256(GOOD).hexdigest()
    assert any(sha in note for note in ctx.reporter.snapshot()["notes"])
    assert [p.name for p in where.parent.iterdir()] == ["code"]  # no staging left behind


def test_a_sha256_mismatch_extracts_nothing(s3_server, bucket, tmp_path):
    ctx = tarball_context(s3_server, bucket, tmp_path, GOOD, sha="0" * 64)
    with pytest.raises(PhaseFailed, match="refusing to extract"):
        code.fetch(ctx)
    assert list(Path(ctx.spec.paths.code_dir).parent.iterdir()) == []


@pytest.mark.parametrize("member", [
    file_member("../evil.py", b"x"),
    file_member("/etc/evil.py", b"x"),
    file_member("pkg/../../evil.py", b"x"),
    link_member("escape", "../../etc/passwd"),
    link_member("absolute", "/etc/passwd"),
    link_member("hard", "/etc/passwd", tarfile.LNKTYPE),
    link_member("dev", "", tarfile.CHRTYPE),
    link_member("fifo", "", tarfile.FIFOTYPE),
], ids=["dotdot", "absolute", "nested-dotdot", "symlink-out", "symlink-abs", "hardlink-abs",
        "device", "fifo"])
def test_an_unsafe_member_refuses_the_whole_archive(tmp_path, member):
    archive, dest = tmp_path / "code.tar.gz", tmp_path / "a" / "b"
    archive.write_bytes(tarball([file_member("train.py", b"ok"), member]))
    dest.mkdir(parents=True)
    with pytest.raises(PhaseFailed, match="tarball member"):
        code.extract(archive, dest)
    assert list(dest.iterdir()) == []
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a", "b", "code.tar.gz"]


def test_a_path_traversal_tarball_from_the_bucket_is_refused(s3_server, bucket, tmp_path):
    body = tarball([file_member("train.py", b"ok"), file_member("../../evil.py", b"x")])
    ctx = tarball_context(s3_server, bucket, tmp_path, body)
    with pytest.raises(PhaseFailed, match="tarball member '../../evil.py'"):
        code.fetch(ctx)
    assert not Path(ctx.spec.paths.code_dir).exists()
    assert not any(p.name == "evil.py" for p in tmp_path.rglob("*"))


def test_links_inside_the_tree_are_fine():
    for name, target in (("a/b", "../c"), ("a/b/c", "../../d"), ("x", "./y")):
        assert code.member_problem(link_member(name, target)[0]) == ""
    assert code.member_problem(link_member("a/b", "../../c")[0]) != ""


def test_a_missing_tarball_fails_the_phase(s3_server, bucket, tmp_path):
    source = CodeSource(kind="tarball", tarball_key="code/none.tar.gz", sha256="a" * 64)
    ctx = make_context(tmp_path, s3_server, bucket, code=source)
    with pytest.raises(PhaseFailed, match="NoSuchKey"):
        code.fetch(ctx)


@pytest.fixture
def repo(tmp_path) -> tuple[str, list[str]]:
    """A bare repository with two commits; (file:// URL, [first sha, second sha])."""
    work, bare = tmp_path / "work", tmp_path / "origin.git"
    git = ["git", *GIT_ID]
    subprocess.run([*git, "init", "-q", str(work)], check=True)
    shas = []
    for version in ("one", "two"):
        (work / "train.py").write_text(f"VERSION = {version!r}\n")
        subprocess.run([*git, "-C", str(work), "add", "."], check=True)
        subprocess.run([*git, "-C", str(work), "commit", "-qm", version], check=True)
        shas.append(subprocess.run(["git", "-C", str(work), "rev-parse", "HEAD"], check=True,
                                   capture_output=True, text=True).stdout.strip())
    subprocess.run([*git, "clone", "-q", "--bare", str(work), str(bare)], check=True)
    return f"file://{bare}", shas


def git_context(tmp_path, s3_server, url, commit):
    source = CodeSource(kind="git", git_url=url, git_commit=commit)
    return make_context(tmp_path, s3_server, "git-needs-no-bucket", code=source)


def test_git_checks_out_exactly_the_pinned_commit(repo, tmp_path, s3_server):
    url, (first, _second) = repo
    ctx = git_context(tmp_path, s3_server, url, first)
    where = code.fetch(ctx)
    assert (where / "train.py").read_text() == "VERSION = 'one'\n"
    head = subprocess.run(["git", "-C", str(where), "rev-parse", "HEAD"], capture_output=True,
                          text=True, check=True).stdout.strip()
    assert head == first
    assert any(first in note for note in ctx.reporter.snapshot()["notes"])


@pytest.mark.parametrize("commit", ["main", "HEAD", "abc1234", "A" * 40,
                                    "--upload-pack=touch /tmp/pwned"])
def test_anything_but_a_full_sha_is_refused(repo, tmp_path, s3_server, commit):
    url, _ = repo
    with pytest.raises(PhaseFailed, match="full 40-hex sha"):
        code.fetch(git_context(tmp_path, s3_server, url, commit))


@pytest.mark.parametrize("make_url", [
    lambda tmp: f"--upload-pack=touch {tmp}/pwned",
    lambda tmp: f"ext::sh -c touch% {tmp}/pwned",
    lambda tmp: f"-u touch {tmp}/pwned",
], ids=["option", "ext-transport", "short-option"])
def test_an_option_or_command_as_url_never_runs(repo, tmp_path, s3_server, make_url):
    _, (first, _) = repo
    ctx = git_context(tmp_path, s3_server, make_url(tmp_path), first)
    with pytest.raises(PhaseFailed, match="git_url"):
        code.fetch(ctx)
    assert not (tmp_path / "pwned").exists()


def test_a_commit_the_repository_lacks_fails(repo, tmp_path, s3_server):
    url, _ = repo
    ctx = git_context(tmp_path, s3_server, url, "1" * 40)
    with pytest.raises(PhaseFailed, match="git: exit status"):
        code.fetch(ctx)
    assert not Path(ctx.spec.paths.code_dir).exists()


def test_code_links_send_the_code_s_output_folders_to_the_volume(s3_server, bucket, tmp_path):
    body = tarball([file_member("train.py", b"print('hi')\n"),
                    file_member("reports/leaderboard.csv", b"label,nrmse\nbaseline,0.1\n"),
                    file_member("reports/old.json", b"{}")])
    put(s3_server, bucket, "code/r-test.tar.gz", body, tmp_path)
    source = CodeSource(kind="tarball", tarball_key="code/r-test.tar.gz",
                        sha256=hashlib.sha256(body).hexdigest())
    ctx = make_context(tmp_path, s3_server, bucket, code=source,
                       code_links=(("reports", "reports"), ("artifacts/runs", "outputs/runs")))
    volume_reports = ctx.mount / "reports"
    volume_reports.mkdir(parents=True)
    (volume_reports / "leaderboard.csv").write_text("label,nrmse\nchampion,0.05\n")
    code_dir = code.fetch(ctx)
    assert (code_dir / "reports").is_symlink()
    assert (code_dir / "reports").resolve() == volume_reports.resolve()
    # The volume's own leaderboard (an earlier run's) wins; what it lacks is seeded.
    assert (volume_reports / "leaderboard.csv").read_text().startswith("label,nrmse\nchampion")
    assert (volume_reports / "old.json").read_text() == "{}"
    assert (code_dir / "artifacts" / "runs").resolve() == (ctx.mount / "outputs/runs").resolve()
    assert (code_dir / "train.py").is_file()


@pytest.mark.parametrize("links, words", [
    ((("../x", "reports"),), "not plain paths"),
    ((("train.py", "reports"),), "has a file or link there"),
])
def test_unusable_code_links_fail_the_phase(s3_server, bucket, tmp_path, links, words):
    put(s3_server, bucket, "code/r-test.tar.gz", GOOD, tmp_path)
    source = CodeSource(kind="tarball", tarball_key="code/r-test.tar.gz",
                        sha256=hashlib.sha256(GOOD).hexdigest())
    ctx = make_context(tmp_path, s3_server, bucket, code=source, code_links=links)
    with pytest.raises(PhaseFailed, match=words):
        code.fetch(ctx)
