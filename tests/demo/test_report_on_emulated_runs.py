"""``launcher report vultr-vs-vast`` on real runs: one bucket receives one run of the example
stage made on the Vultr emulator (sandbox machines booting the cloud-init document) and one
made on the Vast emulator (containers running the onstart), each walked through the real
``launcher`` commands as the demo walks it; the report is then made from that bucket and
both emulators' live offers, and every figure of both runs must be recorded."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from support.demo import CONFIGS, EXAMPLE, needs_weed
from support.demo import FAKE_DEMO_KEYS as FAKE_KEYS
from support.keys import (
    FAKE_B2_APP_KEY,
    FAKE_B2_KEY_ID,
    FAKE_VAST_KEY,
    FAKE_VULTR_KEY,
    FAKE_WANDB_KEY,
)

from launcher.demo import DemoBed, DemoKeys, DemoReport
from launcher.demo.bed import BUCKET, STAGE, demo_timing
from launcher.demo.session import Session, walk
from launcher.errors import ConfigError
from launcher.operate.report_md import MARKER, NOT_RECORDED
from launcher.secrets import Secret

# `launcher run` prints what its plan chose: "first choice: $P/h plan + $V/h volume ..."
FIRST_CHOICE = re.compile(r"first choice: \$([\d,.]+)/h plan \+ \$([\d,.]+)/h volume")
TITLES = {"vultr": "Vultr", "vast": "Vast.ai"}



class Walked:
    """One run walked on one bed: the demo's report, what its commands printed, and the
    run's manifest as the bucket holds it; :meth:`read_offers` adds the bed's cloud's
    offers (``launcher offers --json``)."""

    def __init__(self, bed: DemoBed) -> None:
        self.bed = bed
        self.lines: list[str] = []
        self.report: DemoReport = walk(bed, show=self.lines.append)
        self.printed = "\n".join(self.lines)
        assert bed.s3 is not None
        run = self.report.run_id
        self.manifest = json.loads(bed.s3.s5("cat", f"s3://{BUCKET}/runs/{run}/manifest.json")
                                   .stdout)
        self.offers: dict = {}

    def read_offers(self) -> None:
        session = Session(self.bed, DemoReport(provider=self.bed.provider), lambda line: None,
                          200)
        self.offers = json_in(session.launcher("offers", "--stage", STAGE, "--json"))

    def first_choice(self) -> tuple[float, float]:
        """The plan's and the volume's $/h ``launcher run`` printed for its first choice."""
        found = FIRST_CHOICE.search(self.printed)
        assert found, self.printed[-3000:]
        return float(found.group(1).replace(",", "")), float(found.group(2).replace(",", ""))


def report_on(vultr: DemoBed, vast: DemoBed, out: Path) -> tuple[dict, str]:
    """``launcher report vultr-vs-vast --json`` with the bucket and both clouds' keys."""
    session = Session(vultr, DemoReport(), lambda line: None, 200)
    vast_env = vast.env()
    session.env.update(VAST_API_KEY=vast_env["VAST_API_KEY"],
                       VAST_API_URL=vast_env["VAST_API_URL"])
    printed = session.launcher("report", "vultr-vs-vast", "--json", "--out", str(out))
    return json_in(printed), out.read_text(encoding="utf-8")


def json_in(printed: str) -> dict:
    """The JSON document a command printed on stdout (its stderr is interleaved in the
    demo's output, as on a terminal): the object starting at the first line that opens one."""
    start = re.search(r"^\{$", printed, re.M)
    assert start, printed[-3000:]
    document, _ = json.JSONDecoder().raw_decode(printed, start.start())
    assert isinstance(document, dict)
    return document


def section(page: str, title: str) -> str:
    """The page's text from the heading ``title`` to the next heading of its level or above."""
    level = title.split(" ")[0]
    start = page.index(f"\n{title}\n")
    ends = [page.find(f"\n{h} ", start + len(title) + 2) for h in ("#", "##", "###")
            if len(h) <= len(level)]
    return page[start:min([e for e in ends if e != -1] or [len(page)])]


def cells(table_text: str, first: str) -> list[str]:
    """The cells of the Markdown table row whose first cell is ``first``."""
    rows = [line for line in table_text.splitlines() if line.startswith(f"| {first} |")]
    assert len(rows) == 1, table_text
    return [c.strip() for c in rows[0].strip("|").split(" | ")]


def done_rate(bed: DemoBed, run_id: str) -> tuple[float, int]:
    """Steps per second and steps from the example trainer's `done:` line in the bucket."""
    assert bed.s3 is not None
    log = bed.s3.s5("cat", f"s3://{BUCKET}/runs/{run_id}/logs/train.log").stdout
    start = re.search(r"^run \S*: \d+ rows, starting at step (\d+)\s*$", log, re.M)
    done = json.loads(re.findall(r"^done: (\{.*\})\s*$", log, re.M)[-1])
    steps = done["step"] - (int(start.group(1)) if start else 0)
    return steps / done["seconds"], steps


@needs_weed
def test_the_report_shows_every_figure_of_a_vultr_and_a_vast_run_in_one_bucket(tmp_path):
    with DemoBed.open(EXAMPLE, CONFIGS, FAKE_KEYS, demo_timing("vultr", instant=True),
                      provider="vultr") as vultr_bed:
        with DemoBed.open(EXAMPLE, CONFIGS, FAKE_KEYS, demo_timing("vast", instant=True),
                          provider="vast", s3=vultr_bed.s3) as vast_bed:
            walked = {"vultr": Walked(vultr_bed), "vast": Walked(vast_bed)}
            figures, page = report_on(vultr_bed, vast_bed, tmp_path / "vultr_vs_vast.md")
            for run in walked.values():
                run.read_offers()
            rates = {"vultr": done_rate(vultr_bed, walked["vultr"].report.run_id),
                     "vast": done_rate(vast_bed, walked["vast"].report.run_id)}
        assert vultr_bed.s3 is not None and vultr_bed.s3.process is not None
        assert vultr_bed.s3.process.poll() is None  # the sharing bed left the server running
    for provider, run in walked.items():
        assert run.report.state == "succeeded" and run.report.left_over == 0, run.report
        row = check_run_figures(figures, run, rates[provider])
        check_run_row(page, provider, row)
    check_offers(figures, page, walked)
    assert page.startswith(MARKER + "\n") and figures["runs_found"] == 2
    assert NOT_RECORDED not in section(page, "## Runs") + section(page, "## Comparison")


def check_run_figures(figures: dict, run: Walked, rate: tuple[float, int]) -> dict:
    """The report's JSON row of ``run``: each figure what the run's records hold."""
    rows = [r for r in figures["runs"] if r["run_id"] == run.report.run_id]
    assert len(rows) == 1, figures["runs"]
    row, placement = rows[0], run.manifest["placement"]
    assert row["provider"] == run.report.provider == placement["provider"]
    for key in ("region", "plan", "gpu_type", "gpu_count", "usd_per_hour"):
        assert row[key] == placement[key] and row[key], (key, row, placement)
    plan_usd, volume_usd = run.first_choice()  # printed with 2 and 3 decimals
    offer = [o for o in run.offers["candidates"] if o["plan"] == row["plan"]
             and o["region"] == row["region"]]
    assert offer and round(offer[0]["price_per_hour"], 2) == plan_usd, (offer, plan_usd)
    assert row["usd_per_hour"] == pytest.approx(offer[0]["price_per_hour"] + volume_usd,
                                                abs=5e-4)
    # The runner's phase times are whole seconds (status.json), the launch time is not:
    # a training that starts in the launch's second reads up to 1 s early.
    assert -1 < row["launch_to_train_s"] <= run.report.seconds, row
    assert row["wall_s"] is not None and 0 <= row["wall_s"] <= run.report.seconds
    assert row["throughput"]["parser"] == "example" and row["throughput"]["missing"] is None
    assert row["throughput"]["steps_per_s"] == pytest.approx(rate[0]) and rate[1] > 0
    assert 0 < row["billed_hours_at_least"] * 3600 <= run.report.seconds
    assert row["cost_usd_at_least"] == pytest.approx(row["usd_per_hour"]
                                                     * row["billed_hours_at_least"])
    assert (row["stage"], row["state"], row["exit_code"]) == (STAGE, "succeeded", 0)
    assert row["failed_phase"] is None and row["problems"] == []
    return row


def check_run_row(page: str, provider: str, row: dict) -> None:
    """The page's row of the run says the same figures, none "not recorded"."""
    found = cells(section(page, f"### {TITLES[provider]}"), row["run_id"])
    assert found[:5] == [row["run_id"], STAGE, f"{row['gpu_count']} × {row['gpu_type']}",
                         row["region"], f"${row['usd_per_hour']:,.3f}"], found
    steps = f"{row['throughput']['steps_per_s']:.2f} steps/s ("
    assert found[6].startswith(steps) and found[7] == "example", found
    assert found[9].startswith(f"≥ ${row['cost_usd_at_least']:,.2f} ("), found
    assert found[10] == "succeeded, exit 0" and NOT_RECORDED not in " ".join(found), found


def check_offers(figures: dict, page: str, walked: dict[str, Walked]) -> None:
    """Each cloud's cheapest fitting offer: the cheapest of `launcher offers --json`."""
    offers = section(page, "## Live offers now")
    assert [o["provider"] for o in figures["offers"]] == ["vultr", "vast"]
    for offer in figures["offers"]:
        fitting = walked[offer["provider"]].offers["candidates"]
        cheapest = min(fitting, key=lambda o: (o["price_per_hour"], o["plan"]))
        assert offer["problem"] is None and offer["fitting"] == len(fitting), offer
        assert (offer["plan"], offer["region"], offer["usd_per_hour"]) == (
            cheapest["plan"], cheapest["region"], cheapest["price_per_hour"])
        found = cells(offers, offer["provider"])
        assert found[1:3] == [offer["plan"], offer["region"]], found
        assert found[4] == f"${offer['usd_per_hour']:,.3f}", found


@needs_weed
def test_a_bed_refuses_a_shared_server_that_does_not_take_its_key_and_leaves_it_running():
    other = DemoKeys(Secret(FAKE_VULTR_KEY), FAKE_B2_KEY_ID + "x", Secret(FAKE_B2_APP_KEY),
                     Secret(FAKE_WANDB_KEY), Secret(FAKE_VAST_KEY))
    with DemoBed.open(EXAMPLE, CONFIGS, FAKE_KEYS, demo_timing("vultr", instant=True),
                      machines=False) as first:
        assert first.s3 is not None and first.s3.process is not None
        with pytest.raises(ConfigError, match="same keys"):
            DemoBed.open(EXAMPLE, CONFIGS, other, demo_timing("vast", instant=True),
                         machines=False, provider="vast", s3=first.s3)
        assert first.s3.process.poll() is None
        with DemoBed.open(EXAMPLE, CONFIGS, FAKE_KEYS, demo_timing("vast", instant=True),
                          machines=False, provider="vast", s3=first.s3) as second:
            assert second.env()["B2_S3_ENDPOINT"] == first.env()["B2_S3_ENDPOINT"]
        assert first.s3.process.poll() is None and not second.root.exists()
        assert len(first.s3.listing(BUCKET, "datasets/")) == 4  # seeded twice, same objects
    assert first.s3.process.poll() is not None  # its owner stopped it
