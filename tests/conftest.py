"""Shared test plumbing: a `summary` fixture whose lines are printed at the end of the run
(planner ratios, model errors, suite counts), also under pytest-xdist."""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def summary(record_property):
    """Call summary("text") to have the line printed in the final test report."""
    def add(line: str) -> None:
        record_property("summary", line)
    return add


def _measurements(terminalreporter):
    lines = []
    for report in terminalreporter.getreports("passed") + terminalreporter.getreports("failed"):
        if report.when != "call":
            continue
        lines += [value for key, value in report.user_properties if key == "summary"]
    if lines:
        terminalreporter.section("measurements")
        for line in sorted(lines):
            terminalreporter.write_line(line)


def _onnx_suite_counts(terminalreporter):
    """category -> [passed, expected failures, failed] over ONNX backend-suite cases."""
    counts = {}
    for key in ("passed", "failed", "xfailed", "xpassed"):
        for report in terminalreporter.stats.get(key, []):
            nodeid = getattr(report, "nodeid", "")
            if getattr(report, "when", "call") != "call" or "::OnnxBackend" not in nodeid:
                continue
            category = nodeid.split("::OnnxBackend")[1].split("Test::")[0]
            slot = {"passed": 0, "xfailed": 1}.get(key, 2)
            counts.setdefault(category, [0, 0, 0])[slot] += 1
    return counts


def pytest_terminal_summary(terminalreporter):
    _measurements(terminalreporter)
    counts = _onnx_suite_counts(terminalreporter)
    if counts:
        terminalreporter.section("onnx conformance")
        for category, (ok, xf, bad) in sorted(counts.items()):
            total = ok + xf + bad
            terminalreporter.write_line(f"{category}: {ok} of {total} cases pass "
                                        f"({xf} expected failures, {bad} failed)")
