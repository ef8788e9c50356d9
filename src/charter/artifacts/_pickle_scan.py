"""Static scan of pickle and joblib files for the globals they reference.

Registration must never execute code from an uploaded file, and unpickling *is*
executing code (``__reduce__`` can name any callable). So nothing here calls
``pickle.load``: the opcode stream is walked with :func:`pickletools.genops`
and a tiny symbolic stack machine recovers just enough values (strings, tuples,
dicts, class references) to name the classes and to step over the raw numpy
bytes joblib interleaves with its pickle stream.

Damaged or hostile input never raises: the scan stops where the bytes stop
making sense and returns what it found up to there.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import math
import pickletools
import re
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol, cast

__all__ = ["looks_like_pickle", "scan_globals"]

# Payloads above this size (array bytes, model blobs) are skipped, not read:
# class names are short, and reading a multi-GB BINBYTES8 would need that much RAM.
_MAX_ARG = 64 * 1024
_MAX_LINE = 64 * 1024
_CHUNK = 1 << 20
# Object arrays are nested pickles inside the joblib stream; a hostile file could
# nest them deeply to exhaust the Python stack.
_MAX_NESTING = 16
_PICKLE_SUFFIXES = frozenset({".pkl", ".pickle", ".joblib"})
_STREAM_ERRORS = (ValueError, OSError, EOFError, zlib.error, lzma.LZMAError, OverflowError)
_DTYPE_SIZE = re.compile(r"[<>|=]?[A-Za-z](\d+)")
_MARK = object()
_OPAQUE = object()
_VALUE_OPS = frozenset(
    {
        "INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4", "FLOAT",
        "BINFLOAT", "STRING", "BINSTRING", "SHORT_BINSTRING", "UNICODE", "BINUNICODE",
        "SHORT_BINUNICODE", "BINUNICODE8",
    }
)  # fmt: skip
_CONSTANTS = {"NONE": None, "NEWTRUE": True, "NEWFALSE": False}


def looks_like_pickle(relpath: str, path: Path) -> bool:
    """Tell whether a file is a pickle by name (``.pkl``, ``.joblib``…) or by header."""
    if _PICKLE_SUFFIXES.intersection(s.lower() for s in Path(relpath).suffixes):
        return True
    with path.open("rb") as fh:
        head = fh.read(2)
    # PROTO opcode + protocol 2..5: what every modern pickler writes first.
    return len(head) == 2 and head[0] == 0x80 and 2 <= head[1] <= 5


def scan_globals(path: Path) -> list[tuple[str, str]]:
    """Return the ``(module, name)`` globals a pickle file references, never unpickling.

    Handles plain pickles (protocols 0-5, several concatenated), joblib files
    with raw numpy data after each ``NumpyArrayWrapper``, and joblib's
    zlib / gzip / bz2 / lzma / xz compression (decompressed as a stream).

    Args:
        path: the file to scan.

    Returns:
        Globals in order of first appearance, without duplicates.
    """
    found: dict[tuple[str, str], None] = {}
    with path.open("rb") as raw:
        try:
            reader = _Reader(_decompressed(raw))
            while not reader.at_eof() and _scan_one(reader, _Machine(found), 0):
                pass
        except _STREAM_ERRORS:
            pass  # corrupt compression framing: keep what was found before it
    return list(found)


class _Stream(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...
    def readline(self, size: int = -1, /) -> bytes: ...


def _decompressed(raw: IO[bytes]) -> _Stream:
    head = raw.read(6)
    raw.seek(0)
    # Magic numbers as joblib's own compressor detection uses them.
    if head.startswith(b"\x1f\x8b"):
        return gzip.GzipFile(fileobj=raw, mode="rb")
    if head.startswith(b"BZh"):
        return bz2.BZ2File(raw)
    if head.startswith((b"\xfd7zXZ\x00", b"\x5d\x00")):
        return lzma.LZMAFile(raw)  # FORMAT_AUTO reads both .xz and legacy .lzma
    if head.startswith(b"\x78"):  # zlib header; no pickle starts with opcode 'x'
        return io.BufferedReader(_ZlibRaw(raw), _CHUNK)
    return raw


class _ZlibRaw(io.RawIOBase):
    """Raw zlib stream (joblib's ``compress='zlib'``) decompressed in bounded pieces."""

    def __init__(self, source: IO[bytes]) -> None:
        super().__init__()
        self._source = source
        self._inflate = zlib.decompressobj()
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending and not self._inflate.eof:
            data = self._inflate.unconsumed_tail or self._source.read(_CHUNK)
            if not data:
                break
            # max_length bounds memory even for a decompression bomb.
            self._pending = self._inflate.decompress(data, _CHUNK)
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size


class _Oversized(Exception):
    """A payload too large to read; the scanner skips it instead."""

    def __init__(self, size: int) -> None:
        super().__init__(size)
        self.size = size


class _Reader:
    """The byte source handed to genops: tracks position and refuses huge reads."""

    def __init__(self, raw: _Stream) -> None:
        self._raw = raw
        self._pos = 0
        self._peeked = b""

    def read(self, size: int) -> bytes:
        if size < 0 or size > _MAX_ARG:
            raise _Oversized(size)
        return self._take(size)

    def _take(self, size: int) -> bytes:
        data = self._peeked[:size]
        self._peeked = self._peeked[size:]
        if len(data) < size:
            data += self._raw.read(size - len(data))
        self._pos += len(data)
        return data

    def readline(self) -> bytes:
        # Capped: a line without newline in garbage must not swallow the whole file.
        line = self._peeked + self._raw.readline(_MAX_LINE)
        self._peeked = b""
        self._pos += len(line)
        return line

    def tell(self) -> int:
        return self._pos

    def at_eof(self) -> bool:
        if not self._peeked:
            self._peeked = self._raw.read(1)
        return not self._peeked

    def skip(self, size: int) -> bool:
        """Discard ``size`` bytes; False when the stream ends first."""
        while size > 0:
            chunk = self._take(min(size, _CHUNK))
            if not chunk:
                return False
            size -= len(chunk)
        return True


@dataclass(frozen=True)
class _Global:
    module: str
    name: str


@dataclass
class _Obj:
    cls: _Global | None
    args: tuple[Any, ...]
    state: Any = None


class _Machine:
    """Symbolic pickle stack: real values only where the scan needs them."""

    def __init__(self, found: dict[tuple[str, str], None]) -> None:
        self.stack: list[Any] = []
        self.memo: dict[int, Any] = {}
        self.found = found

    def pop(self) -> Any:
        if not self.stack:
            raise ValueError("pickle stack underflow")
        return self.stack.pop()

    def pop_mark(self) -> list[Any]:
        for index in range(len(self.stack) - 1, -1, -1):
            if self.stack[index] is _MARK:
                items = self.stack[index + 1 :]
                del self.stack[index:]
                return items
        raise ValueError("pickle MARK missing")

    def refer(self, module: Any, name: Any) -> Any:
        if not (isinstance(module, str) and isinstance(name, str)):
            return _OPAQUE
        self.found.setdefault((module, name), None)
        return _Global(module, name)

    def step(self, op: pickletools.OpcodeInfo, arg: Any) -> _Obj | None:
        """Apply one opcode; return the wrapper whose raw array bytes follow, if any."""
        name, stack = op.name, self.stack
        if name in _VALUE_OPS:
            stack.append(arg)
        elif name in _CONSTANTS:
            stack.append(_CONSTANTS[name])
        elif name == "MARK":
            stack.append(_MARK)
        elif name in {"PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE"}:
            self.memo[len(self.memo) if arg is None else arg] = stack[-1] if stack else _OPAQUE
        elif name in {"GET", "BINGET", "LONG_BINGET"}:
            stack.append(self.memo.get(arg, _OPAQUE))
        elif name in {"EMPTY_TUPLE", "TUPLE", "TUPLE1", "TUPLE2", "TUPLE3"}:
            size = {"EMPTY_TUPLE": 0, "TUPLE1": 1, "TUPLE2": 2, "TUPLE3": 3}.get(name)
            items = self.pop_mark() if size is None else [self.pop() for _ in range(size)][::-1]
            stack.append(tuple(items))
        elif name == "EMPTY_DICT":
            stack.append({})
        elif name in {"DICT", "SETITEM", "SETITEMS"}:
            items = [self.pop(), self.pop()][::-1] if name == "SETITEM" else self.pop_mark()
            target = {} if name == "DICT" else (stack[-1] if stack else None)
            if isinstance(target, dict):
                for key, value in zip(items[::2], items[1::2], strict=False):
                    if isinstance(key, str):  # only string keys are ever looked up
                        target[key] = value
            if name == "DICT":
                stack.append(target)
        elif name == "GLOBAL":
            stack.append(self.refer(*_split_pair(arg)))
        elif name == "STACK_GLOBAL":
            qualname = self.pop()
            stack.append(self.refer(self.pop(), qualname))
        elif name == "INST":
            cls = self.refer(*_split_pair(arg))
            stack.append(_Obj(cls if isinstance(cls, _Global) else None, tuple(self.pop_mark())))
        elif name in {"REDUCE", "NEWOBJ", "NEWOBJ_EX", "OBJ"}:
            stack.append(self._construct(name))
        elif name == "BUILD":
            state, target = self.pop(), (stack[-1] if stack else None)
            if isinstance(target, _Obj):
                target.state = state
                if _is_array_wrapper(target.cls):
                    return target
        elif name == "DUP":
            stack.append(stack[-1] if stack else _OPAQUE)
        elif name not in {"PROTO", "FRAME", "STOP"}:
            self._generic(op)
        return None

    def _construct(self, name: str) -> _Obj:
        if name == "OBJ":
            items = self.pop_mark()
            cls, args = (items[0], tuple(items[1:])) if items else (_OPAQUE, ())
        else:
            if name == "NEWOBJ_EX":
                self.pop()  # kwargs
            args, cls = self.pop(), self.pop()
            args = args if isinstance(args, tuple) else ()
        # Protocol 0/1 spell "instance of C" as copyreg._reconstructor(C, ...).
        if cls in (_Global("copyreg", "_reconstructor"), _Global("copyreg", "__newobj__")):
            cls, args = (args[0], args[1:]) if args else (_OPAQUE, ())
        return _Obj(cls if isinstance(cls, _Global) else None, args)

    def _generic(self, op: pickletools.OpcodeInfo) -> None:
        # Opcodes whose values never matter here (lists, sets, bytes, buffers…):
        # apply their documented stack effect with opaque results.
        before = op.stack_before
        below = len(before)
        if pickletools.markobject in before:
            self.pop_mark()
            below = before.index(pickletools.markobject)
        for _ in range(below):
            self.pop()
        self.stack.extend(_MARK if s is pickletools.markobject else _OPAQUE for s in op.stack_after)


def _split_pair(arg: str) -> tuple[str, str]:
    module, _, name = arg.partition(" ")  # genops joins GLOBAL's two lines with a space
    return module, name


def _is_array_wrapper(cls: _Global | None) -> bool:
    # Also matches the joblib once vendored as sklearn.externals.joblib.
    return (
        cls is not None
        and cls.name == "NumpyArrayWrapper"
        and cls.module.endswith("joblib.numpy_pickle")
    )


def _scan_one(reader: _Reader, machine: _Machine, depth: int) -> bool:
    """Scan one pickle up to its STOP; False when the bytes stopped making sense."""
    while True:  # one genops run per stretch between joblib's raw array bytes
        wrapper = None
        try:
            for op, arg, _pos in pickletools.genops(cast("IO[bytes]", reader)):
                if op.name == "STOP":
                    return True
                wrapper = machine.step(op, arg)
                if wrapper is not None:
                    break
        except _Oversized as exc:
            machine.stack.append(_OPAQUE)  # every length-prefixed opcode pushes one value
            if not reader.skip(exc.size):
                return False
            continue
        except _STREAM_ERRORS:
            return False
        if wrapper is None or not _skip_array(reader, wrapper, machine.found, depth):
            return False


def _skip_array(
    reader: _Reader, wrapper: _Obj, found: dict[tuple[str, str], None], depth: int
) -> bool:
    """Step over the array data joblib writes right after a NumpyArrayWrapper.

    Mirrors ``NumpyArrayWrapper.read_array``: object arrays are a nested pickle
    (scanned, since it can reference classes); other arrays are an optional
    alignment padding (one length byte, then that many bytes) and then
    ``prod(shape) * itemsize`` raw bytes.
    """
    layout = _array_layout(wrapper.state)
    if layout is None:
        return False
    has_object, nbytes, padded = layout
    if has_object:
        return depth < _MAX_NESTING and _scan_one(reader, _Machine(found), depth + 1)
    if padded:
        pad = reader.read(1)
        if not pad or not reader.skip(pad[0]):
            return False
    return reader.skip(nbytes)


def _array_layout(state: Any) -> tuple[bool, int, bool] | None:
    if not isinstance(state, dict):
        return None
    shape, dtype = state.get("shape"), state.get("dtype")
    if not isinstance(shape, tuple) or not all(type(dim) is int and dim >= 0 for dim in shape):
        return None
    # numpy pickles a dtype as dtype(code, False, True) + BUILD (version, byteorder,
    # subarray, names, fields, elsize, alignment, flags).
    if not isinstance(dtype, _Obj) or not dtype.args or not isinstance(dtype.args[0], str):
        return None
    code = dtype.args[0]
    dstate = dtype.state if isinstance(dtype.state, tuple) else ()
    flags = dstate[7] if len(dstate) > 7 and type(dstate[7]) is int else 0
    if code.startswith("O") or flags & 1:  # NPY_ITEM_HASOBJECT
        return True, 0, False
    if len(dstate) > 5 and type(dstate[5]) is int and dstate[5] >= 0:
        itemsize = dstate[5]  # flexible types: 'U10' is 40 bytes, structured 'V…'
    else:
        match = _DTYPE_SIZE.fullmatch(code)
        if match is None:
            return None
        itemsize = int(match.group(1))
    padded = state.get("numpy_array_alignment_bytes") is not None
    return False, math.prod(shape) * itemsize, padded
