"""The parts of ``bench/hydration.py`` (the entry point), by what they hold.

- ``shared``: constants, the bench's own error, progress lines;
- ``measure``: running one child and measuring it, the context every candidate shares, the
  disk write limit;
- ``candidates``: the sync tools under test, by name;
- ``datasets``: the data sets, their contents, and the bucket changes between syncs;
- ``checks``: checking a local tree against the data set (sha256), and recording a sync;
- ``rounds``: one repetition of one data set (every tool cold, the changes, every tool again);
- ``report``: medians, goals, verdicts and the tables.

A package, not a script: ``make bench`` runs only the files ``bench/[!_]*.py``.
"""
