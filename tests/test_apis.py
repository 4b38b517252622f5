"""The APIs graders and trainers already speak (safecode/faces/apis/), served by the web example as a user starts it,
driven by clients of our own that send and insist on exactly what the real ones do (read from their source):
aiopyston for Piston, the sandbox-fusion client and verl for SandboxFusion."""

import base64
import json
from concurrent.futures import ThreadPoolExecutor

import pytest

from test_web_server import Server

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("no_containers_after_module")]


@pytest.fixture(scope="module")
def server():
    made = Server("--warm", "2", "--reuse", "100")
    yield made
    assert "Traceback" not in made.stop()


def post(server, path, payload, headers=None):
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    status, _, answer = server.request("POST", path, body, {"Content-Type": "application/json", **(headers or {})},
                                       timeout=120)
    return status, json.loads(answer)


# Piston, as aiopyston calls it: "runtimes/" and "execute/" (a trailing slash), its key raw in Authorization,
# compile_timeout and both memory limits (-1) always sent, a 400 read as JSON with a "message".

def piston(code, **changes):
    return {"language": "python", "version": "*", "stdin": "", "args": [], "compile_timeout": 10000,
            "run_timeout": 3000, "compile_memory_limit": -1, "run_memory_limit": -1,
            "files": [{"name": "", "content": code}], **changes}


def test_piston_runtimes_and_execute(server):
    status, _, body = server.request("GET", "/api/v2/runtimes/")
    runtimes = json.loads(body)
    assert status == 200 and runtimes[0]["language"] == "python" and "py3" in runtimes[0]["aliases"]
    version = runtimes[0]["version"]
    status, answer = post(server, "/api/v2/execute/", piston("import sys\nprint(input()[::-1], sys.argv[1:])",
                                                              stdin="olleh", args=["a", "b"]))
    assert status == 200 and answer["language"] == "python" and answer["version"] == version
    run = answer["run"]
    assert run["stdout"] == "hello ['a', 'b']\n" and run["code"] == 0 and run["signal"] is None
    assert run["output"] == run["stdout"] and run["status"] is None


@pytest.mark.parametrize("code, status, signal, code_", [
    ("import sys; sys.exit(3)", "RE", None, 3),
    ("import os, signal; os.kill(os.getpid(), signal.SIGSEGV)", "SG", "SIGSEGV", None),
    ("while True: pass", "TO", "SIGKILL", None),
])
def test_piston_statuses(server, code, status, signal, code_):
    _, answer = post(server, "/api/v2/execute", piston(code, run_timeout=1000, language="py3", version="3"))
    assert (answer["run"]["status"], answer["run"]["signal"], answer["run"]["code"]) == (status, signal, code_)


def test_piston_files_in_every_encoding(server):
    files = [{"name": "main.py", "content": "print(open('a.txt').read(), open('b.bin', 'rb').read())"},
             {"name": "a.txt", "content": "text"},
             {"name": "b.bin", "content": base64.b64encode(b"\x00\x01").decode(), "encoding": "base64"},
             {"name": "c", "content": "ff", "encoding": "hex"}]
    _, answer = post(server, "/api/v2/execute", piston("", files=files))
    assert answer["run"]["stdout"] == "text b'\\x00\\x01'\n", answer


@pytest.mark.parametrize("change, message", [
    ({"language": "rust"}, "rust-* runtime is unknown"),
    ({"version": "2.7"}, "python-2.7 runtime is unknown"),
    ({"language": None}, "language is required as a string"),
    ({"files": "print(1)"}, "files is required as an array"),
    ({"files": [{"name": "x"}]}, "files[0].content is required as a string"),
    ({"run_timeout": 10**9}, "run_timeout cannot exceed the configured limit"),
    ({"run_timeout": "3000"}, "If specified, run_timeout must be a number"),
    ({"files": [{"content": "zz", "encoding": "base64"}]}, "files must include at least one utf8 encoded file"),
])
def test_piston_bad_requests_are_400_with_a_message(server, change, message):
    status, answer = post(server, "/api/v2/execute/", piston("print(1)", **change))
    assert status == 400 and message in answer["message"], answer


def test_piston_refuses_what_is_not_json(server):
    status, _, body = server.request("POST", "/api/v2/execute", b"x=1", {"Content-Type": "text/plain"})
    assert status == 415 and json.loads(body) == {"message": "requests must be of type application/json"}


# SandboxFusion, as its client's RunCodeRequest.dict() sends it ("stdin": None, empty files) and verl does
# (memory_limit_MB); the answer must parse as its RunCodeResponse: a status of its enum, a string message.

def fusion(source, **changes):
    return {"compile_timeout": 10, "run_timeout": 10, "code": source, "stdin": None, "language": "python",
            "files": {}, "fetch_files": [], **changes}


def test_fusion_run_code_and_ping(server):
    status, _, body = server.request("GET", "/v1/ping")
    assert status == 200 and json.loads(body) == "pong"
    status, answer = post(server, "/run_code", fusion("print(input())", stdin="hi", memory_limit_MB=1024))
    assert status == 200 and answer["status"] == "Success" and answer["message"] == ""
    run = answer["run_result"]
    assert run["status"] == "Finished" and run["return_code"] == 0 and run["stdout"] == "hi\n"
    assert isinstance(run["execution_time"], float) and answer["compile_result"] is None


@pytest.mark.parametrize("code, status, run_status, return_code", [
    ("raise SystemExit(2)", "Failed", "Finished", 2),
    ("while True: pass", "Failed", "TimeLimitExceeded", None),
])
def test_fusion_failures(server, code, status, run_status, return_code):
    _, answer = post(server, "/run_code", fusion(code, run_timeout=1))
    assert (answer["status"], answer["run_result"]["status"], answer["run_result"]["return_code"]) == \
        (status, run_status, return_code)


def test_fusion_files_are_in_a_writable_working_folder_and_come_back(server):
    files = {"data/in.txt": base64.b64encode(b"3 4").decode()}
    code = "a, b = map(int, open('data/in.txt').read().split())\nopen('sum.txt', 'w').write(str(a + b))"
    _, answer = post(server, "/run_code", fusion(code, files=files, fetch_files=["sum.txt", "./missing.txt"]))
    assert answer["status"] == "Success", answer
    assert answer["files"] == {"sum.txt": base64.b64encode(b"7").decode()}


@pytest.mark.parametrize("change, where", [
    ({"language": "cpp"}, ["body", "language"]),
    ({"code": None}, ["body", "code"]),
    ({"run_timeout": "soon"}, ["body", "run_timeout"]),
    ({"files": {"../x": "eA=="}}, ["body", "files"]),
    ({"unknown": 1}, ["body", "unknown"]),
])
def test_fusion_bad_requests_are_422_as_fastapi_says_them(server, change, where):
    status, answer = post(server, "/run_code", fusion("print(1)", **change))
    assert status == 422 and answer["detail"][0]["loc"] == where, answer


def test_fusion_as_verl_calls_it_64_at_once(server):
    # verl's reward: one test case of a function-call problem per request, 64 requests at once.
    solution = "def add(a, b):\n    return a + b\n"

    def call(n):
        code = f"{solution}\nassert add({n}, 1) == {n + 1}\nprint('case {n} ok')"
        return post(server, "/run_code", fusion(code, memory_limit_MB=1024, run_timeout=10))

    with ThreadPoolExecutor(64) as pool:
        answers = list(pool.map(call, range(64)))
    assert [(status, answer["status"], answer["run_result"]["stdout"]) for status, answer in answers] == \
        [(200, "Success", f"case {n} ok\n") for n in range(64)]


# Judge0 CE, as its official Python SDK (judge0 on PyPI) uses it: it reads /languages and /config_info (every field
# of its Config model) when it starts, creates with base64_encoded=true&wait=false (one, or a batch), then polls
# fields=* until the status is neither 1 nor 2, and refuses any field it does not know; times end in .fffZ.

SDK_FIELDS = {  # judge0/submission.py: FIELDS, SKIP_FIELDS
    "source_code", "additional_files", "stdin", "expected_output", "stdout", "stderr", "compile_output",
    "compiler_options", "command_line_arguments", "cpu_time_limit", "cpu_extra_time", "wall_time_limit",
    "memory_limit", "stack_limit", "max_processes_and_or_threads", "enable_per_process_and_thread_time_limit",
    "enable_per_process_and_thread_memory_limit", "max_file_size", "redirect_stderr_to_stdout", "enable_network",
    "number_of_runs", "callback_url", "message", "exit_code", "exit_signal", "status", "created_at", "finished_at",
    "token", "time", "wall_time", "memory", "language_id", "language", "status_id"}
SDK_CONFIG = {  # judge0/base_types.py: Config
    "allow_enable_network": bool, "allow_enable_per_process_and_thread_memory_limit": bool,
    "allow_enable_per_process_and_thread_time_limit": bool, "allowed_languages_for_compile_options": list,
    "callbacks_max_tries": int, "callbacks_timeout": float, "cpu_extra_time": float, "cpu_time_limit": float,
    "enable_additional_files": bool, "enable_batched_submissions": bool, "enable_callbacks": bool,
    "enable_command_line_arguments": bool, "enable_compiler_options": bool, "enable_network": bool,
    "enable_per_process_and_thread_memory_limit": bool, "enable_per_process_and_thread_time_limit": bool,
    "enable_submission_delete": bool, "enable_wait_result": bool, "maintenance_mode": bool,
    "max_cpu_extra_time": float, "max_cpu_time_limit": float, "max_extract_size": int, "max_file_size": int,
    "max_max_file_size": int, "max_max_processes_and_or_threads": int, "max_memory_limit": int,
    "max_number_of_runs": int, "max_processes_and_or_threads": int, "max_queue_size": int, "max_stack_limit": int,
    "max_submission_batch_size": int, "max_wall_time_limit": float, "memory_limit": int, "number_of_runs": int,
    "redirect_stderr_to_stdout": bool, "stack_limit": int, "submission_cache_duration": float,
    "use_docs_as_homepage": bool, "wall_time_limit": float}


def b64(text):
    return base64.b64encode(text.encode()).decode()


def judge0_get(server, path):
    status, _, body = server.request("GET", path, headers={"X-Judge0-App": "Judge0 Python SDK"})
    return status, json.loads(body)


def judge0_wait(server, tokens):
    """Poll as the SDK does: GET one (or a batch), fields=*, until every status is past Processing."""
    import re
    import time
    deadline = time.monotonic() + 60
    while True:
        if len(tokens) == 1:
            found = [judge0_get(server, f"/submissions/{tokens[0]}?base64_encoded=true&fields=*")[1]]
        else:
            found = judge0_get(server, f"/submissions/batch?tokens={','.join(tokens)}&base64_encoded=true"
                                       "&fields=*")[1]["submissions"]
        for item in found:
            assert set(item) <= SDK_FIELDS, set(item) - SDK_FIELDS  # the SDK raises on any other
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", item["created_at"])
            for name in ("stdout", "stderr", "compile_output", "message", "source_code"):
                if item[name]:
                    base64.b64decode(item[name], validate=True)
        if all(item["status"]["id"] not in (1, 2) for item in found):
            return found
        assert time.monotonic() < deadline, found
        time.sleep(0.1)


def test_judge0_starts_as_the_sdk_does(server):
    assert judge0_get(server, "/about")[1]["version"] == "1.13.1"
    languages = judge0_get(server, "/languages")[1]
    assert 71 in [language["id"] for language in languages] and languages[0]["name"].startswith("Python (3.")
    config = judge0_get(server, "/config_info")[1]
    for name, kind in SDK_CONFIG.items():  # pydantic takes an int where a float is asked
        assert isinstance(config[name], (int, float) if kind is float else kind), (name, config.get(name))
    assert [status["id"] for status in judge0_get(server, "/statuses")[1]] == list(range(1, 15))


@pytest.mark.parametrize("code, stdin, expected, status", [
    ("print(input()[::-1])", "olleh", "hello\n", 3),
    ("print(input())", "one", "two", 4),
    ("while True: pass", "", None, 5),
    ("print(", "", None, 11),  # a syntax error: NZEC, as Judge0 gives it for Python
    ("import os, signal; os.kill(os.getpid(), signal.SIGSEGV)", "", None, 7),
])
def test_judge0_one_submission_polled_to_its_status(server, code, stdin, expected, status):
    body = {"source_code": b64(code), "language_id": 71, "stdin": b64(stdin), "cpu_time_limit": 2}
    if expected is not None:
        body["expected_output"] = b64(expected)
    created, answer = post(server, "/submissions?base64_encoded=true&wait=false", body)
    assert created == 201 and set(answer) == {"token"}
    done = judge0_wait(server, [answer["token"]])[0]
    assert done["status"]["id"] == status, done
    if status == 3:
        assert base64.b64decode(done["stdout"]).decode() == "hello\n" and float(done["time"]) >= 0


def test_judge0_test_cases_go_as_a_batch(server):
    cases = [("1 2", "3"), ("2 2", "5"), ("5 5", "10")]
    batch = {"submissions": [{"source_code": b64("a, b = map(int, input().split())\nprint(a + b)"), "language_id": 71,
                              "stdin": b64(given), "expected_output": b64(wanted)} for given, wanted in cases]}
    created, answer = post(server, "/submissions/batch?base64_encoded=true", batch)
    assert created == 201 and len(answer) == 3
    done = judge0_wait(server, [item["token"] for item in answer])
    assert [item["status"]["description"] for item in done] == ["Accepted", "Wrong Answer", "Accepted"]


def test_judge0_wait_true_and_plain_text(server):
    created, answer = post(server, "/submissions?wait=true&fields=stdout,status,language_id",
                           {"source_code": "print(6 * 7)", "language_id": 92})
    assert created == 201 and answer == {"stdout": "42\n", "status": {"id": 3, "description": "Accepted"},
                                         "language_id": 92}


@pytest.mark.parametrize("path, body, status, key", [
    ("/submissions", {"source_code": "x", "language_id": 54}, 422, "language_id"),
    ("/submissions", {"source_code": "x", "language_id": 71, "enable_network": True}, 422, "enable_network"),
    ("/submissions", {"language_id": 71}, 422, "source_code"),
    ("/submissions?fields=stdout,nonsense", {"source_code": "x", "language_id": 71}, 400, "error"),
    ("/submissions?base64_encoded=true", {"source_code": "not base64!", "language_id": 71}, 422, "source_code"),
])
def test_judge0_bad_requests_in_its_own_words(server, path, body, status, key):
    got, answer = post(server, path, body)
    assert got == status and key in answer, answer
    assert judge0_get(server, "/submissions/no-such-token")[0] == 404


# Jobe, as its own testsubmit.py calls it: runs/ with a trailing slash, errors compared as exact JSON strings, files
# PUT then checked with HEAD, interpreterargs shell-split, 15 s of CPU asked, and its overload test source.

JOBE = "/jobe/index.php/restapi"


def jobe_run(server, spec):
    status, answer = post(server, f"{JOBE}/runs/", {"run_spec": {"language_id": "python3",
                                                                  "sourcefilename": "test.py", **spec}})
    return answer if status == 200 else f"{status}: {answer}"


@pytest.mark.parametrize("spec, expected", [
    ({"sourcecode": "print('Hello world!')\n"}, {"outcome": 15, "stdout": "Hello world!\n"}),
    ({"sourcecode": "print(input())\nprint(input())\n", "input": "Line1\nLine2\n"},
     {"outcome": 15, "stdout": "Line1\nLine2\n"}),
    ({"sourcecode": "print('Hello world!'\n"}, {"outcome": 11}),
    ({"sourcecode": "data = [1, 2]\nprint(data[2])\n"}, {"outcome": 12}),
    ({"sourcecode": "open('out.txt', 'w').write('fish\\n')\nprint(open('out.txt').read(), end='')\n"},
     {"outcome": 15, "stdout": "fish\n"}),
    ({"sourcecode": "\n", "parameters": {"interpreterargs": [r'-c "print(\"Blah\")"']}},
     {"outcome": 15, "stdout": "Blah\n"}),
    ({"sourcecode": "import sys\nfor arg in sys.argv[1:]:\n    print(arg)\n", "parameters": {"runargs": ["A1", "A2"]}},
     {"outcome": 15, "stdout": "A1\nA2\n"}),
    ({"sourcecode": "print('Un rôle délétère')\n"}, {"outcome": 15, "stdout": "Un rôle délétère\n"}),
    ({"sourcecode": "!** TESTING OVERLOAD EXCEPTION **!"}, {"outcome": 21, "stdout": ""}),
    ({"sourcecode": "print(1)", "language_id": "nosuchlanguage"}, "400: Language 'nosuchlanguage' is not known"),
    ({"sourcecode": "print(1)", "parameters": {"cputime": 151}},
     "400: cputime exceeds maximum allowed on this Jobe server"),
    ({"sourcecode": "print(1)", "file_list": [["nosuchfileid", "file1"]]},
     "404: One or more of the specified files is missing/unavailable"),
])
def test_jobe_as_its_test_script_checks_it(server, spec, expected):
    got = jobe_run(server, spec)
    if isinstance(expected, str):
        assert got == expected
    else:
        assert {key: got[key] for key in expected} == expected, got


def test_jobe_support_files_and_missing_attributes(server):
    for key, content in (("rid01", "The first file\nLine 2"), ("rid02", "Second file")):
        status, _, _ = server.request("PUT", f"{JOBE}/files/{key}",
                                      json.dumps({"file_contents": b64(content)}),
                                      {"Content-type": "application/json", "Accept": "text/plain"})
        assert status == 204
        assert server.request("HEAD", f"{JOBE}/files/{key}", headers={"Accept": "text/plain"})[0] == 204
    got = jobe_run(server, {"sourcecode": "print(open('file1').read())\nprint(open('data/file2').read())\n",
                            "file_list": [["rid01", "file1"], ["rid02", "data/file2"]]})  # a folder too
    assert (got["outcome"], got["stdout"]) == (15, "The first file\nLine 2\nSecond file\n"), got
    assert server.request("HEAD", f"{JOBE}/files/unknown")[0] == 404
    status, answer = post(server, f"{JOBE}/runs/", {"run_spec": {"sourcecode": "print(1)"}})
    assert (status, answer) == (400, "run_spec is missing the required attribute 'language_id'")
    status, answer = post(server, f"{JOBE}/runs/", {"run_spec": {"language_id": "python3"}})
    assert (status, answer) == (400, "run_spec is missing the required attribute 'sourcecode'")
    status, _, body = server.request("GET", f"{JOBE}/languages")
    assert status == 200 and json.loads(body)[0][0] == "python3"
