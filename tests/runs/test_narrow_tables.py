"""``status``, ``teardown``, ``gc`` and ``doctor`` in a narrow terminal: every run id,
resource id, label and path whole on one line, never cut with "…"."""

from __future__ import annotations

import json
import time

import pytest
from support.narrow import NARROW, cut_or_split

from launcher.cli import main
from launcher.naming import volume_label
from runs.conftest import OTHER, RUN, make_run
from runs.test_doctor import doctor_env  # noqa: F401 - a fixture

LONG = "diffusion-finetune-20261129-120000"


@pytest.fixture(params=NARROW)
def narrow(cli_env, monkeypatch, request):
    monkeypatch.setenv("COLUMNS", request.param)
    return cli_env


def names(*made) -> list[str]:
    return [w for m in made for w in (m.run_id, m.instance_id, m.volume_id,
                                      volume_label(m.run_id)) if w]


def test_status_shows_every_run_whole(narrow, provider, publish, capsys):
    made = [make_run(provider, RUN), make_run(provider, OTHER), make_run(provider, LONG)]
    publish("running", RUN)

    assert main(["status"]) == 0

    out = capsys.readouterr().out
    assert cut_or_split(out, [m.run_id for m in made] + [volume_label(RUN)]) == []
    assert "…" not in out


def test_status_of_one_run_cuts_no_phase(narrow, provider, publish, capsys):
    made = make_run(provider, RUN)
    publish("running", RUN)

    assert main(["status", RUN]) == 0

    out = capsys.readouterr().out
    assert cut_or_split(out, names(made)) == [] and "…" not in out
    data = json.loads((capsys.readouterr(), main(["status", RUN, "--json"]),
                       capsys.readouterr().out)[2])
    started = [p["started"] for p in data["status"]["phases"]]
    assert started and cut_or_split(out, started) == []


def test_teardown_shows_every_resource_id_whole(narrow, provider, publish, capsys):
    made = make_run(provider, LONG)
    publish("finished", LONG)

    assert main(["teardown", LONG, "--yes"]) == 0

    out = capsys.readouterr().out
    table = out.split("\ninstance ")[0]  # the plan, before the outcomes
    assert cut_or_split(table, names(made)) == [] and "…" not in out


def test_gc_shows_every_resource_id_whole(narrow, provider, capsys):
    made = [make_run(provider, LONG, expires=time.time() - 60),
            make_run(provider, RUN, instance=False)]

    assert main(["gc"]) == 0

    out = capsys.readouterr().out
    assert cut_or_split(out, [made[0].instance_id, LONG, made[1].volume_id,
                              volume_label(RUN)]) == []
    assert "…" not in out


def test_doctor_shows_every_word_of_its_results_whole(narrow, doctor_env,  # noqa: F811
                                                      capsys):
    assert main(["doctor", "--stage", "smoke", "--json"]) == 0
    checks = json.loads(capsys.readouterr().out)["checks"]

    assert main(["doctor", "--stage", "smoke"]) == 0

    out = capsys.readouterr().out
    words = [w for c in checks for w in f"{c['detail']} {c['hint']}".split()]
    for literal in (w for w in words if "…" in w):  # "launcher-gpu-…": a prefix, said so
        out = out.replace(literal, "")
    assert cut_or_split(out, [w for w in words if "…" not in w]) == []
