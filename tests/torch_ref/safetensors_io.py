"""Minimal safetensors reader / writer (no dependency beyond torch + numpy).

File format (https://github.com/huggingface/safetensors):

    [8 bytes]  N, little-endian u64: length of the JSON header
    [N bytes]  JSON: {"<name>": {"dtype": "F64", "shape": [..], "data_offsets": [b, e]}, ...,
                      "__metadata__": {"<key>": "<string value>", ...}}
               padded with spaces so that 8 + N is a multiple of 8
    [...]      raw little-endian tensor data; offsets are relative to the start of this block

Tensors are written in sorted name order, contiguous and without gaps (which is what the
reference implementation does too).  Only the metadata values must be strings.

    save(path, {"w": torch.zeros(2, 3)}, {"note": "x"})
    tensors, metadata = load(path)
"""

import json
import os
import struct
import sys

import numpy as np
import torch

__all__ = ["save", "load"]

# safetensors dtype tag <-> (torch dtype, numpy little-endian dtype)
_DTYPES = {
    "F64": (torch.float64, "<f8"),
    "F32": (torch.float32, "<f4"),
    "F16": (torch.float16, "<f2"),
    "I64": (torch.int64, "<i8"),
    "I32": (torch.int32, "<i4"),
    "I16": (torch.int16, "<i2"),
    "I8": (torch.int8, "i1"),
    "U8": (torch.uint8, "u1"),
    "BOOL": (torch.bool, "?"),
}
_TAG_OF = {torch_dtype: tag for tag, (torch_dtype, _) in _DTYPES.items()}


def save(path, tensors, metadata=None):
    """Write ``tensors`` (dict name -> torch.Tensor) and optional ``metadata``
    (dict str -> str) to ``path`` in safetensors format.  The file is written to a
    temporary name first and renamed, so a failure leaves no partial file."""
    header = {}
    blobs = []
    offset = 0
    for name in sorted(tensors):
        if name == "__metadata__":
            raise ValueError("'__metadata__' is reserved and cannot be a tensor name")
        t = tensors[name]
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"tensor '{name}' is a {type(t).__name__}, not a torch.Tensor")
        if t.dtype not in _TAG_OF:
            raise TypeError(f"tensor '{name}' has unsupported dtype {t.dtype}")
        tag = _TAG_OF[t.dtype]
        arr = t.detach().cpu().contiguous().numpy().astype(_DTYPES[tag][1], copy=False)
        data = arr.tobytes(order="C")
        header[name] = {"dtype": tag, "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    if metadata:
        for k, v in metadata.items():
            if not isinstance(k, str) or not isinstance(v, str):
                raise TypeError(f"metadata must map str to str (got {k!r}: {v!r})")
        header["__metadata__"] = dict(metadata)
    hjson = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hjson += b" " * ((-(8 + len(hjson))) % 8)
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            f.write(struct.pack("<Q", len(hjson)))
            f.write(hjson)
            for b in blobs:
                f.write(b)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def load(path):
    """Read a safetensors file; returns ``(dict name -> torch.Tensor, metadata dict)``."""
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise ValueError(f"{path}: too short for a safetensors file")
    (n,) = struct.unpack("<Q", raw[:8])
    if 8 + n > len(raw):
        raise ValueError(f"{path}: header length {n} exceeds the file size {len(raw)}")
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    data = memoryview(raw)[8 + n:]
    metadata = header.pop("__metadata__", None) or {}
    tensors = {}
    for name, info in header.items():
        tag = info["dtype"]
        if tag not in _DTYPES:
            raise ValueError(f"{path}: tensor '{name}' has unsupported dtype {tag}")
        torch_dtype, np_dtype = _DTYPES[tag]
        b, e = info["data_offsets"]
        shape = tuple(info["shape"])
        count = 1
        for s in shape:
            count *= s
        if not (0 <= b <= e <= len(data)) or e - b != count * np.dtype(np_dtype).itemsize:
            raise ValueError(f"{path}: tensor '{name}' has bad data_offsets {b}, {e}")
        arr = np.frombuffer(data[b:e], dtype=np_dtype).reshape(shape)
        tensors[name] = torch.from_numpy(arr.astype(arr.dtype.newbyteorder("="), copy=True))
    return tensors, metadata


if __name__ == "__main__":  # print the contents of the files given on the command line
    for p in sys.argv[1:]:
        ts, md = load(p)
        print(f"{p}: {len(ts)} tensors")
        for k in sorted(ts):
            print(f"  {k:40s} {str(ts[k].dtype):14s} {list(ts[k].shape)}")
        for k in sorted(md):
            print(f"  [meta] {k} = {md[k]}")
