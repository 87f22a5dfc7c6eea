"""render(spec, secrets, inputs) -> RenderedDocument: build, serialise, check, measure, encode.

The document is a bootstrap (:mod:`launcher.runner.boot`): it writes ``boot.pyz``,
``boot.json`` and the root-only secrets file, and starts the runner unit, whose
``ExecStartPre`` fetches the runner and the run spec from the bucket, each pinned by sha256.
:attr:`RenderedDocument.uploads` says what the launcher must put in the bucket first.

Stages, each a function: **build** the document as data from the template; **serialise** it
with ``yaml.safe_dump`` and prove it parses back equal; **validate** it against
``cloud-init/schema.json``; **guard** that no secret value appears outside the root-only
secrets file (nor in the run spec, which goes to the bucket); **measure** it against
:data:`MAX_USER_DATA_BYTES`; **encode** the text as base64 for Vultr's ``user_data``.
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import gzip
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from launcher.errors import ConfigError, LauncherError
from launcher.naming import node_tag
from launcher.render.schema import validate_document
from launcher.render.serialise import to_cloud_config
from launcher.render.template import FileSpec, Template, load_template
from launcher.render.units import unit_text
from launcher.render.zipapp import build_boot_zipapp
from launcher.runner.boot import BootSpec, Pinned
from launcher.runner.s5cmd import b2_region
from launcher.runner.spec import SECRET_NAMES, RunSecrets, RunSpec

# Vultr documents no size limit for user_data (not in its OpenAPI document, API reference or
# user-data guides, as far as we could find). The strictest limit we know is AWS's: 16 KiB of
# user data in raw form, before base64 (OpenStack, DigitalOcean, IBM: 64 KiB). Every document
# is held to it; its base64 size is reported too (tests/integration/probe_vultr.sh measures
# what Vultr accepts).
MAX_USER_DATA_BYTES = 16 * 1024

BOOT_ENCODINGS = ("b64", "gz+b64")  # tried in this order; the first that fits wins
SECRET_GUARD_MIN_LEN = 8  # shorter "secrets" are not real keys and match by chance
FETCH_DEADLINE_S = 900.0  # how long the bootstrap tries the bucket before it gives up


class DocumentError(LauncherError):
    """The document cannot be made: too big, or it would carry a secret in the open."""


@dataclass(frozen=True)
class BootInputs:
    """What the document needs besides the spec and secrets: the runner zipapp (fetched from
    the bucket), whether the bootstrap may delete the volume when it gives up (only one the
    launcher created for this run), and the bootstrap zipapp (default: built from the runner
    sources)."""

    runner: bytes = field(repr=False)
    delete_volume: bool
    boot: bytes | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Upload:
    """An object the launcher puts in the bucket before it creates the instance."""

    key: str
    data: bytes = field(repr=False)
    sha256: str


@dataclass(frozen=True)
class SizeReport:
    """Byte counts of one rendered document, the limit it is held to, and the files the
    bootstrap fetches instead of carrying them."""

    document_bytes: int
    user_data_b64_bytes: int
    boot_bytes: int
    boot_encoding: str
    boot_encoded_bytes: int
    runner_bytes: int
    spec_bytes: int
    limit_bytes: int

    @property
    def headroom_bytes(self) -> int:
        return self.limit_bytes - self.document_bytes

    def as_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "headroom_bytes": self.headroom_bytes,
                "percent_of_limit": round(100 * self.document_bytes / self.limit_bytes, 1)}

    def __str__(self) -> str:
        return (f"document {self.document_bytes:,} of {self.limit_bytes:,} bytes "
                f"({100 * self.document_bytes / self.limit_bytes:.1f}%; base64 "
                f"{self.user_data_b64_bytes:,}); bootstrap {self.boot_bytes:,} bytes as "
                f"{self.boot_encoding} ({self.boot_encoded_bytes:,}); fetched from the bucket: "
                f"runner {self.runner_bytes:,}, spec {self.spec_bytes:,}")


@dataclass(frozen=True)
class RenderedDocument:
    """A checked run document. ``text`` and ``user_data_b64`` hold the secrets: never print
    or log them; show :meth:`redacted_text` instead. ``uploads`` (runner, spec: no secrets)
    must be in the bucket before the instance boots. ``repr`` shows sizes only."""

    text: str = field(repr=False)
    user_data_b64: str = field(repr=False)
    sizes: SizeReport
    _redacted: str = field(repr=False)
    uploads: tuple[Upload, ...] = field(default=(), repr=False)
    boot_spec: BootSpec | None = field(default=None, repr=False)

    def redacted_text(self) -> str:
        """The document with each secret replaced by ``<secret:NAME>`` (``<unset:NAME>`` for
        an empty one): safe to print, log or write to a file."""
        return self._redacted

    def size_report(self) -> SizeReport:
        return self.sizes


def render(spec: RunSpec, secrets: RunSecrets, inputs: BootInputs, *,
           limit: int = MAX_USER_DATA_BYTES, template: Template | None = None
           ) -> RenderedDocument:
    """The bootstrap document for ``spec``, carrying ``secrets``, pinning ``inputs.runner``.

    Raises :class:`DocumentError` when it exceeds ``limit`` bytes even with the bootstrap
    gzipped, :class:`~launcher.errors.ConfigError` when a secret value appears in
    the spec.
    """
    template = template or load_template(values={"secrets_file": spec.paths.secrets_file})
    boot_zip = inputs.boot if inputs.boot is not None else boot_zipapp()
    uploads = boot_uploads(spec, inputs.runner)
    boot = boot_spec(spec, template, uploads, inputs.delete_volume)
    for encoding in BOOT_ENCODINGS:
        document = build_document(template, boot, secrets.to_env_file(), boot_zip, encoding)
        text = to_cloud_config(document)
        validate_document(document)
        if len(text.encode("ascii")) <= limit:
            break
    else:
        raise DocumentError(
            f"the run document is {len(text):,} bytes, over the {limit:,}-byte user-data "
            f"limit even with the bootstrap gzipped (boot.pyz "
            f"{len(boot_zip):,} bytes, boot.json {len(boot.to_json()):,} bytes)",
            hint="shrink launcher/runner/boot.py or the modules it imports")
    masked = build_document(template, boot, _masked_env(secrets), boot_zip, encoding)
    _guard_secrets(masked, secrets, spec, template.fetched["spec"].path)
    redacted = to_cloud_config(masked, verify=False)  # same styles as the verified text
    encoded = base64.b64encode(text.encode("ascii")).decode("ascii")
    boot_entry = next(f for f in document["write_files"]
                      if f["path"] == template.files["boot"].path)
    sizes = SizeReport(len(text), len(encoded), len(boot_zip), encoding,
                       len(boot_entry["content"]), len(uploads[0].data), len(uploads[1].data),
                       limit)
    return RenderedDocument(text, encoded, sizes, redacted, uploads, boot)


@functools.lru_cache(maxsize=1)
def boot_zipapp() -> bytes:
    """The bootstrap zipapp, built once per process (it parses six modules)."""
    return build_boot_zipapp()


def boot_key(spec: RunSpec, name: str, extension: str, sha256: str) -> str:
    """``<runs_prefix>/<run_id>/boot/<name>-<sha256 prefix>.<ext>``: a new content, a new key,
    so an instance never fetches what another candidate's launch put there."""
    return f"{spec.run_prefix}/boot/{name}-{sha256[:16]}.{extension}"


def boot_uploads(spec: RunSpec, runner: bytes) -> tuple[Upload, Upload]:
    """The runner and the run spec a bootstrap fetches, each under a key named by its
    content (every cloud's bootstrap pins the same two)."""
    return (_upload(spec, "runner", "pyz", runner),
            _upload(spec, "run", "json", (spec.to_json() + "\n").encode("utf-8")))


def _upload(spec: RunSpec, name: str, extension: str, data: bytes) -> Upload:
    digest = hashlib.sha256(data).hexdigest()
    return Upload(boot_key(spec, name, extension, digest), data, digest)


def boot_spec(spec: RunSpec, template: Template, uploads: tuple[Upload, Upload],
              delete_volume: bool) -> BootSpec:
    """``boot.json`` for ``spec``: its bucket, the pinned runner and spec, what to remove."""
    storage = spec.storage
    pins = tuple(Pinned(u.key, f.path, u.sha256, len(u.data), f.permissions)
                 for u, f in zip(uploads, (template.fetched["runner"], template.fetched["spec"]),
                                 strict=True))
    return BootSpec(run_id=spec.run_id, endpoint_url=storage.endpoint_url, bucket=storage.bucket,
                    region=storage.region or b2_region(storage.endpoint_url), files=pins,
                    status_key=f"{spec.run_prefix}/status.json", api_url=spec.api_url,
                    block_id=spec.volume.block_id, delete_volume=delete_volume,
                    secrets_file=spec.paths.secrets_file, metadata_url=spec.metadata_url,
                    fetch_deadline_s=FETCH_DEADLINE_S,
                    node_tag=node_tag(spec.cluster.node_index) if spec.cluster else "")


def build_document(template: Template, boot: BootSpec, secrets_env: str, boot_zip: bytes,
                   encoding: str) -> dict[str, Any]:
    """The document as data: the template's static keys plus write_files, in a fixed order."""
    files = template.files
    write_files = [
        _entry(files["boot"], _encode(boot_zip, encoding), encoding),
        _entry(files["boot_spec"], boot.to_json() + "\n", "text/plain"),
        _entry(files["secrets"], secrets_env, "text/plain"),
    ]
    for name, sections in template.units.items():
        at = template.unit_files
        path = f"{at.path.rstrip('/')}/{name}"
        write_files.append({"path": path, "content": unit_text(sections, unit=name),
                            "encoding": "text/plain", "owner": at.owner,
                            "permissions": at.permissions})
    static = dict(template.cloud_config)
    runcmd = static.pop("runcmd")
    return {**static, "write_files": write_files, "runcmd": runcmd}


def _entry(spec_file: FileSpec, content: str, encoding: str) -> dict[str, Any]:
    return {"path": spec_file.path, "content": content, "encoding": encoding,
            "owner": spec_file.owner, "permissions": spec_file.permissions}
def _encode(data: bytes, encoding: str) -> str:
    if encoding == "gz+b64":
        data = gzip.compress(data, compresslevel=9, mtime=0)
    return base64.b64encode(data).decode("ascii")


def _masked_env(secrets: RunSecrets) -> str:
    marked = {name: f"<secret:{name}>" if secrets.get(name) else f"<unset:{name}>"
              for name in SECRET_NAMES}
    return RunSecrets(marked).to_env_file()


def _guard_secrets(masked: dict[str, Any], secrets: RunSecrets, spec: RunSpec,
                   spec_path: str) -> None:
    """With the secrets file masked, no secret value may appear anywhere in the document
    (nor in the spec's strings before JSON escaped them)."""
    values = {name: secrets.get(name) for name in SECRET_NAMES
              if len(secrets.get(name)) >= SECRET_GUARD_MIN_LEN}
    places = [(f["path"], f["content"]) for f in masked["write_files"]]
    places.append(("runcmd", repr(masked["runcmd"])))
    places.append((spec_path, json.dumps(dataclasses.asdict(spec), ensure_ascii=False)))
    for name, value in values.items():
        for where, content in places:
            if value in content:
                raise ConfigError(f"the {name} value appears in the run document at {where}, "
                                  "outside the root-only secrets file",
                                  hint="keep secrets out of the stage's command, env and "
                                  "paths; they reach the instance only through secrets.env")
