"""POST /check on the web example: a program against test cases, answered as a Report in JSON."""

from messages import HTTPError, run_fields
from safecode import Case
from safecode.verdicts import COMPARES

MAX_CASES = 100  # cases in one request
CASE_FIELDS = ("stdin", "expected", "test", "timeout", "name")


def check_fields(request, limits):
    """The arguments of Sandbox.check for this request: (code, cases, options); a 400 saying what is wrong."""
    fields, limits = run_fields({"code": request.get("code"), "timeout": request.get("timeout", limits.timeout)},
                                limits)
    cases = request.get("cases")
    if not isinstance(cases, list) or not cases:
        raise HTTPError(400, '"cases" must be a non-empty list of cases such as {"stdin": "1 2", "expected": "3"}.')
    if len(cases) > MAX_CASES:
        raise HTTPError(400, f'"cases": {len(cases)} cases, over the limit of {MAX_CASES}.')
    made = []
    for number, case in enumerate(cases, 1):
        if not isinstance(case, dict) or set(case) - set(CASE_FIELDS):
            raise HTTPError(400, f'"cases"[{number - 1}] must be an object with some of {", ".join(CASE_FIELDS)}.')
        timeout = case.get("timeout")
        if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float))
                                    or not 0 < timeout < float("inf")):
            raise HTTPError(400, f'"cases"[{number - 1}].timeout must be a positive number of seconds.')
        try:
            made.append(Case(**{**case, "timeout": min(timeout, limits.timeout) if timeout else None}))
        except (TypeError, ValueError) as error:
            raise HTTPError(400, f'"cases"[{number - 1}]: {error}.') from None
    compare = request.get("compare", "lines")
    if compare not in COMPARES:
        raise HTTPError(400, f'"compare" must be one of {", ".join(COMPARES)}.')
    stop = request.get("stop_on_failure", False)
    if not isinstance(stop, bool):
        raise HTTPError(400, '"stop_on_failure" must be true or false.')
    return fields["code"], made, {"compare": compare, "stop_on_failure": stop, "timeout": limits.timeout}


def report_answer(report):
    return {"success": True, "verdict": report.verdict.value, "passed": report.passed, "total": report.total,
            "ok": report.ok, "cases": [
                {"name": result.case.name, "verdict": result.verdict.value, "message": result.message,
                 "stdout": result.result.stdout, "stderr": result.result.stderr,
                 "exit_code": result.result.exit_code, "duration_ms": round(result.result.duration * 1000, 1)}
                for result in report.cases]}
