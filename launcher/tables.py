"""Tables that never cut what a user reads or copies, at any terminal width.

Every table the CLI prints is a :class:`FitTable`, printed with :func:`print_table`. Rich, left
alone, squeezes a table into a narrow terminal by cutting cells (``vcg-l4…``) and folding ids
mid-word. A ``FitTable`` measures, at the width it is printed at (the console's: ``COLUMNS``
when set), what each column needs for none of its words to be broken (an id, a region, a price
is one word; cells wrap only at spaces) and takes the first layout that fits:

1. the table with rich's usual box;
2. the same without borders (two spaces between columns);
3. the same without its ``optional`` columns (derived or decorative ones);
4. a list: per row, its ``column: value`` fields side by side, a line broken only between
   fields (or at a space of a field too long for a line), the row's marks (▶, ✔) leading it.

A word wider than the terminal (a long path) is printed whole, unwrapped: the terminal may show
it on two lines, but no character is dropped. Columns whose cells are all empty are left out;
so are empty fields in the list.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, JustifyMethod, RenderResult
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

BORDERED_EXTRA = 3  # per column: padding on both sides and one border; plus one border
COMPACT_GAP = 2  # between columns of the borderless layout


@dataclass(frozen=True)
class Col:
    """A column; ``optional``: left out before the table turns into a list (it repeats or
    decorates). A column named "" holds marks (▶, ✔): in the list they lead the row."""

    name: str
    justify: JustifyMethod = "left"
    optional: bool = False


@dataclass(frozen=True)
class _Layout:
    columns: tuple[int, ...]  # indexes of the columns shown
    widths: tuple[int, ...]  # their content widths
    bordered: bool


class FitTable:
    """Rows of rich-markup cells under ``columns``; rendered as the module docstring says."""

    def __init__(self, title: str, columns: Sequence[Col], *, lines: bool = False) -> None:
        """``lines``: a rule between rows (for rows of several lines each)."""
        self.title = title
        self.lines = lines
        self.columns = tuple(columns)
        self.rows: list[tuple[str, ...]] = []

    def add_row(self, *cells: str) -> None:
        if len(cells) != len(self.columns):
            raise ValueError(f"{len(cells)} cells for {len(self.columns)} columns")
        self.rows.append(tuple(cells))

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        layout = self.layout(options.max_width)
        if layout is None:
            yield from self._as_list(options.max_width)
        else:
            yield self._as_table(layout)

    def layout(self, width: int) -> _Layout | None:
        """The first table layout of the module docstring that fits ``width`` (None: a list)."""
        shown = [i for i in range(len(self.columns))
                 if not self.rows or any(row[i] for row in self.rows)]
        needs = {i: self._measure(i) for i in shown}
        kept = [i for i in shown if not self.columns[i].optional]
        for columns, bordered in ((shown, True), (shown, False), (kept, False)):
            extra = (BORDERED_EXTRA * len(columns) + 1 if bordered
                     else COMPACT_GAP * (len(columns) - 1))
            widths = _fit([needs[i] for i in columns], width - extra)
            if widths is not None and columns:
                return _Layout(tuple(columns), widths, bordered)
        return None

    def _measure(self, index: int) -> Measurement:
        column = self.columns[index]
        cells = [_markup(c) for c in (column.name, *(row[index] for row in self.rows))]
        return Measurement(max(_widest_word(cell) for cell in cells),
                           max(_widest_line(cell) for cell in cells))

    def _as_table(self, layout: _Layout) -> Table:
        table = Table(title=self.title or None, show_lines=self.lines,
                      min_width=_widest_word(_markup(self.title)) or None)
        if not layout.bordered:
            table.box, table.pad_edge = None, False
        for index, width in zip(layout.columns, layout.widths, strict=True):
            column = self.columns[index]
            table.add_column(column.name, justify=column.justify, width=width)
        for row in self.rows:
            table.add_row(*(row[i] for i in layout.columns))
        return table

    def _as_list(self, width: int) -> Iterator[Text | Table]:
        if self.title:
            yield _unbroken(_markup(self.title, style="table.title"), width)
        for row in self.rows:
            named = [(c.name, cell) for c, cell in zip(self.columns, row, strict=True) if cell]
            marks = " ".join(cell for name, cell in named if not name)
            fields = [Text.assemble((f"{name}:", "bold"), " ",
                                    _markup(cell.replace("\n", "; ")))
                      for name, cell in named if name]
            yield from _flow(_markup(f"{marks or '-'} "), fields, width)


def _fit(needs: list[Measurement], room: int) -> tuple[int, ...] | None:
    """Widths between each column's minimum and maximum summing to at most ``room`` (spare
    room to the columns that want more, in proportion to what they lack); None: no fit."""
    least = sum(n.minimum for n in needs)
    if least > room:
        return None
    lacking = [n.maximum - n.minimum for n in needs]
    spare = room - least
    if sum(lacking) <= spare:
        return tuple(n.maximum for n in needs)
    widths = [n.minimum + spare * lack // sum(lacking)
              for n, lack in zip(needs, lacking, strict=True)]
    for i in sorted(range(len(needs)), key=lambda i: -lacking[i]):
        if sum(widths) < room and widths[i] < needs[i].maximum:
            widths[i] += 1
    return tuple(widths)


def _flow(lead: Text, fields: list[Text], width: int) -> Iterator[Text | Table]:
    """``fields`` two spaces apart, a line broken only between them (one too long for a line
    wraps at its spaces), lines after the first indented as far as the first one's ``lead``."""
    line, filled, indent = lead, False, " " * lead.cell_len
    for field in fields:
        gap = "  " if filled else ""
        if line.cell_len + len(gap) + field.cell_len <= width:
            line, filled = Text.assemble(line, gap, field), True
            continue
        if filled:
            yield line
            line = Text(indent)
        if line.cell_len + field.cell_len <= width:
            line, filled = Text.assemble(line, field), True
        else:
            yield _hanging(line, field, width)
            line, filled = Text(indent), False
    if filled:
        yield line


def _hanging(lead: Text, field: Text, width: int) -> Text | Table:
    """``field`` after ``lead``, wrapped under itself; unwrapped if a word cannot fit."""
    room = width - lead.cell_len
    if _widest_word(field) > room:
        return _unbroken(Text.assemble(lead, field), room)
    grid = Table.grid()
    grid.add_column(width=lead.cell_len, no_wrap=True)
    grid.add_column(max_width=room)
    grid.add_row(lead, field)
    return grid


def _widest_word(text: Text) -> int:
    return max((cell_len(word) for word in text.plain.split()), default=0)


def _widest_line(text: Text) -> int:
    return max((cell_len(line) for line in text.plain.splitlines()), default=0)


def _unbroken(text: Text, width: int) -> Text:
    """``text``, left unwrapped when one of its words is wider than ``width`` (rich would
    break that word; the terminal shows it whole, if on two screen lines)."""
    if _widest_word(text) > width:
        text.no_wrap, text.overflow = True, "ignore"
    return text


def print_table(console: Console, table: FitTable) -> None:
    """Print ``table`` uncropped: a word wider than the terminal reaches it whole."""
    console.print(table, crop=False)


__all__ = ["Col", "FitTable", "print_table"]


def _markup(text: str, style: str = "") -> Text:
    # cells quote run and API texts: ":warning:" in them stays as written, not an emoji
    return Text.from_markup(text, style=style, emoji=False)
