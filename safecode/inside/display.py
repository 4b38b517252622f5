"""display() inside the sandbox, imported there as the module `safecode_display` (shipped as text, with MARK set by
the supervisor's loader). The builtin `display`, the session kernel's last expression and the plot backend use it.

An object's forms are found as IPython finds them: `_repr_mimebundle_` first, then one method per MIME type, and
always text/plain from repr; a matplotlib figure gives its PNG. A method that raises or returns the wrong type is
left out, never a crash. Each display goes to the host on stdout in frames of at most PIPE_BUF bytes, each written
whole (a pipe never splits so small a write), so output written meanwhile cannot cut into one:

    <mark>D<id: 8 hex><last: 1 or 0><length: 4 hex><up to 4049 bytes of the display's JSON>

The frames of one display, joined, are a JSON object: MIME type -> content, binary forms in base64.
"""

import os
import sys

MARK = b""  # the supervisor's mark, set before this module runs
PIPE_BUF = 4096
HEADER = 1 + 8 + 1 + 4
METHODS = (  # (MIME type, method, what it must return), in IPython's order
    ("text/html", "_repr_html_", str),
    ("text/markdown", "_repr_markdown_", str),
    ("image/svg+xml", "_repr_svg_", str),
    ("image/png", "_repr_png_", bytes),
    ("image/jpeg", "_repr_jpeg_", bytes),
    ("text/latex", "_repr_latex_", str),
    ("application/json", "_repr_json_", (dict, list)),
    ("application/pdf", "_repr_pdf_", bytes),
)
KINDS = dict((mime, kind) for mime, _, kind in METHODS)
KINDS["text/plain"] = str
_lock = None
_count = [0]


def display(*objects, raw=False, **ignored):
    """Show each object as a notebook would: all its forms, in order with the program's output. With raw=True each
    object is a dict of MIME type -> content already, as IPython's display(..., raw=True) takes it."""
    for obj in objects:
        send(checked(obj) if raw and isinstance(obj, dict) else formats(obj))


def show_result(value):
    """A session cell's last expression: a display when it has a form richer than text, else its repr on stdout as
    the interactive interpreter prints it (and `_` as it sets it)."""
    if value is None:
        return
    data = formats(value)
    if len(data) == 1:
        sys.displayhook(value)
        return
    import builtins

    builtins._ = value
    send(data)


def formats(obj):
    """The forms of `obj`: MIME type -> str or bytes, text/plain always."""
    data = {}
    bundle = method(obj, "_repr_mimebundle_")
    if isinstance(bundle, dict):
        data.update(checked(bundle))
    for mime, name, _ in METHODS:
        if mime not in data:
            value = checked({mime: method(obj, name)})
            data.update(value)
    if "image/png" not in data and is_figure(obj):
        import io

        try:
            png = io.BytesIO()
            obj.savefig(png, format="png")
            data["image/png"] = png.getvalue()
        except Exception:
            pass
    if "text/plain" not in data:
        try:
            data["text/plain"] = repr(obj)
        except Exception as error:
            data["text/plain"] = f"<{type(obj).__name__} object: repr() failed with {type(error).__name__}>"
    return data


def method(obj, name):
    """What obj's `name` form method returns, or None if it has none or it fails. Looked up on the type, as IPython
    does, so that an object answering every attribute (a proxy, a mock) does not pass for having them all."""
    if isinstance(obj, type) or not callable(getattr(type(obj), name, None)):
        return None
    try:
        value = getattr(obj, name)()
    except Exception:
        return None
    if isinstance(value, tuple) and len(value) == 2:  # (data, metadata)
        value = value[0]
    return value


def checked(bundle):
    """The entries of `bundle` whose type and content fit their MIME type; the others left out."""
    data = {}
    for mime, value in bundle.items():
        kind = KINDS.get(mime)
        if kind is None or value is None:
            continue
        if kind is bytes and isinstance(value, str):  # IPython takes base64 text for a binary form too
            import base64

            try:
                value = base64.b64decode(value, validate=True)
            except ValueError:
                continue
        if mime == "application/json" and isinstance(value, (dict, list)):
            import json

            try:
                value = json.dumps(value)
            except (TypeError, ValueError):
                continue
        if isinstance(value, kind if mime != "application/json" else str):
            data[mime] = value
    return data


def is_figure(obj):
    figure = sys.modules.get("matplotlib.figure")
    return figure is not None and isinstance(obj, figure.Figure)


def send(data):
    """Write one display as frames on stdout, after whatever the program has written so far."""
    import base64
    import json
    import _thread

    global _lock
    if _lock is None:
        _lock = _thread.allocate_lock()
    text = {mime: base64.b64encode(value).decode() if isinstance(value, bytes) else value for mime, value in data.items()}
    payload = json.dumps(text, ensure_ascii=False).encode("utf-8", "replace")
    size = PIPE_BUF - len(MARK) - HEADER
    with _lock:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        _count[0] += 1
        name = b"%08x" % ((os.getpid() << 16 ^ _count[0]) & 0xFFFFFFFF)
        for at in range(0, max(len(payload), 1), size):
            part = payload[at : at + size]
            last = b"1" if at + size >= len(payload) else b"0"
            os.write(1, MARK + b"D" + name + last + b"%04x" % len(part) + part)
