"""The capacity-text fallback (launcher/provision/reconcile.py, ``is_capacity_refusal``): a
create refusal that the error envelope did not classify as out of capacity still moves the
launch to the next offer when its text says the plan cannot be had there right now; any other
refusal stops the launch (no failover, which would only hide a real mistake), and so does a
conflict whatever its words."""

from __future__ import annotations

import pytest

import launcher.provision.reconcile as reconcile_module
from launcher.errors import ConflictError, InvalidRequestError, OutOfCapacityError
from launcher.provision import LaunchResult, run_stage
from launcher.provision.session import is_capacity_refusal
from launcher.vultr.envelope import error_for_status

WHERE = {"method": "POST", "path": "/instances", "status": 400}

# Each word the fallback knows ("plan" and one of not available / unavailable / sold out /
# out of stock), on an InvalidRequestError: the fallback alone must mark them.
CAPACITY_TEXTS = (
    "Plan unavailable in this location",
    "The requested plan is currently not available here.",
    "This plan is SOLD OUT for now",
    "plan vcg-a100 is out of stock",
)
# The envelope's phrases miss these two: without the fallback a launch would stop on them.
ENVELOPE_MISSES = CAPACITY_TEXTS[:2]
NOT_CAPACITY_TEXTS = (
    "Invalid plan chosen.",  # "plan", but no word of availability: a mistake, not capacity
    "Snapshot not available yet.",  # availability, but not of the plan
    "Invalid snapshot.",
    "Missing required field: region.",
)


@pytest.mark.parametrize("text", CAPACITY_TEXTS)
def test_a_refusal_saying_the_plan_cannot_be_had_is_capacity(text):
    assert is_capacity_refusal(InvalidRequestError(text, **WHERE))


@pytest.mark.parametrize("text", ENVELOPE_MISSES)
def test_the_fallback_is_what_marks_texts_the_envelope_leaves_unclassified(text):
    error = error_for_status("POST", "/instances", 400, text)
    assert type(error) is InvalidRequestError  # not classified by the envelope...
    assert is_capacity_refusal(error)  # ...so only the text fallback can say it


@pytest.mark.parametrize("text", NOT_CAPACITY_TEXTS)
def test_any_other_refusal_is_not_capacity(text):
    error = error_for_status("POST", "/instances", 400, text)
    assert type(error) is InvalidRequestError
    assert not is_capacity_refusal(error)


def test_a_conflict_is_never_capacity_whatever_it_says():
    assert not is_capacity_refusal(ConflictError("plan unavailable: server is locked", **WHERE))
    assert is_capacity_refusal(OutOfCapacityError("whatever the words", **WHERE))


def refuse_first_create(monkeypatch, text: str) -> list[str]:
    """The launch's first instance create is refused with ``text`` (status 400); later ones
    go to the emulator. Returns the offers' plan ids as they were tried."""
    real = reconcile_module.create_instance
    tried: list[str] = []

    def create(session, cand, spec, document):
        tried.append(cand.offer.plan_id)
        if len(tried) == 1:
            raise InvalidRequestError(text, **WHERE)
        return real(session, cand, spec, document)

    monkeypatch.setattr(reconcile_module, "create_instance", create)
    return tried


def test_a_launch_fails_over_on_a_capacity_text(bed, monkeypatch):
    tried = refuse_first_create(monkeypatch, CAPACITY_TEXTS[0])
    deps = bed.deps()
    result = run_stage(bed.request(), deps)
    assert isinstance(result, LaunchResult)
    assert len(tried) == 2 and tried[0] != tried[1]
    assert [s.offer.plan_id for s in result.tried] == tried[:1]
    assert f"trying next: {tried[1]}" in deps.progress.text


def test_a_launch_stops_on_a_refusal_that_is_not_capacity(bed, monkeypatch):
    tried = refuse_first_create(monkeypatch, NOT_CAPACITY_TEXTS[0])
    deps = bed.deps()
    with pytest.raises(InvalidRequestError, match="Invalid plan chosen"):
        run_stage(bed.request(), deps)
    assert len(tried) == 1  # no second offer was tried
    assert "trying next" not in deps.progress.text
    assert bed.left() == ([], [])  # the launch's volume was rolled back
