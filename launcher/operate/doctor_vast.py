"""``launcher doctor --provider vast``: the checks of :mod:`launcher.operate.doctor` for a run
on Vast.ai. This machine's part (configuration, ``.env``, s5cmd), the bucket and GPU stock are
the same; the cloud's part differs: the Vast key is proved by reading the account it belongs
to (``GET /users/current``), whose credit a create spends. There is no instance key to prove:
Vast gives each instance its own key (``CONTAINER_API_KEY``) that may only start, stop or
destroy that instance (vast-ai/docs api-reference/hello-world.mdx), so no key of the
operator's travels to the machine."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path

from launcher.bucket import Bucket
from launcher.config import Account
from launcher.errors import ApiError, AuthError, LauncherError
from launcher.operate.doctor import (
    FAIL,
    OK,
    SKIP,
    WARN,
    Check,
    bucket_check,
    local_checks,
    stock_check,
)
from launcher.providers.vast import VastProvider

KEY = "Vast key"
INSTANCE_KEY_TEXT = ("each instance gets its own key from Vast (CONTAINER_API_KEY), good for "
                     "that instance only: it destroys itself with it; no key of yours travels")
NO_ANSWER = "not checked: the Vast.ai API did not answer (see the Vast key's check)"


def run_vast_checks(account: Account, provider: VastProvider | None, *, config_dir: Path,
                    stage_name: str | None = None,
                    environ: Mapping[str, str] | None = None,
                    bucket_factory: Callable[[], Bucket] | None = None) -> list[Check]:
    """Every check a Vast launch needs, in the order it needs them (``provider`` None: no
    key, so nothing of Vast's can be asked)."""
    env = os.environ if environ is None else environ
    checks, stage = local_checks(account, config_dir, stage_name, env)
    key, answered = vast_key(account, provider)
    checks += [key, Check("instance key", OK, INSTANCE_KEY_TEXT)]
    why = NO_ANSWER if not answered else "not checked: the Vast key was not accepted"
    if provider is None or key.status == FAIL:
        checks.append(Check("GPU stock", SKIP, why))
    else:
        checks.append(stock_check(provider, stage, stage_name, True, why))
    checks.append(bucket_check(account, config_dir, env, bucket_factory))
    return checks


def vast_key(account: Account, provider: VastProvider | None) -> tuple[Check, bool]:
    """The key's check, and whether the API answered at all."""
    if not account.vast_api_key or provider is None:
        return Check(KEY, FAIL, "VAST_API_KEY is not set",
                     "set VAST_API_KEY in the environment or the .env file (console.vast.ai: "
                     "Account > Keys)"), True
    try:
        user = provider.client.show_user()
    except AuthError as exc:
        return Check(KEY, FAIL, f"refused: {exc.api_message}", exc.hint or ""), True
    except LauncherError as exc:
        answered = not (isinstance(exc, ApiError) and exc.status is None)
        return Check(KEY, FAIL, exc.message, exc.hint or ""), answered
    who = user.username or user.email or (f"user {user.id}" if user.id is not None else
                                          "account")
    funds = (user.balance or 0.0) + (user.credit or 0.0)
    if funds <= 0:
        return Check(KEY, WARN, f"accepted ({who}), but the account has no credit "
                     f"(${funds:,.2f})", "add credit at console.vast.ai: a create with none "
                     "is refused"), True
    return Check(KEY, OK, f"accepted ({who}, ${funds:,.2f} of credit)"), True
