#!/usr/bin/env python3
"""Convert the DyAD paper's published data set (one pickle per charging segment) to dyad's long CSV.

Usage:
    convert_paper_data.py INPUT... --out FILE.csv [--columns a,b,c] [--limit N]
                          [--column-file PATH] [--segment-id auto|charge|ordinal]
                          [--segment-map MAP.csv] [--label-rule strict|first-char|not-00]
                          [--no-timestamp] [--skip-nonfinite] [--trust-pickles] [--quiet]

    INPUT is a directory (searched recursively for *.pkl) or a single .pkl file. Example:
    convert_paper_data.py data/battery_brand1/train data/battery_brand1/test --out brand1.csv

Input (Zhang et al., Nature Communications 14, 5940, 2023; code and layout described by the
README of github.com/962086838/Battery_fault_detection_NC_github):
    data/battery_brand1/{train,test}/*.pkl, data/battery_brand2/{train,test}/*.pkl,
    data/battery_brand3/data/*.pkl, and a column.pkl in each battery_brandN folder (folders
    named `label`, upstream's lists of car labels, are skipped when searching for segments).
    Each segment file holds a tuple (array, metadata): `array` is a numpy array [T = 128, C]
    and `metadata` a dict with the keys label, car, charge_segment, mileage (a `timestamp` key
    is used when present). column.pkl holds the list of the C column names, e.g.
    ['volt', 'current', 'soc', 'max_single_volt', 'min_single_volt', 'max_temp', 'min_temp',
    'timestamp']. Upstream reads both with torch.load, so the files are PyTorch serialisations
    (the legacy format of torch < 1.6 or the zip format of later versions) of plain Python and
    numpy objects; plain pickle.dump files are read as well. PyTorch itself is not needed.

Output: dyad's long CSV (docs/dyad-method.md section 1), one row per time step:
    car,segment,t,label,mileage,timestamp,<signal columns...>
    * Rows of one segment are contiguous and in stored order, t = 0..T-1; segments are
      sorted by (car, segment), numerically where the ids are integers.
    * label: 0 normal, 1 faulty. Upstream labels are two-character strings: '00' normal, '10'
      faulty (upstream's five-fold notebook calls a car normal iff label == '00'; its
      evaluate.py and baselines take int(label[0])). --label-rule strict (the default) accepts
      '00', '10', '0', '1', 0, 1 and rejects anything else, because for e.g. '01' the two
      upstream readings disagree; first-char uses int(label[0]); not-00 uses label != '00'.
    * segment: the metadata's charge_segment (an integer, stored as a string or an int) when it
      is an integer and unique within each car; otherwise (--segment-id auto) a per-car ordinal
      0, 1, 2, ... in the order (charge_segment, first timestamp, file path). Some public code
      merges several files of one (car, charge_segment), so several 128-step snippets may share
      a charge_segment; --segment-map writes car,segment,charge_segment,file for tracing back.
    * mileage from the metadata (empty when missing or NaN).
    * timestamp from the `timestamp` column (per row) if the column list has one, else from a
      `timestamp` metadata key if present, else empty. Numbers are written as stored; date
      strings / datetime objects become Unix seconds (naive ones read as UTC). The timestamp
      column is not repeated as a signal.
    * signal columns: --columns, in that order, or every column except `timestamp`, in the
      order of column.pkl. Values are written in the shortest form that reads back exactly.
    The file is written to a temporary name next to --out and renamed when complete, so an
    error leaves no partial output. Errors name the offending file.

Memory: two passes over the files. The first keeps only each file's metadata (to sort and to
number segments), the second re-reads each file and writes its rows, so arrays are never all
held at once.

SECURITY: unpickling can execute arbitrary code. Convert only files from a source you trust.
As a second line of defence this script refuses any pickle that references a global outside a
small allow-list (numpy arrays, dtypes and scalars, OrderedDict, datetime, a few builtins);
--trust-pickles lifts that restriction and must only be used on trusted files.

Requires Python 3.8+ and numpy (Debian: python3-numpy). If the python3 found first on PATH has
no numpy, the script re-runs itself with /usr/bin/python3 when that one has it.
"""

import argparse
import datetime
import io
import math
import os
import pickle
import re
import sys
import tempfile
import zipfile
from collections.abc import Mapping

try:
    import numpy as np
except ImportError:  # e.g. a pyenv python3 on PATH: fall back to the system interpreter
    _SYSTEM_PYTHON = "/usr/bin/python3"
    if (not os.environ.get("DYAD_CONVERT_REEXEC") and os.access(_SYSTEM_PYTHON, os.X_OK)
            and os.path.realpath(sys.executable) != os.path.realpath(_SYSTEM_PYTHON)):
        os.environ["DYAD_CONVERT_REEXEC"] = "1"
        os.execv(_SYSTEM_PYTHON, [_SYSTEM_PYTHON, os.path.abspath(__file__)] + sys.argv[1:])
    sys.exit("convert_paper_data.py: numpy is required (Debian: apt-get install python3-numpy)")

PROG = "convert_paper_data.py"
COLUMN_FILE_NAMES = ("column.pkl", "columns.pkl")  # upstream: column.pkl; some copies: columns.pkl
REQUIRED_KEYS = ("label", "car", "charge_segment", "mileage")
META_COLUMNS = ("car", "segment", "t", "label", "mileage", "timestamp")
SKIPPED_DIR_NAMES = ("label",)  # upstream's battery_brandN/label: car lists, not segments
INT64_MAX = 2 ** 63 - 1

# PyTorch's legacy (< 1.6) serialisation: a sequence of pickles starting with these two.
TORCH_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
TORCH_PROTOCOL_VERSION = 1001


class ConvertError(Exception):
    """A problem with the input; the message names the file."""


# --------------------------------------------------------------------------------------------
# Reading pickles (plain, torch legacy, torch zip) with an allow-list of globals


def _numpy_attr(module, name):
    """numpy.core.* was renamed numpy._core.* in numpy 2; resolve either spelling."""
    candidates = [module]
    if module.startswith("numpy.core."):
        candidates.insert(0, "numpy._core." + module[len("numpy.core."):])
    elif module.startswith("numpy._core."):
        candidates.append("numpy.core." + module[len("numpy._core."):])
    for mod_name in candidates:
        try:
            mod = __import__(mod_name, fromlist=[name])
        except ImportError:
            continue
        if hasattr(mod, name):
            return getattr(mod, name)
    raise AttributeError(f"{module}.{name}")


_SAFE_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("_codecs", "encode"),  # how protocol-2 pickles store bytes (numpy array buffers)
    ("builtins", "set"), ("builtins", "frozenset"), ("builtins", "bytearray"),
    ("builtins", "complex"), ("builtins", "slice"),
    ("collections", "OrderedDict"),
    ("datetime", "datetime"), ("datetime", "date"), ("datetime", "time"),
    ("datetime", "timedelta"), ("datetime", "timezone"),
}
# Python 2 spellings of the same modules (protocol <= 2 pickles may use them).
_PY2_MODULES = {"__builtin__": "builtins", "copy_reg": "copyreg"}


class _TorchObject(Exception):
    pass


class _Unpickler(pickle.Unpickler):
    def __init__(self, file, trusted):
        super().__init__(file)
        self._trusted = trusted

    def find_class(self, module, name):
        if self._trusted:
            return super().find_class(module, name)
        module = _PY2_MODULES.get(module, module)
        if module == "torch" or module.startswith("torch."):
            raise _TorchObject(f"{module}.{name}")
        if module.startswith("numpy.dtypes") and name.endswith("DType"):
            return _numpy_attr(module, name)  # numpy 2 dtype classes
        if (module, name) in _SAFE_GLOBALS:
            if module.startswith("numpy"):
                return _numpy_attr(module, name)
            return super().find_class(module, name)
        raise pickle.UnpicklingError(
            f"refusing to load the global '{module}.{name}' (not on the allow-list of numpy and "
            "plain Python types; pass --trust-pickles if the files come from a trusted source)")

    def persistent_load(self, pid):
        raise _TorchObject(f"persistent id {pid[0] if isinstance(pid, tuple) and pid else pid!r}")


def load_pickle_file(path, trusted):
    """Returns the object stored in `path`: a plain pickle or a torch.save file without tensors."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise ConvertError(f"{path}: cannot read: {e.strerror or e}") from None
    try:
        if data[:4] == b"PK\x03\x04":  # torch >= 1.6 zip serialisation
            with zipfile.ZipFile(io.BytesIO(data)) as zf:
                names = [n for n in zf.namelist() if n == "data.pkl" or n.endswith("/data.pkl")]
                if len(names) != 1:
                    raise ConvertError(f"{path}: a zip file but not a torch.save archive "
                                       f"(expected one data.pkl, found {len(names)})")
                return _Unpickler(io.BytesIO(zf.read(names[0])), trusted).load()
        if len(data) > 262 and data[257:262] == b"ustar":
            raise ConvertError(f"{path}: a tar archive (torch < 0.4 serialisation), not supported")
        stream = io.BytesIO(data)
        first = _Unpickler(stream, trusted).load()
        if type(first) is int and first == TORCH_MAGIC_NUMBER:  # torch < 1.6 legacy format
            version = _Unpickler(stream, trusted).load()
            if version != TORCH_PROTOCOL_VERSION:
                raise ConvertError(f"{path}: unsupported torch serialisation protocol {version!r}")
            _Unpickler(stream, trusted).load()  # sys_info
            obj = _Unpickler(stream, trusted).load()
            storage_keys = _Unpickler(stream, trusted).load()
            if storage_keys:
                raise _TorchObject("tensor storages")
            return obj
        return first
    except ConvertError:
        raise
    except _TorchObject as e:
        raise ConvertError(f"{path}: holds torch tensors or objects ({e}); this converter reads "
                           "numpy payloads only (load it with torch and re-save the arrays with "
                           "numpy)") from None
    except (pickle.UnpicklingError, EOFError, zipfile.BadZipFile, ValueError, TypeError,
            AttributeError, ImportError, IndexError, KeyError, OverflowError, MemoryError,
            UnicodeDecodeError) as e:
        what = "truncated pickle" if isinstance(e, EOFError) else f"{type(e).__name__}: {e}"
        raise ConvertError(f"{path}: not a readable pickle ({what})") from None


# --------------------------------------------------------------------------------------------
# Metadata values


def _is_int(x):
    return isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_))


def _text(x):
    if isinstance(x, (bytes, np.bytes_)):
        return bytes(x).decode("utf-8", "replace")
    return str(x)


def integer_value(x):
    """int for an integer-valued id (int, '177', 177.0), else None."""
    if _is_int(x):
        return int(x)
    if isinstance(x, (float, np.floating)):
        return int(x) if math.isfinite(x) and float(x).is_integer() else None
    if isinstance(x, (str, bytes, np.str_, np.bytes_)):
        s = _text(x).strip()
        return int(s) if re.fullmatch(r"[+-]?\d+", s) else None
    return None


def id_text(x, what, path):
    """Text of a car or charge-segment id, safe for one CSV field."""
    if x is None or isinstance(x, (bool, np.bool_)):
        raise ConvertError(f"{path}: metadata '{what}' is {x!r}, expected an integer or a string")
    i = integer_value(x)
    if i is not None and not isinstance(x, (str, bytes, np.str_, np.bytes_)):
        return str(i)
    if isinstance(x, (str, bytes, np.str_, np.bytes_)):
        s = _text(x).strip()
        if not s or any(c in s for c in "\r\n"):
            raise ConvertError(f"{path}: metadata '{what}' is {x!r}, which cannot be a CSV id")
        return s
    raise ConvertError(f"{path}: metadata '{what}' is {x!r} ({type(x).__name__}), "
                       "expected an integer or a string")


def sort_key(text):
    """Integers numerically and before other ids, which sort as text."""
    return (0, int(text), text) if re.fullmatch(r"[+-]?\d+", text) else (1, 0, text)


def natural_key(path):
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"(\d+)", path) if p)


def label_value(x, rule, path):
    if isinstance(x, (bool, np.bool_)) or _is_int(x) or isinstance(x, (float, np.floating)):
        v = float(x)
        if rule == "not-00":
            return 0 if v == 0 else 1
        if v in (0.0, 1.0):
            return int(v)
    elif isinstance(x, (str, bytes, np.str_, np.bytes_)):
        s = _text(x).strip()
        if rule == "strict" and s in ("00", "0", "10", "1"):
            return 0 if s in ("00", "0") else 1
        if rule == "first-char" and s[:1] in ("0", "1"):
            return int(s[0])
        if rule == "not-00" and s:
            return 0 if s in ("00", "0") else 1
    hint = ""
    if rule == "strict":
        hint = (" (strict rule: '00'/'0'/0 normal, '10'/'1'/1 faulty; --label-rule first-char "
                "uses int(label[0]), not-00 calls every label other than '00' faulty)")
    raise ConvertError(f"{path}: label {x!r} cannot be mapped to 0/1{hint}")


def mileage_text(x, path):
    if x is None:
        return ""
    try:
        v = float(_text(x).strip()) if isinstance(x, (str, bytes, np.str_, np.bytes_)) else float(x)
    except (TypeError, ValueError):
        raise ConvertError(f"{path}: metadata 'mileage' is {x!r}, not a number") from None
    if math.isnan(v):
        return ""
    if math.isinf(v):
        raise ConvertError(f"{path}: metadata 'mileage' is {x!r}, not finite")
    return repr(v)


_UTC = datetime.timezone.utc


def timestamp_number(x, where):
    """Seconds as a float (NaN when missing) from a number, a date string or a datetime."""
    if x is None:
        return math.nan
    if isinstance(x, (bool, np.bool_)):
        raise ConvertError(f"{where}: timestamp {x!r} is not a time")
    if _is_int(x) or isinstance(x, (float, np.floating)):
        return float(x)
    if isinstance(x, np.datetime64):
        if np.isnat(x):
            return math.nan
        return float(x.astype("datetime64[us]").astype(np.int64)) / 1e6
    if isinstance(x, datetime.datetime):
        return (x if x.tzinfo else x.replace(tzinfo=_UTC)).timestamp()
    if isinstance(x, datetime.date):
        return datetime.datetime(x.year, x.month, x.day, tzinfo=_UTC).timestamp()
    if isinstance(x, (str, bytes, np.str_, np.bytes_)):
        s = _text(x).strip()
        if not s:
            return math.nan
        try:
            return float(s)
        except ValueError:
            pass
        try:
            return timestamp_number(datetime.datetime.fromisoformat(s.replace("Z", "+00:00")), where)
        except ValueError:
            pass
    raise ConvertError(f"{where}: timestamp {x!r} is neither a number nor a date "
                       "(--no-timestamp leaves the column empty)")


def timestamp_texts(values, where):
    """CSV texts of a 1-D sequence of timestamps ('' for missing)."""
    arr = np.asarray(values)
    if arr.dtype.kind in "iuf":
        arr = arr.astype(np.float64)
    else:
        arr = np.array([timestamp_number(v, where) for v in arr.ravel().tolist()], dtype=np.float64)
    if np.isinf(arr).any():
        raise ConvertError(f"{where}: non-finite timestamp")
    texts = arr.astype(str)
    texts[np.isnan(arr)] = ""
    return texts.tolist()


def csv_field(s):
    if s and s.strip() == s and not any(c in s for c in ',"'):
        return s
    return '"' + s.replace('"', '""') + '"'


# --------------------------------------------------------------------------------------------
# Columns


class Columns:
    """One column list (from one column.pkl) and where the chosen signals sit in it."""

    def __init__(self, path, names):
        self.path, self.names = path, names
        self.index = {n: i for i, n in enumerate(names)}
        self.signal_idx = None
        self.timestamp_idx = None


def load_columns(path, trusted):
    obj = load_pickle_file(path, trusted)
    if isinstance(obj, np.ndarray):
        obj = obj.tolist()
    if not isinstance(obj, (list, tuple)) or not obj:
        raise ConvertError(f"{path}: expected a non-empty list of column names, "
                           f"found {type(obj).__name__}")
    names = []
    for n in obj:
        if not isinstance(n, (str, np.str_)) or not str(n).strip() or any(c in str(n) for c in "\r\n"):
            raise ConvertError(f"{path}: column name {n!r} is not a usable name")
        names.append(str(n))
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ConvertError(f"{path}: duplicate column names {dup}")
    return Columns(path, names)


class ColumnFinder:
    """column.pkl for a segment file: --column-file, or the nearest one in its folder or above."""

    def __init__(self, forced, trusted):
        self.trusted = trusted
        self.forced = load_columns(forced, trusted) if forced else None
        self.by_path = {}
        self.by_dir = {}

    def for_file(self, pkl_path, stop_dir):
        if self.forced:
            return self.forced
        d = os.path.dirname(os.path.abspath(pkl_path))
        if d in self.by_dir:
            return self.by_dir[d]
        found, probe = None, d
        while True:
            for name in COLUMN_FILE_NAMES:
                candidate = os.path.join(probe, name)
                if os.path.isfile(candidate):
                    found = candidate
                    break
            if found or probe == stop_dir or os.path.dirname(probe) == probe:
                break
            probe = os.path.dirname(probe)
        if not found:
            raise ConvertError(f"{pkl_path}: no column.pkl in its folder or any parent up to "
                               f"{stop_dir} (give one with --column-file)")
        if found not in self.by_path:
            self.by_path[found] = load_columns(found, self.trusted)
        self.by_dir[d] = self.by_path[found]
        return self.by_dir[d]


def bind_signals(cols, signals, explicit, first_cols):
    """Sets cols.signal_idx / timestamp_idx for the chosen signal names (checked once per list)."""
    if cols.signal_idx is not None:
        return
    missing = [s for s in signals if s not in cols.index]
    if missing:
        raise ConvertError(f"{cols.path}: no column {missing[0]!r} (columns: {', '.join(cols.names)})")
    if not explicit:
        own = [n for n in cols.names if n != "timestamp"]
        if sorted(own) != sorted(signals):
            raise ConvertError(f"{cols.path}: its columns ({', '.join(cols.names)}) differ from "
                               f"those of {first_cols.path} ({', '.join(first_cols.names)}); "
                               "choose the signals with --columns")
    cols.signal_idx = [cols.index[s] for s in signals]
    cols.timestamp_idx = cols.index.get("timestamp")


def choose_signals(cols, requested):
    if requested is not None:
        signals = requested
    else:
        signals = [n for n in cols.names if n != "timestamp"]
    for s in signals:
        if s in META_COLUMNS:
            where = "--columns" if requested is not None else cols.path
            raise ConvertError(f"{where}: column {s!r} clashes with the long CSV's metadata columns "
                               f"({', '.join(META_COLUMNS)})"
                               + ("; choose the signals with --columns" if requested is None else ""))
    if not signals:
        raise ConvertError(f"{cols.path}: no signal columns")
    return signals


# --------------------------------------------------------------------------------------------
# One segment file


class Segment:
    __slots__ = ("path", "cols", "car", "car_key", "charge", "charge_int", "charge_key",
                 "label", "mileage", "length", "first_ts", "segment")


def read_segment(path, cols, args, signals, first_cols, keep_values=False):
    """Validates a file; returns (Segment, signal values if keep_values else None,
    timestamp texts or None, a message if a signal is not finite else None)."""
    obj = load_pickle_file(path, args.trust_pickles)
    if not isinstance(obj, (tuple, list)) or len(obj) != 2:
        kind = f"a {type(obj).__name__}" + (f" of length {len(obj)}" if isinstance(obj, (tuple, list)) else "")
        raise ConvertError(f"{path}: expected a tuple (array, metadata), found {kind}")
    raw, meta = obj
    if not isinstance(meta, Mapping):
        raise ConvertError(f"{path}: the second element should be the metadata dict, "
                           f"found {type(meta).__name__}")
    missing = [k for k in REQUIRED_KEYS if k not in meta]
    if missing:
        raise ConvertError(f"{path}: metadata lacks the key(s) {', '.join(map(repr, missing))} "
                           f"(has: {', '.join(map(str, meta.keys()))})")
    try:
        arr = raw if isinstance(raw, np.ndarray) else np.asarray(raw)
    except (ValueError, TypeError) as e:
        raise ConvertError(f"{path}: the first element is not an array ({e})") from None
    bind_signals(cols, signals, args.columns is not None, first_cols)
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] != len(cols.names):
        raise ConvertError(f"{path}: array of shape {tuple(arr.shape)}, expected [T, {len(cols.names)}] "
                           f"with T >= 1 for the {len(cols.names)} columns of {cols.path}")

    seg = Segment()
    seg.path, seg.cols, seg.length = path, cols, int(arr.shape[0])
    seg.car = id_text(meta["car"], "car", path)
    seg.car_key = sort_key(seg.car)
    seg.charge = id_text(meta["charge_segment"], "charge_segment", path)
    seg.charge_int = integer_value(meta["charge_segment"])
    seg.charge_key = sort_key(seg.charge) if seg.charge_int is None else (0, seg.charge_int, seg.charge)
    seg.label = label_value(meta["label"], args.label_rule, path)
    seg.mileage = mileage_text(meta["mileage"], path)
    seg.segment = None

    sig = arr[:, cols.signal_idx]
    if sig.dtype.kind == "b":
        sig = sig.astype(np.int8)
    elif sig.dtype == np.float16:
        sig = sig.astype(np.float32)  # exact, and its shortest text reads back as the same float
    elif sig.dtype.kind not in "iuf":
        try:
            sig = sig.astype(np.float64)
        except (ValueError, TypeError):
            bad = next((s for j, s in enumerate(signals)
                        if not _all_numbers(sig[:, j])), signals[0])
            raise ConvertError(f"{path}: column {bad!r} holds values that are not numbers "
                               f"(array dtype {arr.dtype})") from None
    nonfinite = None
    if sig.dtype.kind == "f":
        bad_mask = ~np.isfinite(sig)
        if bad_mask.any():
            j = int(np.nonzero(bad_mask.any(axis=0))[0][0])
            t = int(np.nonzero(bad_mask[:, j])[0][0])
            nonfinite = f"{path}: column {signals[j]!r} holds a non-finite value ({sig[t, j]}) at t = {t}"
    if nonfinite and not args.skip_nonfinite:
        raise ConvertError(nonfinite + " (dyad cannot train on NaN or infinity; "
                           "--skip-nonfinite leaves such segments out)")

    ts = None
    if not args.no_timestamp:
        if cols.timestamp_idx is not None:
            ts = timestamp_texts(arr[:, cols.timestamp_idx], f"{path}: column 'timestamp'")
        elif "timestamp" in meta:
            m = meta["timestamp"]
            if isinstance(m, (list, tuple, np.ndarray)) and np.ndim(m) == 1 and len(m) == seg.length:
                ts = timestamp_texts(m, f"{path}: metadata 'timestamp'")
            elif np.ndim(m) == 0:
                ts = timestamp_texts([m], f"{path}: metadata 'timestamp'") * seg.length
            else:
                raise ConvertError(f"{path}: metadata 'timestamp' has shape {np.shape(m)}, "
                                   f"expected a scalar or {seg.length} values")
    seg.first_ts = float(ts[0]) if ts and ts[0] else math.inf
    return seg, (sig if keep_values else None), ts, nonfinite


def _all_numbers(column):
    try:
        column.astype(np.float64)
        return True
    except (ValueError, TypeError):
        return False


# --------------------------------------------------------------------------------------------
# Driver


def find_files(inputs):
    """[(path, stop_dir)] of segment files, naturally sorted, duplicates removed."""
    seen, files, skipped_dirs = set(), [], []
    for inp in inputs:
        if os.path.isfile(inp):
            # column.pkl may sit in the file's folder or beside that folder
            candidates = [(inp, os.path.dirname(os.path.dirname(os.path.abspath(inp))))]
        elif os.path.isdir(inp):
            root = os.path.abspath(inp)
            stop = os.path.dirname(root)  # column.pkl may sit beside the input folder
            candidates = []
            for dirpath, dirnames, filenames in os.walk(root):
                keep = []
                for d in sorted(dirnames):
                    if d in SKIPPED_DIR_NAMES or d.startswith("."):
                        skipped_dirs.append(os.path.join(dirpath, d))
                    else:
                        keep.append(d)
                dirnames[:] = keep
                for name in filenames:
                    if name.endswith(".pkl") and name not in COLUMN_FILE_NAMES and not name.startswith("."):
                        candidates.append((os.path.join(dirpath, name), stop))
        else:
            raise ConvertError(f"{inp}: no such file or directory")
        for path, stop in candidates:
            real = os.path.realpath(path)
            if real not in seen:
                seen.add(real)
                files.append((path, stop))
    files.sort(key=lambda ps: natural_key(ps[0]))
    return files, skipped_dirs


def assign_segments(segments, mode):
    """Sorts segments and sets .segment; returns the mode used."""
    segments.sort(key=lambda s: (s.car_key, s.charge_key, s.first_ts, natural_key(s.path)))
    duplicates = None
    seen = {}
    for s in segments:
        key = (s.car, s.charge)
        if key in seen:
            duplicates = (seen[key], s)
            break
        seen[key] = s
    not_int = next((s for s in segments if s.charge_int is None or abs(s.charge_int) > INT64_MAX), None)
    if mode == "auto":
        mode = "charge" if duplicates is None and not_int is None else "ordinal"
    if mode == "charge":
        if not_int is not None:
            raise ConvertError(f"{not_int.path}: charge_segment {not_int.charge!r} is not an integer "
                               "(use --segment-id ordinal)")
        if duplicates is not None:
            a, b = duplicates
            raise ConvertError(f"{b.path}: car {a.car} charge_segment {a.charge} also in {a.path} "
                               "(use --segment-id ordinal or auto)")
        for s in segments:
            s.segment = s.charge_int
    else:
        car, n = None, 0
        for s in segments:
            if s.car != car:
                car, n = s.car, 0
            s.segment = n
            n += 1
    return mode


class AtomicWriter:
    """A text file written under a temporary name next to `path`, renamed by commit()."""

    def __init__(self, path):
        self.path = path
        directory = os.path.dirname(os.path.abspath(path))
        fd, self.tmp = tempfile.mkstemp(dir=directory, prefix="." + os.path.basename(path) + ".",
                                        suffix=".tmp")
        self.file = open(fd, "w", encoding="utf-8", newline="\n", buffering=1 << 20)

    def commit(self):
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(self.tmp, 0o666 & ~umask)
        os.replace(self.tmp, self.path)
        self.tmp = None

    def abort(self):
        if self.tmp is not None:
            try:
                self.file.close()
            finally:
                try:
                    os.unlink(self.tmp)
                except OSError:
                    pass
            self.tmp = None


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Convert the DyAD paper's per-segment pickles (array, metadata) to dyad's "
                    "long CSV. Unpickling can execute code: convert only trusted files.")
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="folders searched recursively for *.pkl (column.pkl excluded), or .pkl files")
    p.add_argument("--out", required=True, help="output long CSV")
    p.add_argument("--columns", help="signal columns to write, comma-separated, in this order "
                                     "(default: every column of column.pkl except timestamp)")
    p.add_argument("--limit", type=int, metavar="N",
                   help="convert only the first N segment files in path order (a quick trial)")
    p.add_argument("--column-file", help="column.pkl to use for every file (default: the nearest "
                                         "column.pkl in the file's folder or above)")
    p.add_argument("--segment-id", choices=("auto", "charge", "ordinal"), default="auto",
                   help="segment ids: charge_segment, a per-car ordinal, or charge_segment when it "
                        "is an integer unique within each car and the ordinal otherwise (default)")
    p.add_argument("--segment-map", metavar="MAP.csv",
                   help="also write car,segment,charge_segment,file")
    p.add_argument("--label-rule", choices=("strict", "first-char", "not-00"), default="strict",
                   help="how label strings map to 0/1 (default strict: '00' normal, '10' faulty)")
    p.add_argument("--no-timestamp", action="store_true", help="leave the timestamp column empty")
    p.add_argument("--skip-nonfinite", action="store_true",
                   help="leave out segments with NaN/inf in a signal column instead of failing")
    p.add_argument("--trust-pickles", action="store_true",
                   help="allow any global the pickles reference (runs code from the files)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    args = p.parse_args(argv)
    if args.limit is not None and args.limit < 1:
        p.error("--limit must be at least 1")
    if args.columns is not None:
        cols = [c.strip() for c in args.columns.split(",")]
        if not all(cols):
            p.error("--columns: empty column name")
        dup = sorted({c for c in cols if cols.count(c) > 1})
        if dup:
            p.error(f"--columns: {', '.join(dup)} given twice")
        if "timestamp" in cols:
            p.error("--columns: 'timestamp' is written to the timestamp column, not as a signal")
        args.columns = cols
    return args


class Progress:
    def __init__(self, quiet, total, what):
        self.on = not quiet and sys.stderr.isatty()
        self.total, self.what, self.step = total, what, max(1, total // 200)

    def __call__(self, i):
        if self.on and (i % self.step == 0 or i == self.total):
            sys.stderr.write(f"\r{PROG}: {self.what} {i}/{self.total}")
            if i == self.total:
                sys.stderr.write("\n")
            sys.stderr.flush()


def convert(args):
    for target in filter(None, (args.out, args.segment_map)):
        folder = os.path.dirname(os.path.abspath(target))
        if not os.path.isdir(folder):
            raise ConvertError(f"{target}: the folder {folder} does not exist")
    if args.segment_map and os.path.abspath(args.segment_map) == os.path.abspath(args.out):
        raise ConvertError(f"{args.out}: --segment-map and --out name the same file")
    files, skipped_dirs = find_files(args.inputs)
    if not files:
        raise ConvertError(f"no segment files (*.pkl) under {', '.join(args.inputs)}")
    total_found = len(files)
    if args.limit is not None:
        files = files[:args.limit]
    finder = ColumnFinder(args.column_file, args.trust_pickles)

    # Pass 1: metadata of every file.
    signals, first_cols = None, None
    segments, skipped_nonfinite = [], []
    progress = Progress(args.quiet, len(files), "reading")
    for i, (path, stop) in enumerate(files, 1):
        cols = finder.for_file(path, stop)
        if signals is None:
            signals, first_cols = choose_signals(cols, args.columns), cols
        seg, _, _, nonfinite = read_segment(path, cols, args, signals, first_cols)
        if nonfinite:
            skipped_nonfinite.append(nonfinite)
        else:
            segments.append(seg)
        progress(i)
    if not segments:
        raise ConvertError("every segment was left out (non-finite values)")
    mode = assign_segments(segments, args.segment_id)

    car_labels = {}
    for s in segments:
        car_labels.setdefault(s.car, set()).add(s.label)
    mixed = sorted((c for c, ls in car_labels.items() if len(ls) > 1), key=sort_key)

    # Pass 2: write the rows, segment by segment.
    writers = []
    try:
        out = AtomicWriter(args.out)
        writers.append(out)
        seg_map = AtomicWriter(args.segment_map) if args.segment_map else None
        if seg_map:
            writers.append(seg_map)
            seg_map.file.write("car,segment,charge_segment,file\n")
        out.file.write(",".join(list(META_COLUMNS) + [csv_field(s) for s in signals]) + "\n")
        rows, ts_segments = 0, 0
        progress = Progress(args.quiet, len(segments), "writing")
        for i, s in enumerate(segments, 1):
            again, values, ts, _ = read_segment(s.path, s.cols, args, signals, first_cols, keep_values=True)
            if (again.car, again.charge, again.label, again.length) != (s.car, s.charge, s.label, s.length):
                raise ConvertError(f"{s.path}: changed while it was being converted")
            car = csv_field(s.car)
            head = f"{car},{s.segment},"
            mid = f",{s.label},{s.mileage},"
            texts = values.astype(str).tolist()
            if ts is None:
                ts = [""] * s.length
            else:
                ts_segments += 1
            out.file.write("".join(f"{head}{t}{mid}{ts[t]},{','.join(row)}\n"
                                   for t, row in enumerate(texts)))
            rows += s.length
            if seg_map:
                seg_map.file.write(f"{car},{s.segment},{csv_field(s.charge)},{csv_field(s.path)}\n")
            progress(i)
        for w in writers:
            w.commit()
    except BaseException:
        for w in writers:
            w.abort()
        raise

    # Summary.
    cars = sorted(car_labels, key=sort_key)
    faulty = [c for c in cars if 1 in car_labels[c]]
    normal_segments = sum(1 for s in segments if s.label == 0)
    lengths = sorted({s.length for s in segments})
    print(f"{PROG}: wrote {args.out}")
    print(f"  files: {len(files)} converted" + (f" of {total_found} found (--limit)" if len(files) < total_found else ""))
    print(f"  segments: {len(segments)} ({normal_segments} normal, {len(segments) - normal_segments} faulty), "
          f"rows: {rows}, time steps per segment: "
          + (str(lengths[0]) if len(lengths) == 1 else f"{lengths[0]}..{lengths[-1]}"))
    print(f"  cars: {len(cars)} ({len(cars) - len(faulty)} normal, {len(faulty)} faulty)")
    print(f"  signals: {','.join(signals)}")
    if mode == "charge":
        ids = "charge_segment"
    elif args.segment_id == "auto":
        ids = "per-car ordinal (charge_segment is not an integer unique within each car)"
    else:
        ids = "per-car ordinal"
    print(f"  segment ids: {ids}")
    print(f"  timestamps: {ts_segments} of {len(segments)} segments")
    if args.segment_map:
        print(f"  segment map: {args.segment_map}")
    for d in skipped_dirs:
        print(f"  skipped folder: {d}")
    if skipped_nonfinite:
        print(f"  left out {len(skipped_nonfinite)} segment(s) with non-finite values, e.g. {skipped_nonfinite[0]}")
    if mixed:
        print(f"  warning: {len(mixed)} car(s) have both normal and faulty segments (counted as faulty): "
              + ", ".join(mixed[:10]) + (" ..." if len(mixed) > 10 else ""))


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        convert(args)
    except ConvertError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted, no output written", file=sys.stderr)
        return 130
    except OSError as e:
        print(f"{PROG}: error: {e.filename or args.out}: {e.strerror or e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
