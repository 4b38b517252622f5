"""Displays without Docker: the forms found as IPython finds them (inside/display.py, run here as the sandbox runs it),
their frames on stdout, and the reader that turns them back into Display values whatever a program forges."""

import base64
import json
import os
import types

import pytest

from safecode import Display, Output
from safecode.engine.shipping import MODULES
from safecode.faces.cli import display_files
from safecode.reader.displays import MAX_DISPLAYS, MAX_FRAME
from safecode.reader.protocol import Reader

pytestmark = pytest.mark.pure

MARK = b"\0" + b"0123456789abcdef" * 2
END = b"\0" + b"fedcba9876543210" * 2


@pytest.fixture
def inside():
    """safecode_display as the sandbox loads it: shipped text, run in a module of its own, MARK set after."""
    module = types.ModuleType("safecode_display")
    exec(compile(MODULES["safecode_display"], "<safecode_display>", "exec"), module.__dict__)
    module.MARK = MARK
    return module


def read(*chunks, max_output=1_000_000):
    """Feed stdout chunks to a reader, then the end marks; return the reader and its events."""
    reader = Reader(MARK, END, max_output)
    events = []
    for chunk in chunks:
        events += reader.feed("stdout", chunk)
    events += reader.feed("stdout", END + b"E000") + reader.feed("stderr", END + b"E" + b"0" * 24 + b"1")
    return reader, events + reader.finish()


class Rich:
    def _repr_html_(self):
        return "<b>rich</b>"

    def _repr_markdown_(self):
        return "**rich**"

    def _repr_svg_(self):
        return "<svg/>"

    def _repr_png_(self):
        return b"\x89PNG"

    def _repr_jpeg_(self):
        return b"\xff\xd8", {"width": 2}  # (data, metadata), as IPython allows

    def _repr_latex_(self):
        return "$x$"

    def _repr_json_(self):
        return {"a": [1, 2]}

    def __repr__(self):
        return "Rich()"


class Broken:
    def _repr_html_(self):
        raise RuntimeError("a bad repr never breaks the program")

    def _repr_png_(self):
        return "not bytes, nor base64!"

    def _repr_markdown_(self):
        return 42

    def __repr__(self):
        raise ValueError("nor does a bad __repr__")


class Bundle:
    def _repr_mimebundle_(self, include=None, exclude=None):
        return {"text/html": "<i>bundle</i>", "text/plain": "from the bundle", "application/x-unknown": "dropped"}

    def _repr_html_(self):
        return "<i>not asked: the bundle said it first</i>"


class Anything:
    """A proxy that answers every attribute: it does not pass for having every form."""

    def __getattr__(self, name):
        return lambda *args: "<script>alert(1)</script>"

    def __repr__(self):
        return "Anything()"


def test_every_form_ipython_knows_and_text_always(inside):
    assert inside.formats(Rich()) == {
        "text/html": "<b>rich</b>", "text/markdown": "**rich**", "image/svg+xml": "<svg/>", "image/png": b"\x89PNG",
        "image/jpeg": b"\xff\xd8", "text/latex": "$x$", "application/json": '{"a": [1, 2]}', "text/plain": "Rich()",
    }
    assert inside.formats(3) == {"text/plain": "3"}
    assert inside.formats(Rich) == {"text/plain": repr(Rich)}  # a class is not its instances
    assert inside.formats(Anything()) == {"text/plain": "Anything()"}


def test_a_form_that_raises_or_has_the_wrong_type_is_left_out(inside):
    assert inside.formats(Broken()) == {"text/plain": "<Broken object: repr() failed with ValueError>"}


def test_the_mimebundle_comes_first_and_unknown_types_are_dropped(inside):
    assert inside.formats(Bundle()) == {"text/html": "<i>bundle</i>", "text/plain": "from the bundle"}
    assert inside.checked({"image/png": "aGVsbG8=", "image/jpeg": "not base64!", "text/html": b"bytes"}) == {
        "image/png": b"hello"}


def test_frames_come_back_as_displays_in_order_with_the_output(inside, capfdbinary):
    os.write(1, b"before\n")
    inside.display(Rich(), 3)
    os.write(1, b"after\n")
    inside.display({"text/plain": "raw", "image/png": b"\x00" * 20_000}, raw=True)  # several frames
    written = capfdbinary.readouterr().out
    frames = written.split(MARK)[1:]
    assert len(frames) > 4 and all(len(MARK) + len(frame) <= 4096 for frame in frames)  # each written whole
    reader, events = read(written)
    assert [type(event).__name__ for event in events] == ["Output", "Display", "Display", "Output", "Display"]
    assert events[1].data == inside.formats(Rich()) and events[2] == Display({"text/plain": "3"})
    assert events[4].png == b"\x00" * 20_000 and events[4].text == "raw"
    assert reader.texts()["stdout"] == "before\nafter\n" and reader.displays == [events[1], events[2], events[4]]
    one_byte_at_a_time = read(*(written[at : at + 1] for at in range(len(written))))[1]
    assert [event for event in one_byte_at_a_time if not isinstance(event, Output)] == reader.displays


def test_interleaved_displays_from_threads_or_processes_stay_whole(inside, capfdbinary):
    def frames():
        return [MARK + frame for frame in capfdbinary.readouterr().out.split(MARK)[1:]]

    inside.display({"text/plain": "a" * 9000}, raw=True)
    first = frames()
    inside.display({"text/plain": "b" * 9000}, raw=True)
    second = frames()
    assert len(first) == len(second) == 3
    mixed = b"".join(frame + b"program output " for pair in zip(first, second) for frame in pair)
    reader = read(mixed)[0]
    assert [display.text for display in reader.displays] == ["a" * 9000, "b" * 9000]
    assert reader.texts()["stdout"] == "program output " * 6


@pytest.mark.parametrize("forged", [
    MARK + b"Dzzzzzzzz1" + b"0004" + b"{}xx",          # a name that is not hex
    MARK + b"D000000012" + b"0004" + b"{}xx",          # last is neither 0 nor 1
    MARK + b"D000000011" + b"ffff" + b"x" * 100,       # longer than a frame can be
    MARK + b"X",                                       # a kind of message there is not
])
def test_what_is_not_a_frame_is_the_programs_own_bytes(forged):
    reader, events = read(b"a" + forged + b"b")
    assert reader.displays == [] and reader.texts()["stdout"] == ("a" + forged.decode("utf-8", "replace") + "b")


def test_frames_on_stderr_are_output_and_a_bad_display_is_left_out_with_a_note():
    frame = MARK + b"D000000011" + b"%04x" % 8 + b"not json"
    reader = Reader(MARK, END, 1000)
    events = reader.feed("stderr", b"x" + frame) + reader.feed("stdout", frame + END + b"E000")
    assert all(isinstance(event, Output) for event in events) and reader.displays == []
    assert reader.texts()["stderr"] == "x" + frame.decode("utf-8", "replace") and reader.texts()["stdout"] == ""
    assert reader.displays_left_out == ["a display that is not a JSON object of MIME types: left out"]


def test_a_display_over_the_output_budget_is_left_out_and_the_run_goes_on(inside, capfdbinary):
    inside.display({"text/plain": "x" * 5000}, raw=True)
    inside.display({"text/plain": "small"}, raw=True)
    reader, _ = read(capfdbinary.readouterr().out + b"and the output", max_output=1000)
    assert [display.text for display in reader.displays] == ["small"] and not reader.truncated
    assert reader.displays_left_out == ["a display of more than 1000 bytes: over the output limit, left out"]
    assert reader.texts()["stdout"] == "and the output" and reader.room < 1000 - len("and the output")


def test_a_hundred_thousand_tiny_displays_keep_to_their_bounds(inside, capfdbinary):
    inside.display({"text/plain": "."}, raw=True)
    frame = capfdbinary.readouterr().out
    reader = Reader(MARK, END, 10_000_000)
    for _ in range(100):
        reader.feed("stdout", frame * 1000)
    assert len(reader.displays) == MAX_DISPLAYS
    assert reader.displays_left_out == [f"{100_000 - MAX_DISPLAYS} more displays: over the limit of {MAX_DISPLAYS}, "
                                        "left out"]


def test_too_many_displays_begun_at_once_are_left_out_one_by_one():
    chunks = [MARK + b"D%08x0" % name + b"0002{}" for name in range(20)]
    reader, _ = read(*chunks, *(MARK + b"D%08x1" % name + b"0000" for name in range(20)))
    assert len(reader.displays) == 0  # "{}" is no display: nothing kept, and no more than 16 held at once
    assert reader.displays_left_out.count("more than 16 displays written at once: one left out") == 4


def test_the_value_and_its_faces():
    display = Display({"text/plain": "t", "text/html": "<p>", "image/png": b"\x89PNG" * 100, "application/json": "[]"})
    assert (display.text, display.html, display.png[:4], display.json) == ("t", "<p>", b"\x89PNG", "[]")
    assert display.markdown is display.latex is display.svg is display.jpeg is None
    assert base64.b64decode(display.as_json()["image/png"]) == b"\x89PNG" * 100 and json.dumps(display.as_json())
    assert repr(display) == "Display({'text/plain': 't', 'text/html': '<p>', 'image/png': <400 bytes>, " \
                            "'application/json': '[]'})"
    assert display_files([Display({"text/plain": "only text"}), display]) == {
        "display-2.html": b"<p>", "display-2.png": b"\x89PNG" * 100, "display-2.json": b"[]"}
    assert MAX_FRAME == 4096
