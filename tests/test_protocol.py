"""protocol.Reader, with no Docker: end marks however the bytes are split, UTF-8 across chunks, the output budget."""

import pytest

from safecode.files import MAX_FILES
from safecode.reader.protocol import Output, Reader

pytestmark = pytest.mark.pure

MARK = b"\0" + b"0123456789abcdef" * 2  # the container's: its programs know it, and frame displays with it
END = b"\0" + b"fedcba9876543210" * 2  # the program's own end token, which it never holds


USAGE = b"%012d%012d1" % (250_000, 45 << 20)  # 0.25 s of CPU, 45 MiB at its peak, the container ends with it


def ended(out=b"", err=b"", status=b"007", usage=USAGE):
    """The two streams of a program that wrote `out` and `err`, exited with `status` and used `usage`."""
    return out + END + b"E" + status, err + END + b"E" + usage


def read(chunks, max_output=1_000_000):
    """Feed (stream, chunk) pairs; return the reader and every event it gave."""
    reader = Reader(MARK, END, max_output)
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
    reader, events = read([("stdout", END[:10]), ("stdout", b"")])
    assert reader.done("stdout") and not reader.ended and reader.exit_code is None
    assert joined(events, "stdout") == END[:10].decode()


def test_a_stream_that_closes_without_its_mark():
    reader, events = read([("stdout", b"partial"), ("stdout", b""), ("stderr", b"")])
    assert reader.done() and not reader.ended
    assert reader.text("stdout") == "partial"


def test_cpu_time_and_peak_memory_come_with_stderrs_end_mark():
    out, err = ended(b"", b"x")
    reader, _ = read([("stdout", out), ("stderr", err[:-5]), ("stderr", err[-5:])])
    assert (reader.cpu_time, reader.peak_memory, reader.leaving) == (0.25, 45 << 20, True)


@pytest.mark.parametrize("usage", [b"x" * 25, b"1" * 24])
def test_usage_that_is_not_whole_is_unknown(usage):
    out, err = ended(usage=usage)
    reader, _ = read([("stdout", out), ("stderr", err), ("stderr", b"")])
    assert reader.cpu_time is None and reader.peak_memory is None


def test_a_status_that_is_not_a_number():
    reader, _ = read([("stdout", b"hi" + END + b"Exyz")])
    assert reader.ended and reader.exit_code is None


@pytest.mark.parametrize("size", [1, 5, 33, 34, 1000])
def test_an_end_forged_with_the_mark_a_program_knows_is_its_own_output(size):
    # With reuse, a program that could end its own turn early would leave its later output to the next program.
    forged = b"a" + MARK + b"E000" + MARK + b"E" + USAGE + b"b"
    out, err = ended(forged, forged)
    chunks = [(stream, data[i : i + size]) for stream, data in (("stdout", out), ("stderr", err))
              for i in range(0, len(data), size)]
    reader, events = read(chunks)
    assert reader.done() and reader.exit_code == 7
    assert reader.text("stdout") == reader.text("stderr") == forged.decode() == joined(events, "stdout")


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


# The files after stdout's end mark ---------------------------------------------------------------------------


def file_record(name, data):
    name = name.encode() if isinstance(name, str) else name
    return b"F" + len(name).to_bytes(4, "big") + name + len(data).to_bytes(8, "big") + data


def note_record(text):
    return b"S" + len(text.encode()).to_bytes(4, "big") + text.encode()


@pytest.mark.parametrize("size", [1, 7, 1000])
def test_files_follow_the_end_mark_however_split(size):
    out, err = ended(b"hi\n", b"")
    section = file_record("a.txt", b"A" * 50) + file_record("sub/b.bin", bytes(range(256))) + note_record("n") + b"Z"
    data = out + section
    reader = Reader(MARK, END, 100, files_room=1 << 20)
    for i in range(0, len(data), size):
        reader.feed("stdout", data[i : i + size])
    reader.feed("stderr", err)
    assert reader.done() and reader.exit_code == 7 and reader.text("stdout") == "hi\n"
    assert reader.files == {"a.txt": b"A" * 50, "sub/b.bin": bytes(range(256))}
    assert reader.files_left_out == ["n"]


def files_of(section, room=1 << 20):
    out, err = ended(b"", b"")
    reader = Reader(MARK, END, 100, files_room=room)
    reader.feed("stdout", out + section)
    reader.feed("stderr", err)
    return reader


def test_not_done_until_the_files_end():
    reader = files_of(file_record("a", b"x"))
    assert reader.ended and not reader.done() and reader.files == {"a": b"x"}
    reader.feed("stdout", b"")  # the container ended without the final Z
    assert reader.done() and reader.files_left_out == ["the rest of out/ was not returned: the container ended first"]


@pytest.mark.parametrize("name", ["/etc/passwd", "../x", "a/../../b", "a\nb", b"\xff\xfe", "", "a//b"])
def test_unsafe_names_are_skipped_and_said(name):
    reader = files_of(file_record(name, b"x") + file_record("fine", b"y") + b"Z")
    assert reader.files == {"fine": b"y"} and len(reader.files_left_out) == 1


def test_a_file_over_the_room_stops_the_reading():
    reader = files_of(file_record("big", b"x" * 101) + b"Z", room=100)
    assert reader.done() and reader.files == {}
    assert reader.files_left_out == ["the rest of out/ was not returned: over the scratch size"]


def test_the_room_is_for_all_files_together():
    reader = files_of(file_record("a", b"x" * 60) + file_record("b", b"x" * 60) + b"Z", room=100)
    assert list(reader.files) == ["a"] and "over the scratch size" in reader.files_left_out[0]


def test_too_many_files_stop_the_reading():
    section = b"".join(file_record(f"f{i}", b"") for i in range(MAX_FILES + 5)) + b"Z"
    reader = files_of(section)
    assert len(reader.files) == MAX_FILES and f"over the limit of {MAX_FILES} files" in reader.files_left_out[0]


def test_garbage_after_the_end_mark_ends_the_files():
    reader = files_of(b"Q" + b"x" * 100)
    assert reader.done() and reader.files == {} and "unreadable" in reader.files_left_out[0]


def test_a_huge_declared_name_is_refused_before_it_is_read():
    reader = files_of(b"F" + (1 << 30).to_bytes(4, "big"))
    assert reader.done() and "too long" in reader.files_left_out[0]


def test_no_files_are_expected_without_scratch():
    out, err = ended(b"hi", b"")
    reader = Reader(MARK, END, 100)
    reader.feed("stdout", out + file_record("a", b"x"))
    reader.feed("stderr", err)
    assert reader.done() and reader.files == {} and reader.files_left_out == []


def test_the_acknowledgement_comes_though_the_program_fills_stderr_first():
    """The engine's client passes stdout and stderr on in one sequence: while its stderr pipe is full it passes on
    nothing of stdout. A program that floods stderr the moment it is released kept the acknowledgement, written
    before it, from coming: its container was discarded and the program run again, cold (the warm-pool flake)."""
    import subprocess
    import sys

    from safecode.engine.container import Container

    client = subprocess.Popen(  # the client, as it behaves: stderr's frames first, then the acknowledgement
        [sys.executable, "-c", "import os\nos.write(2, b'e' * (1 << 20))\nos.write(1, %r + b'A')" % MARK],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    box = object.__new__(Container)  # no engine: only its reading of the acknowledgement
    box.proc, box.mark, box.max_output, box.early = client, MARK, 100_000, b""
    try:
        assert box.read_ack(5)
        assert box.early == b"e" * len(box.early) and 100_000 < len(box.early) <= 100_000 + (64 << 10)
    finally:
        client.kill()
        client.wait()
        client.stdout.close()
        client.stderr.close()
