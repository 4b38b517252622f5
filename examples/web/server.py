"""The safecode web example: one page and a JSON API (POST /run, POST /run/stream), on the standard library's wsgiref.

This file is the server and its command line; app.py is the WSGI application, messages.py what its requests carry
and its answers say, runs.py the runs in flight, sessions.py the sessions it keeps.

    python examples/web/server.py [--host 127.0.0.1] [--port 8000] [--token T] [--max-runs N]

wsgiref "has not been reviewed for security issues", so this adds what it lacks: loopback by default and a
token anywhere else, a Host check against DNS rebinding, request bodies read only up to a cap, JSON-only POSTs
(no cross-site form posts), a bounded number of runs at once, socket timeouts, and strict response headers.
"""

import argparse
import importlib.util
import ipaddress
import os
import signal
import socket
import socketserver
import sys
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

HERE = os.path.dirname(os.path.abspath(__file__))
if importlib.util.find_spec("safecode") is None:  # run from a checkout: python examples/web/server.py
    sys.path.insert(0, os.path.join(HERE, "..", ".."))
if HERE not in sys.path:  # loaded by path (as the tests do) rather than run: its sibling modules
    sys.path.insert(0, HERE)

from app import MAX_CODE, MAX_FILES, MAX_SESSIONS, MAX_TIMEOUT, App  # noqa: E402
from messages import MAX_BODY  # noqa: E402,F401  (for the tests)
from safecode import Limits, Sandbox  # noqa: E402
from safecode.engine.image import SCIENTIFIC_MEMORY, default_image, default_memory  # noqa: E402
from safecode.engine.endpoint import ENGINES  # noqa: E402

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")

class ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    """wsgiref's server, one thread per request, so one long program does not block every other user."""

    daemon_threads = True
    block_on_close = False


class Handler(WSGIRequestHandler):
    timeout = 30  # seconds a client may take to send its request: a slow client cannot hold a thread forever

    def log_message(self, format, *args):
        sys.stderr.write(f"{self.address_string()} {format % args}\n")


def is_loopback(host):
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class ThreadingServer6(ThreadingServer):
    address_family = socket.AF_INET6


def serve(app, host, port):
    """A threaded server for `app`; .server_port is the real port, even when port 0 was asked."""
    server_class = ThreadingServer6 if ":" in host else ThreadingServer
    return make_server(host.strip("[]"), port, app, server_class=server_class, handler_class=Handler)


def _port(text):
    port = int(text)
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port (0 to 65535)")
    return port


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv=None):
    parser = argparse.ArgumentParser(description="The safecode web example.")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default %(default)s)")
    parser.add_argument("--port", type=_port, default=8000, help="port (default %(default)s; 0 picks a free one)")
    parser.add_argument("--token", default=os.environ.get("SAFECODE_TOKEN"),
                        help="require 'Authorization: Bearer TOKEN' (default: $SAFECODE_TOKEN)")
    parser.add_argument("--max-runs", type=int, default=os.cpu_count() or 2,
                        help="programs run at once (default: the number of cores, %(default)s)")
    parser.add_argument("--timeout", type=float, default=MAX_TIMEOUT,
                        help="the longest a program may run, in seconds (default %(default)s)")
    parser.add_argument("--warm", type=int, default=None,
                        help="containers kept started, ready for a program (default: --max-runs; 0: cold runs)")
    parser.add_argument("--max-sessions", type=int, default=MAX_SESSIONS,
                        help="sessions kept at once, each with its own container (default %(default)s)")
    parser.add_argument("--image", default=None, help=f"the sandbox image (default {default_image()})")
    parser.add_argument("--memory", default=None,
                        help=f"RAM of each run (default {Limits.memory}; {SCIENTIFIC_MEMORY} for a scientific image)")
    parser.add_argument("--scratch", default=None, metavar="SIZE",
                        help="writable space of each run at /tmp and /app/out, whose files come back, e.g. 16m "
                             "(default: nothing writable, as the seeds' safety examples expect)")
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
    args = parser.parse_args(argv)

    if not is_loopback(args.host):
        if not args.token:
            parser.error(f"binding to {args.host} exposes the sandbox to the network; set SAFECODE_TOKEN or --token")
        print(f"warning: listening on {args.host}: anyone who can reach it and has the token can run code",
              file=sys.stderr)
    if args.max_runs < 1:
        parser.error("--max-runs must be at least 1")
    try:
        image = args.image or default_image()
        sandbox = Sandbox(timeout=args.timeout, max_code=MAX_CODE, max_files=MAX_FILES, image=image,
                          memory=args.memory or default_memory(image),
                          scratch=args.scratch, runtime=args.runtime, engine=args.engine, host=args.engine_host,
                          context=args.context, seccomp=args.seccomp,
                          warm=args.max_runs if args.warm is None else args.warm)
    except ValueError as error:
        parser.error(str(error))
    allowed = None if args.token else set(LOOPBACK_NAMES) | {args.host.lower()}
    app = App(sandbox, max_runs=args.max_runs, token=args.token, allowed_hosts=allowed, max_sessions=args.max_sessions)
    signal.signal(signal.SIGTERM, _interrupt)  # a service manager's stop is a Ctrl-C: close the pool and go
    try:
        server = serve(app, args.host, args.port)
    except OSError as error:
        sandbox.close()
        print(f"safecode web: cannot listen on {args.host} port {args.port}: {error}", file=sys.stderr)
        return 2
    shown = f"[{args.host.strip('[]')}]" if ":" in args.host else args.host
    with sandbox, server:
        print(f"safecode web: serving http://{shown}:{server.server_port}/ "
              f"({sandbox.image} on {sandbox.endpoint.describe()}, {sandbox.warm} warm containers; Ctrl-C stops)",
              flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            app.live.stop_all()  # runs still going end now, and their containers go, before the pool does
            app.sessions.close_all()
    return 0


if __name__ == "__main__":
    sys.exit(main())
