"""Test-wide settings: everything runs offline, on the CPU unless a test asks for CUDA; how the tests are spread over
pytest-xdist's workers (`python3 tasks.py test` runs one per core); and, with --durations, each test's CPU time."""

import os
import resource

import pytest
import torch

from bertlab.hub import OFFLINE_ENV

for _name, _value in OFFLINE_ENV.items():
    os.environ.setdefault(_name, _value)

# Each xdist worker gets its share of the cores: torch's own threads would otherwise fight the other workers' for them.
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _WORKERS > 1:
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // _WORKERS))

# Modules whose tests share one expensive module-scoped fixture (a batch of notebooks autograded once): under
# xdist (--dist loadgroup) each goes whole to one worker, so that the batch is graded once.
ONE_WORKER_MODULES = ("test_grading.py", "test_grading_sandbox.py", "test_grading_hostile.py")
CPU_SECONDS = "cpu_seconds"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The modules of ONE_WORKER_MODULES each in an xdist group; the tests marked slow first (otherwise in their
    order), so that the long ones start at once and the workers finish together."""
    for item in items:
        if item.path.name in ONE_WORKER_MODULES:
            item.add_marker(pytest.mark.xdist_group(item.path.stem))
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


def _cpu_seconds() -> float:
    """CPU time of this process and of the child processes it has waited for (a kernel, a browser, a build)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


_phase_start: dict[str, float] = {}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """Each phase's report (setup, call, teardown) carries the CPU seconds spent since the previous report."""
    outcome = yield
    now = _cpu_seconds()
    outcome.get_result().user_properties.append((CPU_SECONDS, now - _phase_start.get("last", now)))
    _phase_start["last"] = now


def pytest_runtest_logstart(nodeid: str, location: tuple) -> None:
    _phase_start["last"] = _cpu_seconds()


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    """With --durations: the tests' CPU time (with their child processes'), in all and the largest, which unlike
    wall time does not grow when other programs share the machine."""
    if config.option.durations is None:
        return
    per_test: dict[str, float] = {}
    for reports in terminalreporter.stats.values():
        for report in reports:
            for key, value in getattr(report, "user_properties", ()):
                if key == CPU_SECONDS:
                    per_test[report.nodeid] = per_test.get(report.nodeid, 0.0) + value
    if not per_test:
        return
    largest = sorted(per_test.items(), key=lambda kv: -kv[1])[: config.option.durations or len(per_test)]
    total = sum(per_test.values())
    terminalreporter.write_sep("=", f"CPU time of the tests: {total:.0f} s in all ({len(per_test)} tests)")
    for nodeid, seconds in largest:
        terminalreporter.write_line(f"{seconds:8.1f}s cpu  {nodeid}")


@pytest.fixture
def one_thread():
    """Tiny models run faster on one thread, above all on a busy machine (threads wait for each other)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
