"""Reading format 1: the ``.npz`` checkpoints bpnet wrote before safetensors, so saved models keep loading.

A format-1 checkpoint is an uncompressed numpy ``.npz`` (what ``np.savez``
writes): arrays ``param/W1`` ... ``param/bL``, optimiser arrays
``opt/<group>/<name>`` and the header ``__bpnet__``, UTF-8 JSON as a 1-D
``uint8`` array, which lists every array (``"arrays"``: shape and dtype),
their SHA-256 (``"sha256"``: for each array in sorted name order, the line
``json.dumps([name, dtype, shape]) + "\\n"`` then its little-endian bytes) and
the optimiser's groups.  :func:`open_npz` only checks what is particular to
that layout and hands the checkpoint module the header, the tensors (named
as in format 2: ``W1``, ``opt.v.dW1``) and a reader; every other check is
the one every checkpoint goes through.

The archive is read as a regular file of known size: every member must be a
*stored* (uncompressed) ``.npy`` whose size is exactly its header plus its
declared shape, so a few kilobytes can never declare gigabytes; an object
dtype is refused from the ``.npy`` header alone (nothing is ever unpickled).
"""

from __future__ import annotations

import hashlib
import json
import math
import zipfile

import numpy as np

__all__ = ["open_npz", "digest", "HEADER_MEMBER", "ZIP_MAGIC"]

HEADER_MEMBER = "__bpnet__"
#: the first bytes of a zip archive (a local file header; an empty archive's end record)
ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
#: the header member may not exceed this (the limit safetensors puts on its own header)
MAX_HEADER_BYTES = 100_000_000
_PICKLED = "holds Python objects (pickled data); refused, checkpoints are never unpickled"


def _members(zf: zipfile.ZipFile, bad) -> dict:
    """``{array name: ZipInfo}`` of stored ``.npy`` members, each name once."""
    infos = {}
    for info in zf.infolist():
        if not info.filename.endswith(".npy"):
            raise bad(f"unexpected archive member {info.filename!r} (a checkpoint holds only .npy arrays)")
        name = info.filename[: -len(".npy")]
        if name in infos:
            raise bad(f"archive member {info.filename!r} appears twice")
        if info.compress_type != zipfile.ZIP_STORED or info.compress_size != info.file_size:
            raise bad(f"array {name!r} is compressed (method {info.compress_type}); bpnet writes and reads only "
                      "stored .npy members, whose size the archive proves")
        infos[name] = info
    return infos


def _peek(zf, info, name, bad):
    """``(shape, dtype, header bytes)`` of a member's ``.npy`` header, its size checked; no data read."""
    try:
        with zf.open(info) as fp:
            version = np.lib.format.read_magic(fp)
            read = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
            if version not in read:
                raise ValueError(f".npy format version {version} is not supported")
            shape, _, dtype = read[version](fp, max_header_size=1 << 20)
            offset = fp.tell()
    except ValueError as exc:
        if "pickle" in str(exc) or "object" in str(exc).lower():
            raise bad(f"array {name!r} {_PICKLED}") from None
        raise bad(f"array {name!r} is unreadable ({exc})") from None
    except Exception as exc:  # BadZipFile, EOFError, zlib.error, OSError, ...
        raise bad(f"array {name!r} is unreadable, truncated or corrupt ({type(exc).__name__}: {exc})") from None
    if dtype.hasobject:
        raise bad(f"array {name!r} {_PICKLED}")
    need = offset + math.prod(shape) * dtype.itemsize
    if need != info.file_size:
        raise bad(f"array {name!r} is truncated or padded: shape {tuple(shape)} of {dtype.name} needs {need} bytes, "
                  f"the archive holds {info.file_size}")
    return tuple(int(d) for d in shape), dtype


def _read(zf, info, name, bad) -> np.ndarray:
    try:
        with zf.open(info) as fp:
            a = np.lib.format.read_array(fp, allow_pickle=False)
    except Exception as exc:  # a CRC error, a member cut short
        raise bad(f"array {name!r} is unreadable, truncated or corrupt ({type(exc).__name__}: {exc})") from None
    return a if a.dtype.isnative else a.astype(a.dtype.newbyteorder("="))


def _new_name(name: str, bad) -> str:
    """``param/W1`` -> ``W1``; ``opt/v/dW1`` -> ``opt.v.dW1``."""
    parts = name.split("/")
    if len(parts) == 2 and parts[0] == "param":
        return parts[1]
    if len(parts) == 3 and parts[0] == "opt":
        return f"opt.{parts[1]}.{parts[2]}"
    raise bad(f"array {name!r} outside 'param/' and 'opt/'")


def digest(arrays: dict) -> str:
    """SHA-256 of named arrays: in sorted name order, ``json.dumps([name, dtype, shape]) + "\\n"`` then the
    little-endian bytes (format 1 and format 2 alike)."""
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = arrays[name]
        h.update(json.dumps([name, a.dtype.name, [int(d) for d in a.shape]]).encode("utf-8") + b"\n")
        h.update(np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<")).reshape(-1).view(np.uint8))
    return h.hexdigest()


def _manifest(header, shapes, bad) -> None:
    """The header's ``"arrays"`` describe exactly the archive's arrays."""
    manifest = header.get("arrays")
    if not isinstance(manifest, dict):
        raise bad(f"header 'arrays': expected an object listing every array, got {manifest!r:.80}")
    missing, extra = sorted(set(manifest) - set(shapes)), sorted(set(shapes) - set(manifest))
    if missing:
        raise bad(f"arrays listed in the header are missing from the archive: {missing[:8]}")
    if extra:
        raise bad(f"archive holds arrays the header does not list: {extra[:8]}")
    for name, (shape, dtype) in sorted(shapes.items()):
        spec = manifest[name]
        if not isinstance(spec, dict) or spec.get("dtype") != dtype.name:
            raise bad(f"array {name!r} has dtype {dtype.name}, the header says {spec!r:.80}")
        if spec.get("shape") != list(shape):
            raise bad(f"array {name!r} has shape {shape}, the header says {spec.get('shape')!r:.80}")


def _optimizer(header, names, bad):
    """Format 1's ``{"scalars": ..., "arrays": {group: [names]}}``, checked against the archive: -> format 2's."""
    opt = header.get("optimizer")
    present = {}
    for n in names:
        if n.startswith("opt/"):
            group, _, item = n[4:].partition("/")
            present.setdefault(group, set()).add(item)
    if opt is None:
        return None
    if not isinstance(opt, dict) or not isinstance(opt.get("arrays", {}), dict):
        raise bad(f"header 'optimizer': expected {{'scalars': {{...}}, 'arrays': {{...}}}}, got {opt!r:.120}")
    listed = dict(opt.get("arrays", {}))
    for group, items in listed.items():
        if not isinstance(items, list) or set(map(str, items)) != present.get(group, set()):
            raise bad(f"optimizer group {group!r}: the header lists {items!r:.120}, the archive holds "
                      f"{sorted(present.get(group, set()))}")
    if set(present) - set(listed):
        raise bad(f"optimizer arrays not described in the header: groups {sorted(set(present) - set(listed))}")
    return {k: v for k, v in opt.items() if k != "arrays"}


def open_npz(f, bad, parse):
    """``(header, tensors, read, finish)`` of a format-1 archive open as ``f`` (a regular file).

    ``bad(message)`` makes the exception to raise; ``parse(bytes)`` parses the
    JSON header.  ``header`` is in format 2's terms when it says format 1
    (else as found, for the caller to refuse); ``tensors`` maps format-2 names
    to ``(shape, dtype name)``; ``read(name)`` reads one array; ``finish(host)``
    checks the digest of all of them.
    """
    try:
        zf = zipfile.ZipFile(f)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise bad(f"unreadable archive, truncated or corrupt ({exc})") from None
    infos = _members(zf, bad)
    if HEADER_MEMBER not in infos:
        shown = ", ".join(repr(n) for n in list(infos)[:8]) + (", ..." if len(infos) > 8 else "")
        raise bad(f"not a bpnet checkpoint: no {HEADER_MEMBER!r} header (a foreign .npz holding {shown or 'nothing'})")
    shape, dtype = _peek(zf, infos[HEADER_MEMBER], HEADER_MEMBER, bad)
    if dtype != np.uint8 or len(shape) != 1 or shape[0] > MAX_HEADER_BYTES:
        raise bad(f"header {HEADER_MEMBER!r}: expected a 1-D uint8 array of at most {MAX_HEADER_BYTES} bytes, "
                  f"got dtype {dtype} shape {shape}")
    header = parse(_read(zf, infos[HEADER_MEMBER], HEADER_MEMBER, bad).tobytes())
    shapes = {n: _peek(zf, i, n, bad) for n, i in infos.items() if n != HEADER_MEMBER}
    if header.get("format_version") != 1:
        return header, {n: (s, d.name) for n, (s, d) in shapes.items()}, None, None
    _manifest(header, shapes, bad)
    new = {_new_name(n, bad): n for n in shapes}
    if not isinstance(header.get("sha256"), str):
        raise bad(f"header 'sha256': expected a str, got {header.get('sha256')!r:.80}")
    converted = {k: v for k, v in header.items() if k not in ("arrays", "sha256", "optimizer")}
    converted["optimizer"] = _optimizer(header, shapes, bad)

    def read(name):
        return _read(zf, infos[new[name]], new[name], bad)

    def finish(host):
        if digest({new[k]: a for k, a in host.items()}) != header["sha256"]:
            raise bad("corrupt: the sha256 of the arrays does not match the header")

    return converted, {k: (shapes[n][0], shapes[n][1].name) for k, n in new.items()}, read, finish
