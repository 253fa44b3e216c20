"""``sparsecore waves``: draw a waveform without a display, or record the demo GEMM's.

- ``sparsecore waves demo [--out DIR] [--png PNG ...] [--config NAME]`` is
  ``make waves``: a small sparse GEMM through ``sparsecore gemm --waves`` (a VCD
  and its ``.gtkw``) and a PNG of it.
- ``sparsecore waves png RUN.vcd MANIFEST.json OUT.png`` draws a user's VCD of a
  core run; the manifest is the one ``sparsecore verilog`` (or the build) wrote.
"""

import dataclasses
from pathlib import Path

import numpy as np

from sparsecore.hw.config import preset
from sparsecore.safe_io import (
    atomic_output,
    check_distinct,
    check_output_file,
    check_output_files,
    save_npy,
)
from sparsecore.sim import prune_2to4
from sparsecore.verif.engine import build_engine
from sparsecore.verif.waves import render_png

__all__ = ["demo", "DEMO_SHAPE"]

DEMO_SHAPE = (4, 16, 4)    # M, K, N of the demo GEMM: a few tiles, a picture's worth


def demo(command, out_dir, png_paths, config="tiny", seed=7):
    """A small sparse GEMM through ``sparsecore gemm --waves`` and its PNG.

    ``command`` is the ``sparsecore`` command's ``main(argv)``, which runs the GEMM.
    """
    # Every output checked before the run, none the same file as another (SPEC §5).
    files = check_output_files(out_dir, ["A.npy", "B.npy", "C.npy", "demo.vcd", "demo.gtkw"],
                               "--out")
    pngs = [check_output_files(Path(png).parent, [Path(png).name], "--png")[0]
            if not str(png).endswith("/") else check_output_file(png, "--png")
            for png in png_paths]
    check_distinct([], [(f"--out (its {p.name})", p) for p in files]
                   + [("--png", p) for p in pngs])
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    m, k, n = DEMO_SHAPE
    a = prune_2to4(rng.integers(-128, 128, size=(m, k)))
    b = rng.integers(-128, 128, size=(k, n))
    save_npy(out_dir / "A.npy", a)
    save_npy(out_dir / "B.npy", b)
    vcd = out_dir / "demo.vcd"
    argv = ["gemm", "--a", str(out_dir / "A.npy"), "--b", str(out_dir / "B.npy"),
            "--weights", "int8", "--acts", "int8", "--config", config,
            "--out", str(out_dir / "C.npy"), "--waves", str(vcd), "--check"]
    print("sparsecore " + " ".join(argv))
    code = command(argv)
    if code:
        return code
    cfg = dataclasses.replace(preset(config), weights="int8", acts="int8")
    manifest = build_engine(cfg, waves=True).manifest   # the GEMM's build: no rebuild
    tiles = -(-m // cfg.rows) * -(-n // cfg.cols)
    title = (f"sparsecore gemm --config {config}: C[{m}x{n}] = A[{m}x{k}] (2:4, int8) x "
             f"B[{k}x{n}], sparse mode: {tiles} output tiles of {-(-k // cfg.k_sparse)} beats")
    for png in pngs:
        png.parent.mkdir(parents=True, exist_ok=True)
        with atomic_output(png) as tmp:
            render_png(vcd, manifest, tmp, title=title)
        print(f"wrote {png}")
    print(f"open the waveform with: gtkwave {vcd.with_suffix('.gtkw')}")
    return 0
