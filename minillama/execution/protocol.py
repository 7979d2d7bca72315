"""What crosses between the candidate process and the test process: plain data, nothing else.

A value crosses as JSON text built only from None, bools, ints, floats (NaN and infinities
included), strings and arrays; tuples, dicts, sets, frozensets, bytes, bytearrays, complex
numbers, ranges, dict views (``keys()``, ``values()``, ``items()``), deques, fractions and
decimals are one-key objects
(``{"t": [...]}``, ``{"d": [[k, v], ...]}``, ...). Decoding builds plain built-in values and
nothing else, so the receiver never calls code chosen by the sender: an object whose ``__eq__``
always says True cannot cross; its class is lost on the way. NumPy scalars and arrays cross as
the plain values of their ``item()`` / ``tolist()``. Values may nest ``MAX_DEPTH`` levels deep.

A message is a 4-byte big-endian length and the JSON body. Also here: reading and writing whole
byte strings on pipes, used by every process of the sandbox. Standard library only.
"""

from __future__ import annotations

import json
import os

MESSAGE_LIMIT = 2000  # characters of a failure message kept
# levels of nesting a value may have (HumanEval's have 3 at most); deeper ones are refused
# with a clear NotData, well before Python's or the JSON codec's recursion limits
MAX_DEPTH = 500


class NotData(Exception):
    """A value that cannot cross the process boundary (only plain built-in data can)."""


_PLAIN = (bool, int, float, str, list, tuple, dict, set, frozenset, bytes, bytearray, complex)


def encode(x, depth: int = 0):
    """``x`` as JSON-ready data, or :class:`NotData`."""
    t = type(x)
    if x is None or t is bool or t is int or t is float or t is str:
        return x
    if depth >= MAX_DEPTH:
        raise NotData(f"a value nested more than {MAX_DEPTH} levels deep")
    d = depth + 1
    if t is list:
        return [encode(v, d) for v in x]
    if t is tuple:
        return {"t": [encode(v, d) for v in x]}
    if t is dict:
        return {"d": [[encode(k, d), encode(v, d)] for k, v in x.items()]}
    if t is set or t is frozenset:
        return {"s" if t is set else "f": [encode(v, d) for v in x]}
    if t is bytes or t is bytearray:
        return {"b" if t is bytes else "B": x.hex()}
    if t is complex:
        return {"c": [x.real, x.imag]}
    if t is range:
        return {"r": [x.start, x.stop, x.step]}
    if t is _ITEMS:
        return {"i": [[encode(k, d), encode(v, d)] for k, v in x]}
    if t is _KEYS or t is _VALUES:
        return {"k" if t is _KEYS else "v": [encode(v, d) for v in x]}
    # subclasses (OrderedDict, Counter, namedtuple, IntEnum, ...) cross as their plain value
    for base in _PLAIN:
        if isinstance(x, base):
            return encode(base(x), depth)
    if t.__module__ == "numpy" and hasattr(x, "tolist"):  # numpy scalars and arrays
        return encode(x.tolist(), depth)
    qualified = (t.__module__, t.__name__)
    if qualified == ("collections", "deque"):
        return {"q": [encode(v, d) for v in x]}
    if qualified == ("fractions", "Fraction"):
        return {"Q": [x.numerator, x.denominator]}
    if qualified in (("decimal", "Decimal"), ("_decimal", "Decimal")):
        return {"D": str(x)}
    raise NotData(f"an object of type {t.__name__}")


_KEYS, _VALUES, _ITEMS = type({}.keys()), type({}.values()), type({}.items())


def _decode_tagged(obj: dict):
    """json object_hook: the one-key objects back to their built-in values."""
    if len(obj) == 1:
        (tag, v), = obj.items()
        if type(v) is list:
            if tag == "t":
                return tuple(v)
            if tag == "s":
                return set(v)
            if tag == "f":
                return frozenset(v)
            if tag == "d" and all(type(kv) is list and len(kv) == 2 for kv in v):
                return {k: val for k, val in v}
            if tag == "c" and len(v) == 2 and all(type(p) in (int, float) for p in v):
                return complex(v[0], v[1])
            if tag == "r" and len(v) == 3 and all(type(p) is int for p in v) and v[2] != 0:
                return range(*v)
            if tag == "k":
                return dict.fromkeys(v).keys()
            if tag == "v":
                return dict(enumerate(v)).values()
            if tag == "i" and all(type(kv) is list and len(kv) == 2 for kv in v):
                return dict(v).items()
            if tag == "q":
                import collections
                return collections.deque(v)
            if tag == "Q" and len(v) == 2 and all(type(p) is int for p in v) and v[1] > 0:
                import fractions
                return fractions.Fraction(v[0], v[1])
        elif type(v) is str and tag == "D" and len(v) < 10_000:
            import decimal
            return decimal.Decimal(v)
        elif type(v) is str and tag in ("b", "B"):
            return (bytes if tag == "b" else bytearray).fromhex(v)
    raise ValueError("malformed value")


def dumps(msg) -> bytes:
    """One framed message (raises NotData, RecursionError or ValueError for what cannot cross)."""
    body = json.dumps(encode(msg), separators=(",", ":")).encode("ascii")
    return len(body).to_bytes(4, "big") + body


def read_exactly(fd: int, n: int, _read=os.read) -> bytes | None:
    """``n`` bytes from ``fd``; None at end of file."""
    chunks, got = [], 0
    while got < n:
        chunk = _read(fd, min(n - got, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def write_all(fd: int, data: bytes, _write=os.write) -> None:
    view = memoryview(data)
    while view:
        view = view[_write(fd, view):]


def read_all(fd: int, limit: int | None = None) -> bytes:
    """Everything until end of file (ValueError past ``limit`` bytes)."""
    chunks, got = [], 0
    while chunk := os.read(fd, 1 << 16):
        chunks.append(chunk)
        got += len(chunk)
        if limit is not None and got > limit:
            raise ValueError(f"more than {limit} bytes")
    return b"".join(chunks)


def send(fd: int, msg) -> None:
    write_all(fd, dumps(msg))


def recv(fd: int, limit: int):
    """One message; None at end of file. Raises ValueError on anything malformed."""
    head = read_exactly(fd, 4)
    if head is None:
        return None
    n = int.from_bytes(head, "big")
    if n > limit:
        raise ValueError(f"message of {n} bytes, over the limit of {limit}")
    body = read_exactly(fd, n)
    if body is None:
        return None
    try:
        return json.loads(body, object_hook=_decode_tagged)
    except (TypeError, RecursionError) as e:  # an unhashable key, a hand-made deep nest
        raise ValueError(f"malformed value ({type(e).__name__})") from None
