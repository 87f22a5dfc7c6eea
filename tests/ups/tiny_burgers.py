"""Write tiny, valid burgers1d splits in the training repository's HDF5 layout.

Run with the UPS test environment's python (numpy, h5py): ``tiny_burgers.py OUT_DIR``. Each
split is one dataset ``data``, float32, shaped (samples, timesteps, grid points), as UPS's
``ups.data.pdebench`` reads it and its ``scripts/validate_data.py`` checks it (no NaN, not
constant). The train split is written as its first shard, ``burgers1d_train_000.h5``, the
name UPS's bucket keeps it under.
"""

import sys
from pathlib import Path

import h5py
import numpy as np

SAMPLES, TIMESTEPS, GRID = 4, 9, 32


def trajectory(rng: np.random.Generator) -> np.ndarray:
    x = np.linspace(0.0, 1.0, GRID, endpoint=False)
    u = np.sin(2 * np.pi * x) * rng.uniform(0.5, 1.5)
    rows = []
    for _ in range(TIMESTEPS):  # viscous Burgers, explicit steps on a periodic grid
        rows.append(u.copy())
        ux = (np.roll(u, -1) - np.roll(u, 1)) * GRID / 2
        uxx = (np.roll(u, -1) - 2 * u + np.roll(u, 1)) * GRID**2
        u = u + 1e-4 * (-u * ux + 0.05 * uxx)
    return np.stack(rows).astype(np.float32)


def main(out: Path) -> None:
    rng = np.random.default_rng(0)
    out.mkdir(parents=True, exist_ok=True)
    for name in ("burgers1d_train_000.h5", "burgers1d_val.h5", "burgers1d_test.h5"):
        with h5py.File(out / name, "w") as handle:
            handle.create_dataset("data", data=np.stack([trajectory(rng)
                                                         for _ in range(SAMPLES)]))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
