"""A run's Result as an MCP tool result: one text block (stdout, then stderr marked as such, then how the program
ended when it did not end well), an image block for each picture it showed or left in out/, other displays and
returned files as embedded resources, all within caps that leave a note when they cut; and structuredContent with
the web API's names, as OUTPUT_SCHEMA declares them."""

import base64

from ...result import stop_reason

MAX_TEXT = 100_000  # characters of stdout, and of stderr, in the text block
MAX_IMAGES = 4 << 20  # bytes of pictures in one result
MAX_RESOURCES = 1 << 20  # bytes of other displays and files in one result
PICTURES = {"png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg", "gif": "image/gif", "webp": "image/webp"}

OUTPUT_SCHEMA = {
    "type": "object",
    "properties": {
        "status": {"type": "string", "enum": ["ok", "error", "timeout", "oom", "output_limit", "sandbox_error"]},
        "exit_code": {"type": ["integer", "null"]},
        "stdout": {"type": "string"},
        "stderr": {"type": "string"},
        "duration_ms": {"type": "number"},
        "cpu_time": {"type": ["number", "null"]},
        "peak_memory": {"type": ["integer", "null"]},
        "timed_out": {"type": "boolean"},
        "oom_killed": {"type": "boolean"},
        "truncated": {"type": "boolean"},
        "files": {"type": "array", "items": {"type": "object", "properties": {"name": {"type": "string"},
                                                                           "size": {"type": "integer"}},
                                             "required": ["name", "size"]}},
        "session": {"type": ["string", "null"]},
        "session_ended": {"type": "boolean"},
    },
    "required": ["status", "exit_code", "stdout", "stderr", "duration_ms", "cpu_time", "peak_memory", "timed_out",
                 "oom_killed", "truncated", "files", "session", "session_ended"],
}



def answer(result, limits, session):
    """A Result as an MCP tool result: content blocks within their caps, and structuredContent."""
    parts, notes = [], []
    if result.stdout:
        parts.append(_capped(result.stdout, "stdout", notes))
    if result.stderr:
        parts.append("stderr:\n" + _capped(result.stderr, "stderr", notes))
    ending = stop_reason(result, limits)
    if not ending and result.status != "ok":
        ending = f"The program exited with status {result.exit_code}."
    if result.session_ended and session:
        ending = (ending + " " if ending else "") + f"Session {session!r} has ended: the next call starts a new one."
    content = [{"type": "text", "text": "".join(part if part.endswith("\n") else part + "\n" for part in parts)
                + ending or "(no output)"}]
    images, resources = MAX_IMAGES, MAX_RESOURCES
    for number, display in enumerate(result.displays, 1):
        picture = display.png or display.jpeg
        if picture is not None:
            if len(picture) > images:
                notes.append(f"display {number}: a picture of {len(picture)} bytes, over what one result carries")
            else:
                images -= len(picture)
                content.append({"type": "image", "data": base64.b64encode(picture).decode(),
                                "mimeType": "image/png" if display.png is not None else "image/jpeg"})
            continue
        mime = next((kind for kind in ("text/html", "text/markdown", "text/latex", "image/svg+xml",
                                       "application/json", "text/plain") if kind in display.data), None)
        text = display.data.get(mime, "")
        if len(text) > resources:
            notes.append(f"display {number}: {len(text)} characters of {mime}, over what one result carries")
            continue
        resources -= len(text)
        content.append({"type": "resource", "resource": {"uri": f"safecode://display/{number}", "mimeType": mime,
                                                         "text": text}})
    for name, data in sorted(result.files.items()):
        kind = PICTURES.get(name.rsplit(".", 1)[-1].lower())
        if kind and len(data) <= images:
            images -= len(data)
            content.append({"type": "image", "data": base64.b64encode(data).decode(), "mimeType": kind})
        elif not kind and len(data) <= resources:
            resources -= len(data)
            content.append({"type": "resource", "resource": _file_resource(name, data)})
        else:
            notes.append(f"out/{name}: {len(data)} bytes, over what one result carries")
    notes += [f"out/: {note}" for note in result.files_left_out] + list(result.displays_left_out)
    if notes:
        content.append({"type": "text", "text": "Left out: " + "; ".join(notes) + "."})
    return {"content": content, "structuredContent": structured(result, session), "isError": not result.ok}


def _capped(text, name, notes):
    if len(text) <= MAX_TEXT:
        return text
    notes.append(f"{name} past its first {MAX_TEXT} characters (all of it is in structuredContent)")
    return text[:MAX_TEXT]


def _file_resource(name, data):
    uri = f"safecode://out/{name}"
    try:
        return {"uri": uri, "mimeType": "text/plain", "text": data.decode("utf-8")}
    except UnicodeDecodeError:
        return {"uri": uri, "mimeType": "application/octet-stream", "blob": base64.b64encode(data).decode()}


def structured(result, session):
    """The web API's fields of a Result."""
    return {
        "status": result.status, "exit_code": result.exit_code, "stdout": result.stdout, "stderr": result.stderr,
        "duration_ms": round(result.duration * 1000, 1), "cpu_time": result.cpu_time,
        "peak_memory": result.peak_memory, "timed_out": result.timed_out, "oom_killed": result.oom_killed,
        "truncated": result.truncated, "files": [{"name": name, "size": len(data)}
                                                 for name, data in sorted(result.files.items())],
        "session": session, "session_ended": result.session_ended,
    }
