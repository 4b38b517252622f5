"""The command line: python -m safecode run|doctor|image|check|evaluate|mcp|cleanup (through safecode/__main__.py)."""

import argparse
import base64
import dataclasses
import json
import os
import sys

from .. import __version__, engine
from . import check_command, evaluate
from .doctor import doctor
from ..errors import SafecodeError
from ..files import write_tree
from ..engine.image import IMAGES, SCIENTIFIC_MEMORY, default_image, default_memory, ensure_image
from ..limits import Limits
from ..reader.protocol import Output
from ..result import Display, stop_reason
from ..engine.endpoint import ENGINES, Endpoint
from ..engine.packages import build_image, list_images
from ..engine.leftovers import kill_stray_gvisor_processes, remove_stale_code_dirs
from .mcp import run as serve_mcp
from .options import add_server_options
from .sandbox import Sandbox

# Exit status of `run` when the sandbox stopped the program (otherwise it is the program's own).
STOPPED_EXIT = {"timeout": 124, "oom": 137, "output_limit": 141, "sandbox_error": 125}
ERROR_EXIT = 2  # safecode itself could not run the program, or the command line was wrong


def main(argv=None):
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return args.command(args)
    except (SafecodeError, ValueError, OSError) as error:
        print(f"safecode: {error}", file=sys.stderr)
        return ERROR_EXIT
    except KeyboardInterrupt:
        return 130


def _parser():
    parser = argparse.ArgumentParser(prog="python -m safecode", description="Run untrusted Python in Docker.")
    parser.add_argument("--version", action="version", version=f"safecode {__version__}")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="run a script, or code given with -c, in a sandbox")
    source = run.add_mutually_exclusive_group(required=True)
    source.add_argument("script", nargs="?", help="the Python file to run ('-' reads it from stdin)")
    source.add_argument("-c", dest="code", metavar="CODE", help="the code to run")
    run.add_argument("--input", metavar="FILE",
                     help="the program's standard input, read whole (default: ours, forwarded as it comes)")
    run.add_argument("--json", action="store_true", help="print the whole result as JSON, at the end")
    run.add_argument("--timeout", type=float, default=Limits.timeout, help="seconds (default %(default)s)")
    run.add_argument("--memory", default=None,
                     help=f"RAM, e.g. 256m (default {Limits.memory}; {SCIENTIFIC_MEMORY} for a scientific image)")
    run.add_argument("--cpus", type=float, default=Limits.cpus, help="CPU share (default %(default)s)")
    run.add_argument("--pids", type=int, default=Limits.pids, help="processes (default %(default)s)")
    run.add_argument("--max-output", type=int, default=Limits.max_output, help="bytes (default %(default)s)")
    run.add_argument("--image", default=None, help=f"sandbox image (default {default_image()})")
    run.add_argument("--file", action="append", default=[], metavar="[NAME=]PATH", dest="files",
                     help="a file for the program, beside main.py under NAME (default: PATH's own name); repeatable")
    run.add_argument("--scratch", default=None, metavar="SIZE",
                     help="writable space at /tmp and /app/out, e.g. 32m (default: nothing writable)")
    run.add_argument("--preload", nargs="+", metavar="MODULE",
                     help="import these in the sandbox before the program starts (a warm container)")
    run.add_argument("--out", metavar="DIR", help="write into DIR the files the program left in /app/out (with "
                                                 "--scratch) and each rich display as display-N.<ext>")
    _where(run)
    run.set_defaults(command=_run)

    check = commands.add_parser("doctor", help="check that Docker answers and the sandbox holds")
    check.add_argument("--image", default=None)
    _where(check)
    check.set_defaults(command=lambda args: 0 if doctor(Sandbox(image=args.image, **_endpoint(args))) else 1)

    image = commands.add_parser("image", help="make a sandbox image exist (never pulls at run time)")
    which = image.add_mutually_exclusive_group()
    which.add_argument("--image", default=None,
                       help=f"name (default {default_image()}); safecode's own: {', '.join(IMAGES)}")
    which.add_argument("--all", action="store_true", help="every one of safecode's own images")
    which.add_argument("--packages", nargs="+", metavar="REQUIREMENT", help="an image of --from with these PyPI "
                                                                            "packages, e.g. 'sympy==1.13' seaborn")
    which.add_argument("--list", action="store_true", help="every safecode image here, with its packages")
    image.add_argument("--requirements", metavar="FILE", help="more packages, from a requirements file")
    image.add_argument("--from", dest="base", metavar="BASE", help="the image to add packages to (default: the "
                                                                    "default image)")
    image.add_argument("--name", help="the new image's name (default: one derived from the base and the request)")
    image.add_argument("--find-links", metavar="DIR", help="a folder of wheels for pip to look in")
    image.add_argument("--no-index", action="store_true", help="pip asks no package index: --find-links only")
    image.add_argument("--rebuild", action="store_true", help="build it even if it exists")
    _where(image, runtime=False)
    image.set_defaults(command=_image)

    check_command.add_command(commands)
    evaluate.add_command(commands)

    mcp = commands.add_parser("mcp", help="serve MCP, so that AI assistants can run Python here (stdio; --http)")
    mcp.add_argument("--http", action="store_true", help="Streamable HTTP at /mcp instead of stdio")
    add_server_options(mcp, port=8765)
    mcp.set_defaults(command=lambda args: serve_mcp(mcp, args))

    cleanup = commands.add_parser("cleanup", help="remove every safecode container, and what a crash left here")
    _where(cleanup, runtime=False)
    cleanup.set_defaults(command=_cleanup)
    return parser


def _where(command, runtime=True):
    """The options that say which engine runs the sandboxes."""
    if runtime:
        command.add_argument("--runtime", help="the engine's OCI runtime, e.g. runsc for gVisor (default: its own)")
        command.add_argument("--seccomp", metavar="PROFILE",
                             help="system calls allowed: 'engine' for the engine's default, or a profile's path "
                                  "(default: safecode's own, narrower)")
    command.add_argument("--engine", choices=ENGINES, default="docker", help="the container CLI (default docker)")
    where = command.add_mutually_exclusive_group()
    where.add_argument("--host", help="a Docker engine elsewhere, e.g. ssh://user@box (default: DOCKER_HOST)")
    where.add_argument("--context", help="a Docker context (default: DOCKER_CONTEXT, then the current one)")


def _endpoint(args):
    """The Sandbox keywords of the options _where added."""
    keywords = {"engine": args.engine, "host": args.host, "context": args.context}
    return {**keywords, "runtime": args.runtime, "seccomp": args.seccomp} if hasattr(args, "runtime") else keywords


def _read(path):
    if path == "-":
        return sys.stdin.buffer.read()
    with open(path, "rb") as file:
        return file.read()


def _files(specs):
    """--file [NAME=]PATH arguments as the mapping that execute() takes."""
    files = {}
    for spec in specs:
        name, _, path = spec.partition("=") if "=" in spec else ("", "", spec)
        files[name or os.path.basename(path)] = _read(path)
    return files


def _own_stdin():
    """Our standard input, to forward to the program as it comes (a terminal line by line); b"" if we have none."""
    try:
        sys.stdin.buffer.fileno()
    except (AttributeError, OSError, ValueError):  # no stdin at all (closed, or replaced by something without an fd)
        return b""
    return sys.stdin.buffer


def _run(args):
    code = args.code if args.code is not None else _read(args.script).decode("utf-8", "replace")
    if args.input:
        stdin = _read(args.input)
    else:
        stdin = b"" if args.script == "-" else _own_stdin()  # a script read from stdin leaves none for the program
    image = args.image or default_image()
    sandbox = Sandbox(
        timeout=args.timeout, memory=args.memory or default_memory(image),
        cpus=args.cpus, pids=args.pids, max_output=args.max_output, image=image, scratch=args.scratch,
        warm=1 if args.preload else 0, preload=args.preload, **_endpoint(args),
    )
    with sandbox.stream(code, stdin=stdin, files=_files(args.files)) as run:
        if args.json:
            result = run.result()
            files = {name: base64.b64encode(data).decode() for name, data in result.files.items()}
            displays = [display.as_json() for display in result.displays]
            print(json.dumps({**dataclasses.asdict(result), "files": files, "displays": displays, "ok": result.ok},
                             indent=2))
        else:
            for result in run:  # as it comes, as `python script.py` would show it; a display as its text
                if isinstance(result, (Output, Display)):
                    _show(result)
            if reason := stop_reason(result, sandbox.limits):
                print(f"safecode: {reason}", file=sys.stderr)
    for note in result.files_left_out:
        print(f"safecode: not returned from out/: {note}", file=sys.stderr)
    for note in result.displays_left_out:
        print(f"safecode: display not shown: {note}", file=sys.stderr)
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        write_tree(args.out, {**result.files, **display_files(result.displays)}, replace=True)
    if result.status in STOPPED_EXIT:
        return STOPPED_EXIT[result.status]
    return 1 if result.exit_code is None else result.exit_code  # None: a program that forged its end mark


def _show(item):
    if isinstance(item, Output):
        out, text = (sys.stdout if item.stream == "stdout" else sys.stderr), item.text
    elif item.text is not None:
        out, text = sys.stdout, item.text if item.text.endswith("\n") else item.text + "\n"
    else:
        return
    out.buffer.write(text.encode("utf-8"))
    out.buffer.flush()


# The file each rich form of a display is written to with --out, as display-N.<extension>.
EXTENSIONS = {"text/html": "html", "text/markdown": "md", "text/latex": "tex", "image/svg+xml": "svg",
              "application/json": "json", "image/png": "png", "image/jpeg": "jpg", "application/pdf": "pdf"}


def display_files(displays):
    """Each rich form of each display as display-N.<extension>, N its place among all the displays (from 1)."""
    return {f"display-{number}.{EXTENSIONS[mime]}": value if isinstance(value, bytes) else value.encode("utf-8")
            for number, display in enumerate(displays, 1) for mime, value in display.data.items() if mime in EXTENSIONS}


def _image(args):
    where = Endpoint(**_endpoint(args))
    if args.list:
        for name, packages in list_images(where).items():
            print(f"{name}: {', '.join(packages) or 'the standard library'}")
        return 0
    if args.packages or args.requirements:
        print(build_image(args.packages or (), requirements=args.requirements, base=args.base, name=args.name,
                          rebuild=args.rebuild, find_links=args.find_links, index=not args.no_index,
                          log=lambda line: print(line, file=sys.stderr), **_endpoint(args)))
        return 0
    for name in IMAGES if args.all else [args.image or default_image()]:
        how = ensure_image(name, rebuild=args.rebuild, log=lambda line: print(line, file=sys.stderr), endpoint=where)
        print(f"{name}: {how}")
    return 0


def _cleanup(args):
    where = Endpoint(**_endpoint(args))
    names = engine.ours(where)
    if names:
        engine.remove(*names, attempts=1, endpoint=where)
    print(f"removed {len(names)} container(s) from {where.describe()}")
    if where.local:  # what a crash leaves on this machine
        folders = remove_stale_code_dirs()
        gvisor = kill_stray_gvisor_processes() if where.engine == "docker" else 0
        print(f"removed {folders} stale code folder(s); killed {gvisor} stray gVisor process(es)")
    return 0

