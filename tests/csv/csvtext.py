"""The escape rule of attn's CSV text columns, written from its documentation
(README.md, "Text in the CSV files"), apart from the C code, for the tests.

- LF, TAB, CR and the backslash are written as \\n, \\t, \\r and \\\\;
- every other byte below 0x20, DEL (0x7f) and every byte that is not part of
  well-formed UTF-8 is written as \\xNN (lowercase hex);
- everything else (printable ASCII, well-formed UTF-8) stays as it is.

Python's strict UTF-8 decoder follows RFC 3629 (no overlong forms, no
surrogates, nothing past U+10FFFF); with errors="surrogateescape" each byte
it cannot decode becomes one code point U+DC80..U+DCFF, which is how the
bytes that are not UTF-8 are found here.
"""
import re

NAMED = {"\n": "\\n", "\t": "\\t", "\r": "\\r", "\\": "\\\\"}


def escape(raw):
    """The escaped text (str) of raw (bytes)."""
    out = []
    for ch in raw.decode("utf-8", "surrogateescape"):
        cp = ord(ch)
        if ch in NAMED:
            out.append(NAMED[ch])
        elif cp < 0x20 or cp == 0x7f:
            out.append("\\x%02x" % cp)
        elif 0xdc80 <= cp <= 0xdcff:  # a byte that is not UTF-8
            out.append("\\x%02x" % (cp - 0xdc00))
        else:
            out.append(ch)
    return "".join(out)


_ESCAPE = re.compile(rb"\\(?:(n)|(t)|(r)|(\\)|x([0-9a-fA-F]{2}))")


def unescape(text):
    """The bytes an escaped field (str) stands for; ValueError on a '\\' that
    starts none of the escapes."""
    data = text.encode("utf-8", "surrogateescape")
    out = bytearray()
    pos = 0
    while True:
        i = data.find(b"\\", pos)
        if i < 0:
            out += data[pos:]
            return bytes(out)
        out += data[pos:i]
        m = _ESCAPE.match(data, i)
        if not m:
            raise ValueError("%r: a '\\' at byte %d starts no escape" % (text, i))
        n, t, r, b, x = m.groups()
        out += b"\n" if n else b"\t" if t else b"\r" if r else b"\\" if b else bytes([int(x, 16)])
        pos = m.end()


def unescape_str(text):
    """unescape, as a str (bytes that are not UTF-8 as surrogateescape)."""
    return unescape(text).decode("utf-8", "surrogateescape")


if __name__ == "__main__":  # a few hand-made cases
    assert escape(b"\n<s>\n") == "\\n<s>\\n"
    assert escape(b"a\tb\\c\x1b\x7f") == "a\\tb\\\\c\\x1b\\x7f"
    assert escape(b"caf\xc3\xa9\xff\xe2\x82") == "caf\u00e9\\xff\\xe2\\x82"
    assert escape(b"\xed\xa0\x80") == "\\xed\\xa0\\x80"
    assert unescape("\\n<s>\\n") == b"\n<s>\n"
    assert unescape("\\xFF\\\\x41") == b"\xff\\x41"
    for raw in (b"", b"\\", b"\x00\x01\x02", b"\xc3\xc3\xa9", b"\xf4\x90\x80\x80 \xf4\x8f\xbf\xbf"):
        assert unescape(escape(raw)) == raw, raw
    print("ok")
