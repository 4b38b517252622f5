"""SandboxFusion (bytedance/SandboxFusion), for Python: POST /run_code and GET /v1/ping, answered as its server
answers, and its request errors as FastAPI's 422 {"detail": [...]}.

Its files are relative paths in the program's working folder, which must be writable and whose files it may fetch
afterwards: with files or fetch_files, the program runs in out/ (scratch space), with the files copied there first,
and what it leaves there comes back.
"""

import base64

from ...errors import SafecodeError
from .web import MEGABYTE, Request, checked_name, decoded, execute, in_working_folder, json_answer, number

FIELDS = {"code", "language", "run_timeout", "compile_timeout", "memory_limit_MB", "stdin", "files", "fetch_files",
          "args"}


def routes(service):
    def ping(request: Request):
        return json_answer(200, "pong")

    def run_code(request: Request):
        try:
            body = request.json()
        except ValueError:
            return _invalid(["body"], "JSON decode error", "json_invalid")
        if not isinstance(body, dict):
            return _invalid(["body"], "Input should be a valid dictionary", "dict_type")
        try:
            job, fetch = _job(body, service)
        except _Invalid as invalid:
            return _invalid(*invalid.args)
        try:
            result = execute(service, **job)
        except SafecodeError as error:
            return json_answer(200, {"status": "SandboxError", "message": str(error), "compile_result": None,
                                     "run_result": None, "executor_pod_name": None, "files": {}})
        return json_answer(200, _answer(result, fetch))

    return {"/run_code": {"POST": run_code}, "/v1/ping": {"GET": ping}}


class _Invalid(Exception):
    """A field FastAPI would refuse: (where, what, type)."""


def _invalid(location, message, kind):
    return json_answer(422, {"detail": [{"type": kind, "loc": location, "msg": message}]})


def _job(body, service):
    unknown = sorted(set(body) - FIELDS)
    if unknown:
        raise _Invalid(["body", unknown[0]], "Extra inputs are not permitted", "extra_forbidden")
    code = body.get("code")
    if not isinstance(code, str):
        raise _Invalid(["body", "code"], "Field required" if code is None else "Input should be a valid string",
                       "missing" if code is None else "string_type")
    if body.get("language") not in ("python", "python3"):
        raise _Invalid(["body", "language"], "Input should be 'python': this server runs Python only", "literal_error")
    stdin = body.get("stdin")
    if stdin is not None and not isinstance(stdin, str):
        raise _Invalid(["body", "stdin"], "Input should be a valid string", "string_type")
    try:
        timeout = number(body.get("run_timeout", 10), "run_timeout")
    except ValueError as error:
        raise _Invalid(["body", "run_timeout"], str(error), "float_type") from None
    memory = body.get("memory_limit_MB", -1)
    if isinstance(memory, bool) or not isinstance(memory, int):
        raise _Invalid(["body", "memory_limit_MB"], "Input should be a valid integer", "int_type")
    files, fetch = body.get("files") or {}, body.get("fetch_files") or []
    if not isinstance(files, dict) or not isinstance(fetch, list) or not all(isinstance(name, str) for name in fetch):
        raise _Invalid(["body", "files" if not isinstance(files, dict) else "fetch_files"],
                       "Input should be a valid dictionary or list", "type_error")
    try:
        sent = {checked_name(_relative(name)): decoded(value, "base64", name)
                for name, value in files.items() if value is not None}
        fetch = [checked_name(_relative(name)) for name in fetch]
    except ValueError as error:
        raise _Invalid(["body", "files"], str(error), "value_error") from None
    scratch = None
    if sent or fetch:
        prelude, sent, scratch = in_working_folder(sent, service)
        code = prelude + code
    return {"code": code, "stdin": stdin or "", "timeout": timeout, "files": sent, "scratch": scratch,
            "memory": memory * MEGABYTE if memory > 0 else None}, fetch


def _relative(name):
    return name[2:] if isinstance(name, str) and name.startswith("./") else name


def _answer(result, fetch):
    if result.status == "sandbox_error":
        status, run_status = "SandboxError", "Error"
    elif result.status == "timeout":
        status, run_status = "Failed", "TimeLimitExceeded"
    else:
        status, run_status = ("Success" if result.exit_code == 0 else "Failed"), "Finished"
    code = result.exit_code if result.status in ("ok", "error") else (None if result.status == "timeout" else -9)
    files = {name: base64.b64encode(result.files[name]).decode() for name in fetch if name in result.files}
    return {"status": status, "message": result.stderr[-1000:] if status == "SandboxError" else "",
            "compile_result": None, "executor_pod_name": None, "files": files,
            "run_result": {"status": run_status, "execution_time": result.duration, "return_code": code,
                           "stdout": result.stdout, "stderr": result.stderr, "cpu_time": result.cpu_time}}
