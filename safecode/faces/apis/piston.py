"""Piston v2 (engineer-man/piston), for Python: GET /api/v2/runtimes and POST /api/v2/execute, answered as Piston
answers, with its 400 {"message"} and 415 errors. Piston runs the first utf8 file with `args`; the others go
beside it. Limits in milliseconds and bytes, -1 meaning the server's cap. Unlike Piston's, "output" is stdout then
stderr, not the two interleaved as they came.
"""

import signal as signals

from ...errors import SafecodeError
from .web import Request, checked_name, decoded, execute, json_answer

ALIASES = ["py", "py3", "python3"]
STATUS = {"timeout": ("TO", "Time limit exceeded"), "oom": ("SG", "Out of memory"),
          "output_limit": ("OL", "stdout length exceeded"), "sandbox_error": ("XX", "Internal error")}


def routes(service):
    def runtimes(request: Request):
        return json_answer(200, [{"language": "python", "version": service.python_version(), "aliases": ALIASES,
                                  "runtime": "python"}])

    def run(request: Request):
        if not request.headers.get("content-type", "").startswith("application/json"):
            return json_answer(415, {"message": "requests must be of type application/json"})
        try:
            body = request.json()
            if not isinstance(body, dict):
                raise ValueError("the body must be a JSON object")
            job = _job(body, service)
        except ValueError as error:
            return json_answer(400, {"message": str(error)})
        try:
            result = execute(service, **job)
        except SafecodeError as error:
            return json_answer(500, {"message": f"the sandbox failed: {error}"})
        return json_answer(200, {"language": "python", "version": service.python_version(),
                                 "run": _stage(result)})

    table = {}
    for path, methods in (("/api/v2/runtimes", {"GET": runtimes}), ("/api/v2/execute", {"POST": run})):
        table[path] = table[path + "/"] = methods  # aiopyston asks for "runtimes/" and "execute/"
    return table


def _job(body, service):
    """The run a Piston request asks for, checked with Piston's own words."""
    language, version, files = body.get("language"), body.get("version"), body.get("files")
    if not language or not isinstance(language, str):
        raise ValueError("language is required as a string")
    if not version or not isinstance(version, str):
        raise ValueError("version is required as a string")
    if not isinstance(files, list) or not files:
        raise ValueError("files is required as an array")
    for number, file in enumerate(files):
        if not isinstance(file, dict) or not isinstance(file.get("content"), str):
            raise ValueError(f"files[{number}].content is required as a string")
    if (language != "python" and language not in ALIASES) or not _matches(service.python_version(), version):
        raise ValueError(f"{language}-{version} runtime is unknown")
    if not any(file.get("encoding", "utf8") == "utf8" for file in files):
        raise ValueError("files must include at least one utf8 encoded file")
    limits = service.sandbox.limits
    caps = {"run_timeout": limits.timeout * 1000, "run_cpu_time": limits.timeout * 1000, "run_memory_limit": None}
    for name in ("run_timeout", "run_cpu_time", "run_memory_limit", "compile_timeout", "compile_cpu_time",
                 "compile_memory_limit"):
        value = body.get(name)
        if value in (None, 0, -1):
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"If specified, {name} must be a number")
        if value < 0:
            raise ValueError(f"{name} must be non-negative")
        if caps.get(name) and value > caps[name]:
            raise ValueError(f"{name} cannot exceed the configured limit of {caps[name]:g}")
    args, stdin = body.get("args") or [], body.get("stdin") or ""
    if not isinstance(args, list) or not all(isinstance(arg, str) for arg in args):
        raise ValueError("args must be an array of strings")
    if not isinstance(stdin, str):
        raise ValueError("stdin must be a string")
    main = next(file for file in files if file.get("encoding", "utf8") == "utf8")
    others = {}
    for number, file in enumerate(files):
        if file is not main:
            name = checked_name(file.get("name") or f"file{number}.code")
            others[name] = decoded(file["content"], file.get("encoding", "utf8"), f"files[{number}]")
    code = main["content"] if not args else f"import sys; sys.argv[1:] = {args!r}\n{main['content']}"
    timeouts = [body[name] / 1000 for name in ("run_timeout", "run_cpu_time") if body.get(name) not in (None, 0, -1)]
    memory = body.get("run_memory_limit")
    return {"code": code, "stdin": stdin, "files": others, "timeout": min(timeouts) if timeouts else None,
            "memory": memory if memory not in (None, 0, -1) else None}


def _matches(version, wanted):
    """Piston's version match, for the forms clients send: "*", "3", "3.11", "3.11.x", "3.11.2"."""
    if wanted in ("*", "x"):
        return True
    have = version.split(".")
    return all(part in ("x", "*") or (at < len(have) and part == have[at]) for at, part in enumerate(wanted.split(".")))


def _stage(result):
    status, message = STATUS.get(result.status, (None, None))
    code, signal = result.exit_code, None
    if result.status == "error" and code is not None and code > 128:  # killed by a signal
        status, message, signal, code = "SG", f"Caught fatal signal {code - 128}", _signal_name(code - 128), None
    elif result.status == "error":
        status, message = "RE", f"Exited with error status {code}"
    elif status is not None:
        signal, code = "SIGKILL", None
    return {"stdout": result.stdout, "stderr": result.stderr, "output": result.stdout + result.stderr, "code": code,
            "signal": signal, "message": message, "status": status, "memory": result.peak_memory,
            "cpu_time": round(result.cpu_time * 1000) if result.cpu_time is not None else None,
            "wall_time": round(result.duration * 1000)}


def _signal_name(number):
    try:
        return signals.Signals(number).name
    except ValueError:
        return None
