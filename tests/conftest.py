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


def pytest_terminal_summary(terminalreporter):
    lines = []
    for report in terminalreporter.getreports("passed") + terminalreporter.getreports("failed"):
        if report.when != "call":
            continue
        lines += [value for key, value in report.user_properties if key == "summary"]
    if lines:
        terminalreporter.section("measurements")
        for line in sorted(lines):
            terminalreporter.write_line(line)
