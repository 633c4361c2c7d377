"""The local stack as users run it: ``python -m local`` in a subprocess on free ports, driven over HTTP
(started by :mod:`local.spawn`, as ``make chaos`` starts it).

Started once for the e2e package; its output goes to a log file that is printed when a test fails to
start it. Handlers run with fault injection configured through the environment (off unless a test's
clip asks for it, see test_resume).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from harmonic_client import Client
from local.spawn import StackDidNotStart, StackProcess, start_stack_process


@pytest.fixture(scope="package")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackProcess]:
    log_path = tmp_path_factory.mktemp("local-stack") / "stack.log"
    try:
        stack = start_stack_process(log_path, environment={"HARMONIC_FAULTS_ENABLED": "true"})
    except StackDidNotStart as error:
        pytest.fail(f"{error}:\n{error.log_tail}")
    with stack:
        yield stack


@pytest.fixture
def client(local_stack: StackProcess) -> Client:
    return local_stack.client()
