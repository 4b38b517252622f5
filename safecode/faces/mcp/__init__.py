"""safecode as the Python tool of an AI assistant, over the Model Context Protocol: `python -m safecode mcp` speaks
it on stdio, `python -m safecode mcp --http` as Streamable HTTP at /mcp. rpc.py is the protocol, tools.py the tools,
stdio.py and http.py the transports."""

import signal
import sys
import threading

from ..options import server_sandbox
from .http import serve
from .stdio import Stdio
from .tools import Tools


def run(parser, args):
    """The server the command line asks for, until its client goes (stdio) or it is stopped; returns the exit code."""
    sandbox = server_sandbox(parser, args)
    tools = Tools(sandbox, max_runs=args.max_runs, max_sessions=args.max_sessions)
    where = f"{sandbox.image} on {sandbox.endpoint.describe()}, {sandbox.warm} warm containers"
    with sandbox:
        if not args.http:
            print(f"safecode mcp: serving MCP on stdio ({where})", file=sys.stderr, flush=True)
            Stdio(tools).serve()
            return 0
        try:
            server = serve(tools, args.host, args.port, args.token)
        except OSError as error:
            print(f"safecode mcp: cannot listen on {args.host} port {args.port}: {error}", file=sys.stderr)
            return 2
        shown = f"[{args.host.strip('[]')}]" if ":" in args.host else args.host
        print(f"safecode mcp: serving MCP on http://{shown}:{server.server_port}/mcp ({where}; Ctrl-C stops)",
              file=sys.stderr, flush=True)
        signal.signal(signal.SIGTERM, _interrupt)
        thread = threading.Thread(target=server.serve_forever, name="safecode-mcp-http", daemon=True)
        thread.start()
        try:
            while thread.is_alive():
                thread.join(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            server.shutdown()
            server.server_close()
            server.sessions.close_all()  # every run in flight ends, every session goes, before the pool does
    return 0


def _interrupt(signum, frame):
    raise KeyboardInterrupt
