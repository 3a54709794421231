"""The one-line error text every layer prints."""
from __future__ import annotations

from encoder.data.errors import PoseDataError, one_line


def test_one_line_joins_every_whitespace_run_into_one_space():
    assert one_line("bad\nvalue:\t 3\r\n  in  row 2 ") == "bad value: 3 in row 2"
    assert one_line(ValueError("line one\nline two")) == "line one line two"


def test_an_exception_without_a_message_is_named_by_its_type():
    assert one_line(KeyboardInterrupt()) == "KeyboardInterrupt"
    assert one_line(ValueError("  \n ")) == "ValueError"
    assert one_line("") == ""


def test_input_errors_print_source_and_problem_on_one_line():
    err = PoseDataError("walk.json", "frame 3:\n  17 joints expected,\n got 12")
    assert str(err) == "walk.json: frame 3: 17 joints expected, got 12"
    assert err.problem == "frame 3: 17 joints expected, got 12"
