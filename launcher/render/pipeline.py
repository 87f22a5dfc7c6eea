"""render(spec, secrets, runner) -> RenderedDocument: build, serialise, check, measure, encode.

Stages, each a function: **build** the document as data from the template; **serialise** it
with ``yaml.safe_dump`` and prove it parses back equal; **validate** it against
``cloud-init/schema.json``; **guard** that no secret value appears outside the root-only
secrets file; **measure** it against :data:`MAX_DOCUMENT_BYTES` (first with the runner as
plain base64, then gzipped); **encode** the text as base64 for Vultr's ``user_data``.
"""

from __future__ import annotations

import base64
import dataclasses
import gzip
import json
from dataclasses import dataclass, field
from typing import Any

from launcher.errors import ConfigError, LauncherError
from launcher.render.schema import validate_document
from launcher.render.serialise import to_cloud_config
from launcher.render.template import Template, load_template
from launcher.render.units import unit_text
from launcher.runner.spec import SECRET_NAMES, RunSecrets, RunSpec

# Vultr documents no size limit for user_data (not in its OpenAPI document, API reference
# or user-data guides, as far as we could find). Peers cap it at 16 KiB (AWS) or 64 KiB
# (OpenStack: 65,535 bytes base64-encoded; DigitalOcean, IBM: 64 KiB). We assume 64 KiB of
# *decoded* document and measure every document against it; if Vultr's limit turns out to
# apply to the base64 form, the safe decoded figure is 48 KiB - change it here, and only here.
MAX_DOCUMENT_BYTES = 64 * 1024

RUNNER_ENCODINGS = ("b64", "gz+b64")  # tried in this order; the first that fits wins
SECRET_GUARD_MIN_LEN = 8  # shorter "secrets" are not real keys and match by chance


class DocumentError(LauncherError):
    """The document cannot be made: too big, or it would carry a secret in the open."""


@dataclass(frozen=True)
class SizeReport:
    """Byte counts of one rendered document and the limit it was measured against."""

    document_bytes: int
    user_data_b64_bytes: int
    runner_bytes: int
    runner_encoding: str
    runner_encoded_bytes: int
    limit_bytes: int

    @property
    def headroom_bytes(self) -> int:
        return self.limit_bytes - self.document_bytes

    def as_dict(self) -> dict[str, Any]:
        return {"document_bytes": self.document_bytes,
                "user_data_b64_bytes": self.user_data_b64_bytes,
                "runner_bytes": self.runner_bytes, "runner_encoding": self.runner_encoding,
                "runner_encoded_bytes": self.runner_encoded_bytes,
                "limit_bytes": self.limit_bytes, "headroom_bytes": self.headroom_bytes,
                "percent_of_limit": round(100 * self.document_bytes / self.limit_bytes, 1)}

    def __str__(self) -> str:
        return (f"document {self.document_bytes:,} of {self.limit_bytes:,} bytes "
                f"({100 * self.document_bytes / self.limit_bytes:.1f}%); base64 "
                f"{self.user_data_b64_bytes:,}; runner {self.runner_bytes:,} bytes as "
                f"{self.runner_encoding} ({self.runner_encoded_bytes:,})")


@dataclass(frozen=True)
class RenderedDocument:
    """A checked run document. ``text`` and ``user_data_b64`` hold the secrets: never print
    or log them; show :meth:`redacted_text` instead. ``repr`` shows sizes only."""

    text: str = field(repr=False)
    user_data_b64: str = field(repr=False)
    sizes: SizeReport
    _redacted: str = field(repr=False)

    def redacted_text(self) -> str:
        """The document with each secret replaced by ``<secret:NAME>`` (``<unset:NAME>`` for
        an empty one): safe to print, log or write to a file."""
        return self._redacted

    def size_report(self) -> SizeReport:
        return self.sizes


def render(spec: RunSpec, secrets: RunSecrets, runner: bytes, *,
           limit: int = MAX_DOCUMENT_BYTES, template: Template | None = None) -> RenderedDocument:
    """The run document for ``spec``, carrying ``secrets`` and the ``runner`` zipapp.

    Raises :class:`DocumentError` when even the gzipped document exceeds ``limit`` bytes,
    :class:`~launcher.errors.ConfigError` when a secret value appears in the spec.
    """
    template = template or load_template(values={"secrets_file": spec.paths.secrets_file})
    for encoding in RUNNER_ENCODINGS:
        if encoding == "b64" and 4 * ((len(runner) + 2) // 3) > limit:
            continue  # its base64 alone is over the limit: no need to serialise it
        document = build_document(template, spec, secrets.to_env_file(), runner, encoding)
        text = to_cloud_config(document)
        validate_document(document)
        if len(text.encode("ascii")) <= limit:
            break
    else:
        raise DocumentError(
            f"the run document is {len(text.encode('ascii')):,} bytes, over the "
            f"{limit:,}-byte user-data limit even with the runner gzipped (runner zipapp "
            f"{len(runner):,} bytes, spec {len(spec.to_json()):,} bytes)",
            hint="shrink launcher/runner/ or the stage's env and command")
    masked = build_document(template, spec, _masked_env(secrets), runner, encoding)
    _guard_secrets(masked, secrets, spec, template.files["spec"].path)
    redacted = to_cloud_config(masked, verify=False)  # same styles as the verified text
    encoded = base64.b64encode(text.encode("ascii")).decode("ascii")
    runner_entry = next(f for f in document["write_files"]
                        if f["path"] == template.files["runner"].path)
    sizes = SizeReport(len(text), len(encoded), len(runner), encoding,
                       len(runner_entry["content"]), limit)
    return RenderedDocument(text, encoded, sizes, redacted)


def build_document(template: Template, spec: RunSpec, secrets_env: str, runner: bytes,
                   encoding: str) -> dict[str, Any]:
    """The document as data: the template's static keys plus write_files, in a fixed order."""
    files = template.files
    write_files = [
        _entry(files["runner"], _encode(runner, encoding), encoding),
        _entry(files["spec"], spec.to_json() + "\n", "text/plain"),
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


def _entry(spec_file, content: str, encoding: str) -> dict[str, Any]:
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
