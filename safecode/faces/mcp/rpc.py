"""MCP's JSON-RPC 2.0, apart from any transport: one table of methods, errors made in one place, calls cancellable.

A Connection is one client's conversation: a stdio process, or one Streamable HTTP session. A transport hands it one
decoded message at a time with `handle(message, reply)`; the answer to a request, and the progress notifications
of a call before it, go out through `reply`. `handle` returns when the request is answered, so a transport runs each
request on a thread of its own (a long call never holds up `ping`); `notifications/cancelled` from any thread stops
the call it names, which then sends nothing.
"""

import json
import sys
import threading

from ... import __version__
from .tools import CANCELLED, ToolError

PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, INVALID_PARAMS, INTERNAL_ERROR = -32700, -32600, -32601, -32602, -32603
VERSIONS = ("2025-11-25", "2025-06-18", "2025-03-26")  # newest first
INSTRUCTIONS = ("Run Python with the run_python tool: each call runs in a fresh, hardened sandbox with no network; "
                "pass a session name to keep state between calls, and end it with end_session.")


class RPCError(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code, self.message = code, message


def decode(data):
    """One message from its bytes, or RPCError(PARSE_ERROR)."""
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise RPCError(PARSE_ERROR, "Parse error: the message is not valid JSON.") from None


def error(request_id, code, message):
    return {"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message}}


def is_request_id(value):
    return isinstance(value, (str, int)) and not isinstance(value, bool)


class Connection:
    """One client's MCP conversation over the server's tools: its protocol version, calls in flight, sessions."""

    def __init__(self, tools):
        self.tools = tools
        self.version = None  # the negotiated protocol version, once initialized
        self.sessions = {}  # the caller's session name -> Session
        self._calls = {}  # request id -> the Stream of the call in flight
        self._cancelled = set()  # request ids cancelled before their run began
        self._lock = threading.Lock()
        self.closed = False
        self.methods = {"initialize": self.initialize, "ping": lambda params, reply: {},
                        "tools/list": self.list_tools, "tools/call": self.call_tool}

    def handle(self, message, reply):
        """Act on one message; a request's answer (and a call's progress before it) goes out through `reply`."""
        if not isinstance(message, dict) or message.get("jsonrpc") != "2.0":
            return reply(error(None, INVALID_REQUEST, "Invalid request: not a JSON-RPC 2.0 message."))
        method, request_id = message.get("method"), message.get("id")
        if "id" not in message:  # a notification: never answered
            if method == "notifications/cancelled" and isinstance(message.get("params"), dict):
                self.cancel(message["params"].get("requestId"))
            return None
        if method is None and ("result" in message or "error" in message):
            return None  # an answer to a request of ours: we send none
        if not is_request_id(request_id) or not isinstance(method, str):
            return reply(error(request_id if is_request_id(request_id) else None, INVALID_REQUEST,
                               "Invalid request: a request needs a string method and a string or integer id."))
        try:
            result = self._dispatch(method, message.get("params", {}), request_id, reply)
        except RPCError as failure:
            return reply(error(request_id, failure.code, failure.message))
        except Exception as failure:  # never a traceback to the client
            print(f"safecode mcp: internal error in {method}: {failure!r}", file=sys.stderr)
            return reply(error(request_id, INTERNAL_ERROR, "Internal error."))
        if result is not CANCELLED:
            reply({"jsonrpc": "2.0", "id": request_id, "result": result})
        return None

    def _dispatch(self, method, params, request_id, reply):
        handler = self.methods.get(method)
        if handler is None:
            raise RPCError(METHOD_NOT_FOUND, f"Method not found: {method}")
        if not isinstance(params, dict):
            raise RPCError(INVALID_PARAMS, "Invalid params: params must be an object.")
        if self.version is None and method not in ("initialize", "ping"):
            raise RPCError(INVALID_REQUEST, "Invalid request: send initialize first.")
        if method != "tools/call":
            return handler(params, reply)
        return handler(params, request_id, reply)

    def initialize(self, params, reply):
        asked = params.get("protocolVersion")
        self.version = asked if asked in VERSIONS else VERSIONS[0]
        return {"protocolVersion": self.version, "capabilities": {"tools": {"listChanged": False}},
                "serverInfo": {"name": "safecode", "title": "safecode: Python in a hardened sandbox",
                               "version": __version__},
                "instructions": INSTRUCTIONS}

    def list_tools(self, params, reply):
        return {"tools": self.tools.definitions}

    def call_tool(self, params, request_id, reply):
        name, arguments = params.get("name"), params.get("arguments", {})
        if name not in self.tools.names:
            raise RPCError(INVALID_PARAMS, f"Unknown tool: {name!r}; this server has {', '.join(self.tools.names)}.")
        token = (params.get("_meta") or {}).get("progressToken") if isinstance(params.get("_meta"), dict) else None
        sent = [0]

        def progress(text):
            if token is None or not text:
                return
            sent[0] += len(text)
            reply({"jsonrpc": "2.0", "method": "notifications/progress",
                   "params": {"progressToken": token, "progress": sent[0], "message": text}})

        def begin(stream):
            """Register the call's run for cancellation; False if it was cancelled already."""
            with self._lock:
                if request_id in self._cancelled or self.closed:
                    return False
                self._calls[request_id] = stream
                return True

        try:
            return self.tools.call(self, name, arguments, progress, begin)
        except ToolError as failure:
            return failure.result
        finally:
            with self._lock:
                self._calls.pop(request_id, None)
                self._cancelled.discard(request_id)

    def cancel(self, request_id):
        """Stop the call `request_id` if it is in flight (its container is killed); it will send no answer."""
        if not is_request_id(request_id):
            return
        with self._lock:
            stream = self._calls.get(request_id)
            if stream is None:
                self._cancelled.add(request_id)
                return
        stream.cancel()

    def session(self, name, create):
        """The live session of this connection named `name`, started when `create`; None if there is none."""
        with self._lock:
            for key, live in list(self.sessions.items()):
                if live is not None and not live.alive:
                    live.close()
                    del self.sessions[key]
            found = self.sessions.get(name)
            if found is not None or not create:
                return found
            if len(self.sessions) >= self.tools.max_sessions:
                raise ToolError(f"This connection has {len(self.sessions)} sessions open, the most it may: end one "
                                f"with end_session ({', '.join(sorted(self.sessions))}).")
            self.sessions[name] = None  # its place, while its container starts
        try:
            made = self.tools.sandbox.session()
        finally:
            with self._lock:
                del self.sessions[name]
        with self._lock:
            if self.closed:
                made.close()
                raise ToolError("The connection has closed.")
            self.sessions[name] = made
        return made

    def end_session(self, name):
        with self._lock:
            live = self.sessions.pop(name, None)
        if live is not None:
            live.close()
        return live is not None

    def close(self):
        """The client is gone: every call in flight is cancelled and every session ended."""
        with self._lock:
            self.closed = True
            streams, sessions = list(self._calls.values()), [live for live in self.sessions.values() if live]
            self.sessions = {}
        for stream in streams:
            stream.cancel()
        for live in sessions:
            live.close()
