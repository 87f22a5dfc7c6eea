"""The training repository's own command line: UPS (emgun/universal_simulator) as it is.

A stage with an ``ups:`` section runs UPS's orchestrator, ``scripts/run_fast_to_sota.py``,
through its own flags and ``--config-override key=value`` (each value is read by UPS with
``yaml.safe_load``, so every value here is written as JSON, which that reads back exactly).
Nothing of UPS is edited or patched. What the launcher arranges:

- the train config is ``ups.train_config`` (one setting for every stage);
- ``data.root`` is ``<mount>/data/<ups.data_root>``, the folder the data sources fill;
- ``checkpoint.dir`` and the orchestrator's ``--run-dir`` are on the volume (both uploaded);
  the latent cache (``training.latent_cache_dir``) is on the volume and not uploaded: UPS's
  own, or with ``ups.cache_version`` a prepared one synced from ``latent_caches/<version>/``
  (UPS's bucket layout, its ``CACHE_VERSION``) into a folder the trainer owns, since UPS
  mends and adds to it (:func:`cache_source`);
- the command always passes ``--train-stage all``, with the epochs of every UPS training
  stage not in ``ups.train`` set to 0: UPS's ``train.py`` creates its W&B run only for
  ``all``, so this is how each stage gets one. ``--force-train`` always: the orchestrator
  skips training when the checkpoint folder's ``metadata.json`` says ``trained: true``,
  which a reused volume's previous stage wrote;
- a stage that does not train the operator passes ``--skip-validation``: UPS's
  ``validate_config.py`` refuses ``stages.operator.epochs: 0`` (it assumes every run
  trains the operator); its data check and dry run still run;
- ``ups.evaluate: false`` skips the orchestrator's small and full evaluations (and so its
  promotion gates). ``train.py``'s own test-set evaluation stays on: UPS's
  ``validate_config.py``, which the orchestrator runs first, refuses
  ``evaluation.enabled: false``.

At launch, ``training.num_gpus`` becomes the GPUs of the machine (:func:`gpu_args`), and
(:func:`launch_args`) the run id becomes the orchestrator's ``--run-id`` and the
W&B group and run name, the W&B project and entity become the account's (an entity only
when one is set: ``validate_config.py`` refuses a null one, so the config's own stays),
and the tags become the launcher's tags plus
the placement facts (``environment=vultr``, region, plan, gpu, snapshot, git sha, stage).
UPS passes all of these to ``wandb.init`` itself, and init arguments beat ``WANDB_*``
variables. It also passes ``mode="online"`` (``train.py``'s ``train_all_stages``), which
beats ``WANDB_MODE`` the same way (wandb's ``make_run_settings`` applies init settings over
the environment's): UPS cannot log offline. So:

- a W&B key and ``wandb.mode: online``: ``logging.wandb.enabled: true``, logged online;
- no key: W&B stays as the config says; UPS's login fails at once (no key, no request) and
  it trains without W&B (its ``validate_config.py`` refuses ``enabled: false``);
- a key and ``wandb.mode`` ``offline`` or ``disabled``: ``enabled: false`` and
  ``--skip-validation`` (for that refusal), so nothing is logged online against the setting.

``--wandb-mode`` tells the orchestrator's other steps either way.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from launcher.runner.spec import DataSource

ORCHESTRATOR = "scripts/run_fast_to_sota.py"
UPS_STAGES = ("operator", "diff_residual", "consistency_distill", "steady_prior")
DEFAULT_CODE_LINKS = (("reports", "reports"),)


@dataclass(frozen=True)
class UpsConfig:
    """A stage's ``ups:`` section merged over ``launcher.yaml``'s. ``train`` lists the UPS
    training stages that train (the others run 0 epochs); ``overrides`` are more
    ``--config-override`` pairs (key, JSON text), applied after the launcher's own;
    ``code_links`` are the code's output folders linked to the volume (``reports/``: UPS
    writes its training log, evaluation reports and leaderboard there)."""

    train_config: str
    train: tuple[str, ...] = UPS_STAGES
    data_root: str = "pdebench"
    evaluate: bool = False
    python: str = "python"
    overrides: tuple[tuple[str, str], ...] = ()
    code_links: tuple[tuple[str, str], ...] = field(default=DEFAULT_CODE_LINKS)
    cache_version: str = ""
    cache_include: tuple[str, ...] = ()


def cache_folder(ups: UpsConfig) -> str:
    """Where the latent cache lives, relative to the volume."""
    return f"data/latent_cache/{ups.cache_version}" if ups.cache_version else \
        "cache/latent_cache"


def cache_source(ups: UpsConfig) -> tuple[DataSource, ...]:
    """The prepared latent cache as a data source (none without ``cache_version``)."""
    if not ups.cache_version:
        return ()
    return (DataSource(prefix=f"latent_caches/{ups.cache_version}",
                       dest=f"latent_cache/{ups.cache_version}", include=ups.cache_include,
                       writable=True),)


def override(key: str, value: Any) -> tuple[str, str]:
    """One ``--config-override`` pair: the value as JSON (UPS reads it with yaml.safe_load)."""
    return "--config-override", f"{key}={json.dumps(value)}"


def static_command(ups: UpsConfig, mount_point: str) -> tuple[str, ...]:
    """The orchestrator's argv as far as the configuration decides it."""
    mount = mount_point.rstrip("/")
    argv = [ups.python, ORCHESTRATOR, "--train-config", ups.train_config,
            "--train-stage", "all", "--force-train",
            "--run-dir", f"{mount}/reports/fast_to_sota"]
    if not ups.evaluate:
        argv += ["--skip-small-eval", "--skip-full-eval"]
    if "operator" not in ups.train:
        argv.append("--skip-validation")
    pairs = [override("data.root", f"{mount}/data/{ups.data_root.strip('/')}"),
             override("checkpoint.dir", f"{mount}/checkpoints"),
             override("training.latent_cache_dir", f"{mount}/{cache_folder(ups)}")]
    pairs += [override(f"stages.{name}.epochs", 0) for name in UPS_STAGES
              if name not in ups.train]
    pairs += [("--config-override", f"{key}={text}") for key, text in ups.overrides]
    for pair in pairs:
        argv += pair
    return tuple(argv)


def gpu_args(count: int) -> tuple[str, ...]:
    """``training.num_gpus`` for the GPUs the run has on its machine: UPS's orchestrator
    starts ``torchrun --nproc_per_node=<num_gpus>`` itself when it is above 1 and the
    orchestrator is not already under torchrun (``RANK`` unset), else ``train.py`` alone. Set
    on every launch, so a config written for another count (``num_gpus: 2`` in UPS's DDP
    configs) never starts more processes than the machine has GPUs."""
    return override("training.num_gpus", count)


def launch_args(run_id: str, project: str, entity: str, tags: tuple[str, ...],
                wandb_mode: str, key_set: bool) -> tuple[str, ...]:
    """What only a launch knows, appended after the static command (and a GPU profile's
    overrides: they touch other keys). ``wandb_mode`` is the run's (``online`` only with a
    key); ``key_set`` whether the trainer gets a W&B key."""
    argv = ["--run-id", run_id, "--wandb-mode", wandb_mode]
    pairs = [override("logging.wandb.project", project or "universal-simulator")]
    if wandb_mode == "online":
        pairs.append(override("logging.wandb.enabled", True))
    elif key_set:  # a key, but not to be used online: off, and the check that refuses off
        pairs.append(override("logging.wandb.enabled", False))
        argv.append("--skip-validation")
    if entity:
        pairs.append(override("logging.wandb.entity", entity))
    pairs += [override("logging.wandb.group", run_id),
             override("logging.wandb.run_name", run_id),
             override("logging.wandb.tags", list(tags))]
    for pair in pairs:
        argv += pair
    return tuple(argv)
