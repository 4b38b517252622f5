"""The safecode web example: one page and a JSON API (POST /run, POST /run/stream, POST /check), and the APIs of
Piston and SandboxFusion (safecode/faces/apis/), on the standard library's wsgiref.

This file is the server and its command line; app.py is the WSGI application, messages.py what its requests carry
and its answers say, runs.py the runs in flight, sessions.py the sessions it keeps.

    python examples/web/server.py [--host 127.0.0.1] [--port 8000] [--token T] [--max-runs N]

wsgiref "has not been reviewed for security issues", so this adds what it lacks: loopback by default and a
token anywhere else, a Host check against DNS rebinding, request bodies read only up to a cap, JSON-only POSTs
(no cross-site form posts), a bounded number of runs at once, socket timeouts, and strict response headers.
"""

import argparse
import importlib.util
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

from app import MAX_CODE, MAX_FILES, App  # noqa: E402
from messages import MAX_BODY  # noqa: E402,F401  (for the tests)
from safecode.faces.options import LOOPBACK_NAMES, add_server_options, is_loopback, server_sandbox  # noqa: E402

class ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    """wsgiref's server, one thread per request, so one long program does not block every other user; a burst of
    connections waits in the listen backlog (wsgiref's is 5) rather than being refused by the kernel."""

    daemon_threads = True
    block_on_close = False
    request_queue_size = 256


class Handler(WSGIRequestHandler):
    timeout = 30  # seconds a client may take to send its request: a slow client cannot hold a thread forever

    def log_message(self, format, *args):
        sys.stderr.write(f"{self.address_string()} {format % args}\n")


class ThreadingServer6(ThreadingServer):
    address_family = socket.AF_INET6


def serve(app, host, port):
    """A threaded server for `app`; .server_port is the real port, even when port 0 was asked."""
    server_class = ThreadingServer6 if ":" in host else ThreadingServer
    return make_server(host.strip("[]"), port, app, server_class=server_class, handler_class=Handler)


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv=None):
    parser = argparse.ArgumentParser(description="The safecode web example.")
    add_server_options(parser, port=8000)
    args = parser.parse_args(argv)
    sandbox = server_sandbox(parser, args, max_code=MAX_CODE, max_files=MAX_FILES)
    if not is_loopback(args.host):
        print(f"warning: listening on {args.host}: anyone who can reach it and has the token can run code",
              file=sys.stderr)
    allowed = None if args.token else set(LOOPBACK_NAMES) | {args.host.lower()}
    app = App(sandbox, max_runs=args.max_runs, max_waiting=args.max_waiting, token=args.token, allowed_hosts=allowed,
              max_sessions=args.max_sessions)
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
