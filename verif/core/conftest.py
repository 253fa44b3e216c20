"""Print the core suite's coverage and MAC-check summary at the end of the pytest run."""

from sparsecore.verif.core.tb import SUMMARY


def pytest_terminal_summary(terminalreporter):
    if not SUMMARY:
        return
    write = terminalreporter.write_line
    terminalreporter.section("tensor core coverage")
    total = 0
    for name, info in SUMMARY.items():
        stats, coverage = info["stats"], info["coverage"]
        total += stats["mac_checks"]
        bins = ", ".join(f"{g} {sum(1 for n in b.values() if n)}/{len(b)}"
                         for g, b in coverage.items())
        write(f"{name}: {stats['mac_checks']} MAC checks, {stats['tiles_checked']} tiles, "
              f"{stats['beats']} beats; {bins}; seed {info['seed']}; "
              f"build {info['build_s']:.1f}s run {info['run_s']:.1f}s")
    write(f"total: {total} MAC checks over {len(SUMMARY)} configurations")
