"""The one reader between the engine and the faces: the container's bytes turned into events (protocol), and the
loop that owns a handed-over container until its Result (run). Every face consumes these events.
"""
