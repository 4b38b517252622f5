"""protocol.Reader, with no Docker: end marks however the bytes are split, UTF-8 across chunks, the output budget."""

import pytest

from safecode.protocol import Output, Reader

pytestmark = pytest.mark.pure

MARK = b"\0" + b"0123456789abcdef" * 2


def ended(out=b"", err=b"", status=b"007"):
    """The two streams of a program that wrote `out` and `err` and exited with `status`."""
    return out + MARK + b"E" + status, err + MARK + b"E"


def read(chunks, max_output=1_000_000):
    """Feed (stream, chunk) pairs; return the reader and every event it gave."""
    reader = Reader(MARK, max_output)
    events = []
    for stream, chunk in chunks:
        events += reader.feed(stream, chunk)
    return reader, events + reader.finish()


def joined(events, stream):
    return "".join(event.text for event in events if event.stream == stream)


def test_output_then_end_marks():
    out, err = ended(b"hello\n", b"oops\n")
    reader, events = read([("stdout", out), ("stderr", err)])
    assert events == [Output("stdout", "hello\n"), Output("stderr", "oops\n")]
    assert reader.done() and reader.ended and reader.exit_code == 7
    assert reader.texts() == {"stdout": "hello\n", "stderr": "oops\n"}


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 33, 34, 35, 36])
def test_end_mark_split_anywhere(size):
    out, err = ended(b"x\0y" * 20 + "é€😀".encode(), b"e\0" * 10)
    chunks = [("stdout", out[i : i + size]) for i in range(0, len(out), size)]
    chunks += [("stderr", err[i : i + size]) for i in range(0, len(err), size)]
    reader, events = read(chunks)
    assert reader.done() and reader.exit_code == 7
    assert joined(events, "stdout") == "x\0y" * 20 + "é€😀" == reader.text("stdout")
    assert joined(events, "stderr") == "e\0" * 10 == reader.text("stderr")


def test_a_piece_that_looks_like_the_start_of_the_mark_is_passed_on_at_the_end():
    reader, events = read([("stdout", MARK[:10]), ("stdout", b"")])
    assert reader.done("stdout") and not reader.ended and reader.exit_code is None
    assert joined(events, "stdout") == MARK[:10].decode()


def test_a_stream_that_closes_without_its_mark():
    reader, events = read([("stdout", b"partial"), ("stdout", b""), ("stderr", b"")])
    assert reader.done() and not reader.ended
    assert reader.text("stdout") == "partial"


def test_a_forged_status_that_is_not_a_number():
    reader, _ = read([("stdout", b"hi" + MARK + b"Exyz")])
    assert reader.ended and reader.exit_code is None


def test_invalid_utf8_becomes_replacement_characters_as_a_whole_decode_would():
    data = b"ok \xff\xfe and a split \xe2\x82"
    reader, events = read([("stdout", data[:12]), ("stdout", data[12:]), ("stdout", b"")])
    assert reader.text("stdout") == data.decode("utf-8", "replace") == joined(events, "stdout")


def test_one_budget_for_both_streams():
    reader, events = read([("stdout", b"a" * 6), ("stderr", b"b" * 6)], max_output=10)
    assert reader.truncated
    assert reader.texts() == {"stdout": "aaaaaa", "stderr": "bbbb"}
    assert joined(events, "stderr") == "bbbb"


def test_exactly_the_budget_is_not_truncated():
    reader, _ = read([("stdout", b"a" * 10)], max_output=10)
    assert not reader.truncated and reader.text("stdout") == "a" * 10
