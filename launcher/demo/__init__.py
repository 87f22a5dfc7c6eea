"""The offline demo (``launcher demo``, ``make demo``): the example stage launched with the
real ``launcher`` commands against an emulated Vultr whose machines run the real runner, with
a local S3 server as the bucket. Nothing leaves 127.0.0.1."""

from launcher.demo.bed import DemoBed, DemoKeys
from launcher.demo.session import CommandRecord, DemoError, DemoReport, run_demo

__all__ = ["CommandRecord", "DemoBed", "DemoError", "DemoKeys", "DemoReport", "run_demo"]
