"""A tiny DDP stage for the cluster tests (test data: shipped as the run's ``train.py``).

Started by torchrun on every node (gloo, CPU). Each rank trains a small linear model for
``--steps`` steps on its own random batch; DDP all-reduces the gradients, so after each step
every rank holds the same weights, which the script checks with one more all-reduce. The
checkpoint and the report are written by local rank 0 of node 0 only — the node index comes
from ``LAUNCHER_NODE_RANK`` when the runner sets it, else torchrun's ``GROUP_RANK``; the
global rank is not used because torch's c10d rendezvous orders nodes by their address
string (then pid), not by node number. ``--step-sleep`` makes it long enough to kill a node.
Local rank 0 of every node rewrites ``progress.json`` in the report folder after each step.
"""

import argparse
import datetime
import json
import os
import pathlib
import sys
import time

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

parser = argparse.ArgumentParser()
parser.add_argument("--steps", type=int, default=5)
parser.add_argument("--step-sleep", type=float, default=0.0)
parser.add_argument("--pg-timeout", type=float, default=600.0)
args = parser.parse_args()

dist.init_process_group("gloo", timeout=datetime.timedelta(seconds=args.pg_timeout))
rank, world = dist.get_rank(), dist.get_world_size()
node = int(os.environ.get("LAUNCHER_NODE_RANK") or os.environ["GROUP_RANK"])
local = int(os.environ["LOCAL_RANK"])
print(f"rank {rank}/{world} node {node} local {local} user {os.environ.get('USER')} "
      f"master {os.environ['MASTER_ADDR']}:{os.environ['MASTER_PORT']} "
      f"python {sys.executable}", flush=True)

torch.manual_seed(0)
model = DistributedDataParallel(torch.nn.Linear(8, 1))
optimiser = torch.optim.SGD(model.parameters(), lr=0.1)
batches = torch.Generator().manual_seed(1000 + rank)
loss = torch.tensor(0.0)
# Every node's progress, on its own volume (what node 0 salvages from a lost node's volume).
progress = pathlib.Path(os.environ["LAUNCHER_REPORT_DIR"]) / "progress.json.part"
for step in range(1, args.steps + 1):
    x = torch.randn(32, 8, generator=batches)
    y = x.sum(dim=1, keepdim=True)
    optimiser.zero_grad()
    loss = torch.nn.functional.mse_loss(model(x), y)
    loss.backward()
    optimiser.step()
    print(f"rank {rank} step {step} loss {loss.item():.4f}", flush=True)
    if local == 0:
        progress.write_text(json.dumps({"node": node, "step": step, "loss": loss.item()}))
        progress.replace(progress.with_name("progress.json"))
    if args.step_sleep:
        time.sleep(args.step_sleep)

flat = torch.cat([p.detach().flatten() for p in model.parameters()])
total = flat.clone()
dist.all_reduce(total)
if not torch.allclose(total, flat * world, atol=1e-6):
    sys.exit(f"rank {rank}: weights differ between ranks after all-reduce")
if node == 0 and local == 0:
    out = pathlib.Path(os.environ["LAUNCHER_CHECKPOINT_DIR"]) / f"step-{args.steps}"
    out.mkdir(parents=True, exist_ok=True)
    torch.save(model.module.state_dict(), out / "model.pt")
    report = pathlib.Path(os.environ["LAUNCHER_REPORT_DIR"]) / "report.json"
    report.write_text(json.dumps({"steps": args.steps, "world_size": world,
                                  "final_loss": loss.item()}))
dist.barrier()
dist.destroy_process_group()
print(f"rank {rank} done", flush=True)
