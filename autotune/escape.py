"""Text from users (file, model, tensor and class names, descriptions) made safe for the files we
generate. C and Makefile comments get one line of printable ASCII with their closing sequences
broken; YAML goes through yaml.safe_dump and HTML through html.escape, never by hand.
"""
from __future__ import annotations

import re


def one_line(text: str, limit: int = 200) -> str:
    """Printable ASCII on one line: a newline, control or non-ASCII character becomes '_'."""
    text = "".join(c if " " <= c <= "~" else "_" for c in str(text))
    return text if len(text) <= limit else text[:limit] + "..."


def c_comment(text: str, limit: int = 200) -> str:
    """Safe inside a C block comment compiled with -Wall -Werror: no comment end or nested
    start, and no '??' that could begin a trigraph (??/ at a line end splices lines)."""
    text = one_line(text, limit).replace("*/", "* /").replace("/*", "/ *")
    return re.sub(r"\?\?", "?_", text)


def make_comment(text: str, limit: int = 200) -> str:
    """Safe in a Makefile, CMake or shell comment: one line, and no backslash that would continue it."""
    return one_line(text, limit).replace("\\", "/")
