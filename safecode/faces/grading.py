"""Grading: a program against its cases, and many programs at once; the Sandbox's `check` and `check_many`.

All cases of one program run in one container, each in a fresh process (reuse): the Sandbox's own pool when it
reuses containers, else one container started for the check (a program's cases are one trust domain, whatever the
Sandbox's). Verdicts are decided on the host (verdicts.py), never by the program.
"""

import contextlib
import copy
from concurrent.futures import ThreadPoolExecutor
from typing import Iterable, Iterator, Optional, Sequence, Tuple

from ..engine.endpoint import Endpoint
from ..engine.pool import Pool
from ..files import files_in
from ..limits import Limits
from ..reader.run import program_source
from ..verdicts import Case, CaseResult, Compare, Report, Verdict, check_cases, check_compare, judge, program_for

Submission = Tuple[str, Sequence[Case]]


class Grading:
    """The grading part of a Sandbox (sandbox.py), whose attributes it uses."""

    limits: Limits
    warm: int
    reuse: int
    image: str
    endpoint: Endpoint
    preload: Tuple[str, ...]
    _pool: Optional[Pool]

    def check(self, code: str, cases: Sequence[Case], *, compare: Compare = "lines", stop_on_failure: bool = False,
              files=None, timeout: Optional[float] = None) -> Report:
        """Run `code` against each of `cases`; a Report of their verdicts.

        `compare` says how an I/O case's stdout is compared with its expected output: "lines" (trailing whitespace
        on each line and trailing blank lines ignored, as Judge0 does), "exact", "tokens" (whitespace-separated,
        numbers equal within 1e-6) or a function (expected, actual) -> bool, run here. `timeout` is each case's
        limit unless the case has its own; `files` go beside main.py in every case.
        """
        checked = check_cases(cases)
        check_compare(compare)
        program_source(code, self.limits)  # a bad program and bad files are errors before any container
        files_in(files, self.limits.max_files)
        with self._one_container(len(checked)) as sandbox:
            results = []
            for case in checked:
                results.append(_run_case(sandbox, code, case, compare, files, timeout))
                if stop_on_failure and results[-1].verdict is not Verdict.accepted:
                    break
        failed = next((result.verdict for result in results if result.verdict is not Verdict.accepted), None)
        return Report(verdict=failed or Verdict.accepted, passed=sum(r.verdict is Verdict.accepted for r in results),
                      total=len(checked), cases=tuple(results))

    def check_many(self, submissions: Iterable[Submission], **options) -> Iterator[Report]:
        """The Report of each (code, cases) pair, in the order given, computed concurrently across the pool (as
        many at once as it keeps warm containers, at least one). Takes the keywords of `check`."""
        submissions = [(code, check_cases(cases)) for code, cases in submissions]
        with ThreadPoolExecutor(max(1, self.warm), thread_name_prefix="safecode-check") as workers:
            yield from workers.map(lambda pair: self.check(*pair, **options), submissions)

    @contextlib.contextmanager
    def _one_container(self, programs):
        """This sandbox, if it reuses its containers; else a view of it whose runs share one container of their own,
        started now, that may run `programs` programs (and is removed afterwards)."""
        if self._pool is not None and self.reuse > 1:
            yield self
            return
        view = copy.copy(self)  # the same limits, image, engine and counts, another pool
        view._pool = Pool(1, self.limits, self.image, self.endpoint, self.preload, reuse=programs + 1)
        try:
            yield view
        finally:
            view._pool.close()


def _run_case(sandbox, code, case, compare, files, timeout):
    program, mark = program_for(code, case)
    result = sandbox.execute(program, stdin=case.stdin, files=files, timeout=case.timeout or timeout)
    verdict, message, result = judge(case, result, mark, compare)
    return CaseResult(case=case, verdict=verdict, message=message, result=result)
