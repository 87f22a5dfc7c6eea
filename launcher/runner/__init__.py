"""The on-instance runner: a root supervisor that mounts, syncs, checks, trains, uploads and
tears down, with nobody watching.

Standard library only, Python >= 3.10: it runs under the image's system ``python3`` and travels
inside the cloud-init document as a zip application (``runner.pyz``), so changing it never
needs a re-baked image. Nothing here may import anything outside ``launcher.runner``.
"""
