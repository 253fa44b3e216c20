"""sparsecore.campaign: jobs, seeds, and the same results on 1 Dask worker as on 2."""

import pytest

from sparsecore.campaign import Job, collect_jobs, dask_client, group_nodes, job_seed, run_campaign

pytest.importorskip("dask.distributed")

# A tiny campaign of real suite jobs: one MAC configuration under two seeds, and the
# tiny core (its testbench reports MAC checks and cycles, which depend on the seed).
NODES = ["verif/mac/test_mac.py::test_mac[mac_ternary_uint4]",
         "verif/core/test_core.py::test_core[core_tiny]"]


def test_seeds_depend_on_campaign_targets_and_repeat_only():
    a = job_seed(1, ("x::y",), 0)
    assert a == job_seed(1, ("x::y",), 0) and 0 <= a < 2 ** 31
    assert len({a, job_seed(2, ("x::y",), 0), job_seed(1, ("x::z",), 0),
                job_seed(1, ("x::y",), 1)}) == 4


def test_testbench_nodes_are_jobs_of_their_own():
    groups = group_nodes(["verif/a.py::t[1]", "verif/a.py::t[2]", "tests/b.py::u[1]",
                          "tests/b.py::v", "tests/c.py::w"])
    assert groups == [("tests/b.py::u[1]", "tests/b.py::v"), ("tests/c.py::w",),
                      ("verif/a.py::t[1]",), ("verif/a.py::t[2]",)]
    jobs = collect_jobs([], 2, 7, nodes=["verif/a.py::t[1]", "tests/c.py::w"])
    assert [j.targets for j in jobs] == [("tests/c.py::w",), ("verif/a.py::t[1]",)] * 2
    assert [j.index for j in jobs] == [0, 1, 2, 3]
    assert jobs[0].seed != jobs[2].seed   # repeat 2 of a target gets a fresh seed


def test_rerun_command_names_seed_waves_and_env():
    job = Job(index=3, targets=("verif/x.py::t[a]",), seed=42, env=(("SPARSECORE_CORE_MACS", "9"),))
    assert job.rerun_command() == ("SPARSECORE_CORE_MACS=9 SPARSECORE_SEED=42 SPARSECORE_WAVES=1 "
                                   "python -m pytest 'verif/x.py::t[a]'")


# The core job's random MAC checks: few, so the campaign stays seconds (the default is
# 120000, SPARSECORE_CORE_MACS in verif/core/tb.py); the counts still depend on the seed.
QUICK_MACS = 20_000


def test_one_worker_and_two_give_the_same_results():
    jobs = collect_jobs([], 1, 5, env=[("SPARSECORE_CORE_MACS", str(QUICK_MACS))], nodes=NODES)
    outcomes = {}
    for workers in (1, 2):
        with dask_client(workers=workers) as client:
            assert len(client.scheduler_info()["workers"]) == workers
            results = run_campaign(jobs, client, log=lambda _line: None)
        outcomes[workers] = [r.outcome() for r in results]
        assert all(r.passed for r in results), [r.summary for r in results if not r.passed]
    assert outcomes[1] == outcomes[2]
    core = [o for o in outcomes[1] if "core_tiny" in o[1][0]]
    assert core and all(o[5] >= QUICK_MACS and o[6] > 0 for o in core)   # MAC checks, cycles


def test_bad_campaign_arguments_exit_2_with_one_line(capsys):
    from sparsecore.cli import main

    assert main(["regress", "--seeds", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "sparsecore: error: argument --seeds: --seeds must be at least 1, not 0"
    assert main(["mutate", "--designs", "nope"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("sparsecore mutate: error: --designs: unknown nope")


def test_scale_bench_campaign_is_fixed_and_balanced():
    from sparsecore.bench.scale import TARGET, campaign_jobs

    jobs = campaign_jobs(6, 150_000, 3)
    assert [j.targets for j in jobs] == [(TARGET,)] * 6          # jobs of one size
    assert {j.env for j in jobs} == {(("SPARSECORE_CORE_MACS", "150000"),)}
    assert len({j.seed for j in jobs}) == 6                      # each its own seed
    assert [j.seed for j in campaign_jobs(6, 150_000, 3)] == [j.seed for j in jobs]


def test_scale_bench_refuses_bad_sizes_with_one_line(capsys):
    from sparsecore.cli import main

    assert main(["bench", "campaign", "--jobs", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--jobs must be at least 2" in err[0]
    assert main(["bench", "campaign", "--core-macs", "500"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--core-macs must be at least 100000" in err[0]
