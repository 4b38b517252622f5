"""What a server of safecode's is told on its command line — the web example and `python -m safecode mcp` — with the
same names, defaults and checks for both, and the Sandbox those options describe."""

import argparse
import ipaddress
import os

from ..engine.endpoint import ENGINES
from ..engine.image import SCIENTIFIC_MEMORY, default_image, default_memory
from ..errors import SafecodeError
from ..limits import Limits
from .sandbox import Sandbox

MAX_TIMEOUT = 10.0  # seconds: a request may ask for less, never more
MAX_SESSIONS = 4  # sessions kept at once (each holds a container)
MAX_WAITING = 64  # requests that may queue for a run slot (a trainer's burst of concurrent calls)
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")


def add_server_options(parser, *, port):
    """The options every server takes; `port` is its default port."""
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default %(default)s)")
    parser.add_argument("--port", type=_port, default=port, help="port (default %(default)s; 0 picks a free one)")
    parser.add_argument("--token", default=os.environ.get("SAFECODE_TOKEN"),
                        help="require 'Authorization: Bearer TOKEN' (default: $SAFECODE_TOKEN)")
    parser.add_argument("--max-runs", type=int, default=os.cpu_count() or 2,
                        help="programs run at once (default: the number of cores, %(default)s)")
    parser.add_argument("--max-waiting", type=int, default=MAX_WAITING, metavar="N",
                        help="requests that may wait for a run slot beyond --max-runs, each at most 15 s; more are "
                             "refused at once (default %(default)s)")
    parser.add_argument("--timeout", type=float, default=MAX_TIMEOUT,
                        help="the longest a program may run, in seconds (default %(default)s)")
    parser.add_argument("--warm", type=int, default=None,
                        help="containers kept started, ready for a program (default: --max-runs; 0: cold runs)")
    parser.add_argument("--reuse", type=int, default=1, metavar="K",
                        help="programs each warm container runs, one after another, each in a fresh process "
                             "(default 1; raise it only when every client is one trust domain: your own batch or "
                             "model, never strangers sharing the server)")
    parser.add_argument("--max-sessions", type=int, default=MAX_SESSIONS,
                        help="sessions kept at once, each with its own container (default %(default)s)")
    parser.add_argument("--image", default=None, help=f"the sandbox image (default {default_image()})")
    parser.add_argument("--memory", default=None,
                        help=f"RAM of each run (default {Limits.memory}; {SCIENTIFIC_MEMORY} for a scientific image)")
    parser.add_argument("--scratch", default=None, metavar="SIZE",
                        help="writable space of each run at /tmp and /app/out, whose files come back, e.g. 16m "
                             "(default: nothing writable)")
    parser.add_argument("--preload", nargs="+", metavar="MODULE",
                        help="modules each warm container imports before it takes a program (default: a "
                             "scientific image's stack)")
    parser.add_argument("--runtime", help="the engine's OCI runtime for every run, e.g. runsc for gVisor "
                                          "(default: the engine's own)")
    parser.add_argument("--seccomp", metavar="PROFILE", help="system calls allowed in each run: 'engine' for the "
                                                             "engine's default, or a profile's path (default: "
                                                             "safecode's own, narrower)")
    parser.add_argument("--engine", choices=ENGINES, default="docker", help="the container CLI (default docker)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--engine-host", metavar="URL",
                       help="a Docker engine elsewhere for the runs, e.g. ssh://user@box (default: DOCKER_HOST)")
    where.add_argument("--context", help="a Docker context for the runs (default: DOCKER_CONTEXT, the current one)")


def server_sandbox(parser, args, **fixed):
    """The Sandbox the options describe (`fixed`: limits the server sets itself); bad options end in parser.error,
    and so does binding beyond loopback without a token."""
    if not is_loopback(args.host) and not args.token:
        parser.error(f"binding to {args.host} exposes the sandbox to the network; set SAFECODE_TOKEN or --token")
    if args.max_runs < 1:
        parser.error("--max-runs must be at least 1")
    if args.max_sessions < 0:
        parser.error("--max-sessions must be 0 or more")
    if args.max_waiting < 0:
        parser.error("--max-waiting must be 0 or more")
    try:
        image = args.image or default_image()
        return Sandbox(timeout=args.timeout, image=image, memory=args.memory or default_memory(image),
                       scratch=args.scratch, runtime=args.runtime, engine=args.engine, host=args.engine_host,
                       context=args.context, seccomp=args.seccomp, preload=args.preload,
                       warm=args.max_runs if args.warm is None else args.warm, reuse=args.reuse, **fixed)
    except (ValueError, SafecodeError) as error:
        parser.error(str(error))


def is_loopback(host):
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _port(text):
    port = int(text)
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port (0 to 65535)")
    return port
