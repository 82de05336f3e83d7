#!/usr/bin/env python3
"""Tests scripts/convert_paper_data.py on small files shaped like the DyAD paper's data set.

Builds battery_brand1/{train,test}/*.pkl (tuples (numpy array [T, C], metadata dict)) and a
column.pkl in a temporary folder, in the three serialisations the converter reads (plain
pickle, torch.save's legacy format, torch.save's zip format; both torch ones written by hand,
no PyTorch needed), runs the converter as a subprocess and checks its CSV text exactly.
Run: python3 tests/test_convert_paper_data.py  (numpy required; Debian: python3-numpy)
"""

import io
import os
import pickle
import subprocess
import sys
import tempfile
import unittest
import zipfile

try:
    import numpy as np
except ImportError:  # a python3 on PATH without numpy (e.g. pyenv): use the system one
    _SYSTEM_PYTHON = "/usr/bin/python3"
    if (not os.environ.get("DYAD_CONVERT_TEST_REEXEC") and os.access(_SYSTEM_PYTHON, os.X_OK)
            and os.path.realpath(sys.executable) != os.path.realpath(_SYSTEM_PYTHON)):
        os.environ["DYAD_CONVERT_TEST_REEXEC"] = "1"
        os.execv(_SYSTEM_PYTHON, [_SYSTEM_PYTHON, os.path.abspath(__file__)] + sys.argv[1:])
    sys.exit("test_convert_paper_data.py: numpy is required (Debian: apt-get install python3-numpy)")

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "scripts", "convert_paper_data.py")
COLUMNS = ["volt", "current", "soc", "max_single_volt", "min_single_volt", "max_temp", "min_temp", "timestamp"]
SIGNALS = COLUMNS[:-1]
HEADER = "car,segment,t,label,mileage,timestamp," + ",".join(SIGNALS)
T = 128


# ---- the three file formats -------------------------------------------------------------

def plain_bytes(obj):
    return pickle.dumps(obj, protocol=2)


def torch_legacy_bytes(obj):
    """What torch.save wrote before 1.6 for an object without tensors: five pickles in a row."""
    out = io.BytesIO()
    sys_info = {"protocol_version": 1001, "little_endian": True, "type_sizes": {"short": 2, "int": 4, "long": 4}}
    for part in (0x1950A86A20F9469CFC6C, 1001, sys_info, obj, []):
        pickle.dump(part, out, protocol=2)
    return out.getvalue()


def torch_zip_bytes(obj):
    """torch.save's zip format (>= 1.6) for an object without tensors."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("archive/data.pkl", pickle.dumps(obj, protocol=2))
        zf.writestr("archive/byteorder", "little")
        zf.writestr("archive/version", "3\n")
    return out.getvalue()


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def segment_array(k, dtype=np.float64, length=T):
    """Values exactly representable in float32 and float64: base + 0.5 t + 10 c; timestamps 10 s apart."""
    t = np.arange(length, dtype=np.float64)[:, None]
    c = np.arange(len(SIGNALS), dtype=np.float64)[None, :]
    values = 100.0 * k + 0.5 * t + 10.0 * c
    stamps = 1600000000.0 + 128000.0 * k + 1280.0 * t  # multiples of 128: exact in float32 too
    return np.hstack([values, stamps]).astype(dtype)


def expected_rows(car, segment, label, mileage, array):
    rows = []
    for t, row in enumerate(array.tolist()):
        values = ",".join(repr(float(v)) for v in row[:-1])
        rows.append(f"{car},{segment},{t},{label},{mileage},{repr(float(row[-1]))},{values}")
    return rows


class ConverterTest(unittest.TestCase):
    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="dyad_convert_test_")
        self.tmp = self._tmp.name
        self.brand = os.path.join(self.tmp, "battery_brand1")
        self.out_dir = os.path.join(self.tmp, "out")
        os.makedirs(self.out_dir)
        self.out = os.path.join(self.out_dir, "converted.csv")

    def tearDown(self):
        self._tmp.cleanup()

    def run_converter(self, *args, inputs=None):
        if inputs is None:
            inputs = [os.path.join(self.brand, "train"), os.path.join(self.brand, "test")]
        cmd = [sys.executable, SCRIPT, *inputs, "--out", self.out, "--quiet", *args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120)

    def read_out(self):
        with open(self.out, encoding="utf-8") as f:
            return f.read().splitlines()

    def seg(self, rel, array, meta, fmt=plain_bytes):
        write(os.path.join(self.brand, rel), fmt((array, meta)))

    def columns(self, names=COLUMNS, fmt=torch_legacy_bytes, where=None):
        write(os.path.join(where or self.brand, "column.pkl"), fmt(list(names)))

    def fleet(self):
        """Five segments of three cars over train/ and test/, in all three formats.
        Path order (test/3, test/4, train/1, train/2, train/10) differs from (car, segment) order."""
        self.columns()
        a = {k: segment_array(k) for k in (1, 2, 10, 4)}
        a[3] = segment_array(3, np.float32)
        self.seg("train/1.pkl", a[1], {"label": "10", "car": 10, "charge_segment": "2", "mileage": 1500.5}, torch_legacy_bytes)
        self.seg("train/2.pkl", a[2], {"label": "00", "car": 2, "charge_segment": "7", "mileage": 100.0})
        self.seg("train/10.pkl", a[10], {"label": "00", "car": 2, "charge_segment": "3", "mileage": 90.25}, torch_zip_bytes)
        self.seg("test/3.pkl", a[3], {"label": 0, "car": 7, "charge_segment": 1, "mileage": np.float64(5.0)})
        self.seg("test/4.pkl", a[4], {"label": "10", "car": np.int64(10), "charge_segment": "1", "mileage": 1400.0})
        return a

    def assert_failed(self, result, *needles):
        self.assertNotEqual(result.returncode, 0, result.stdout + result.stderr)
        for needle in needles:
            self.assertIn(needle, result.stderr)
        self.assertFalse(os.path.exists(self.out), "no output on error")
        self.assertEqual(os.listdir(self.out_dir), [], "no temporary file left behind")

    # ---- conversions ----------------------------------------------------------------------

    def test_fleet_exact_csv(self):
        a = self.fleet()
        r = self.run_converter()
        self.assertEqual(r.returncode, 0, r.stderr)
        expected = [HEADER]
        expected += expected_rows(2, 3, 0, "90.25", a[10])     # car 2 before 7 before 10 (numeric)
        expected += expected_rows(2, 7, 0, "100.0", a[2])
        expected += expected_rows(7, 1, 0, "5.0", a[3])        # float32 array, int label 0
        expected += expected_rows(10, 1, 1, "1400.0", a[4])
        expected += expected_rows(10, 2, 1, "1500.5", a[1])
        lines = self.read_out()
        self.assertEqual(len(lines), 1 + 5 * T)
        self.assertEqual(lines[0], HEADER)
        self.assertEqual(lines, expected)
        # a spot check written out by hand
        self.assertEqual(lines[1], "2,3,0,0,90.25,1601280000.0,1000.0,1010.0,1020.0,1030.0,1040.0,1050.0,1060.0")
        self.assertEqual(lines[-1], "10,2,127,1,1500.5,1600290560.0,163.5,173.5,183.5,193.5,203.5,213.5,223.5")
        self.assertIn("segments: 5 (3 normal, 2 faulty)", r.stdout)
        self.assertIn("cars: 3 (2 normal, 1 faulty)", r.stdout)
        self.assertIn("segment ids: charge_segment", r.stdout)
        self.assertIn(f"rows: {5 * T}", r.stdout)
        umask = os.umask(0)
        os.umask(umask)
        self.assertEqual(os.stat(self.out).st_mode & 0o777, 0o666 & ~umask, "permissions as open() would give")

    def test_columns_option_selects_and_orders(self):
        a = self.fleet()
        r = self.run_converter("--columns", "soc,current,volt")
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = self.read_out()
        self.assertEqual(lines[0], "car,segment,t,label,mileage,timestamp,soc,current,volt")
        row = a[10][5]
        self.assertEqual(lines[1 + 5], f"2,3,5,0,90.25,{row[7]!r},{row[2]!r},{row[1]!r},{row[0]!r}")
        self.assertEqual(len(lines), 1 + 5 * T)

    def test_limit_takes_first_files_in_path_order(self):
        self.fleet()
        r = self.run_converter("--limit", "2")
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = self.read_out()
        self.assertEqual(len(lines), 1 + 2 * T)
        self.assertEqual(sorted({tuple(l.split(",")[:2]) for l in lines[1:]}), [("10", "1"), ("7", "1")])
        self.assertIn("files: 2 converted of 5 found", r.stdout)

    def test_float32_values_use_shortest_text(self):
        self.columns(["soc", "volt"])
        arr = np.array([[0.1, 3.7], [0.2, 4.1]], dtype=np.float32)
        self.seg("train/1.pkl", arr, {"label": "00", "car": 1, "charge_segment": "0", "mileage": 1.0})
        r = self.run_converter(inputs=[os.path.join(self.brand, "train")])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.read_out(), ["car,segment,t,label,mileage,timestamp,soc,volt",
                                           "1,0,0,0,1.0,,0.1,3.7", "1,0,1,0,1.0,,0.2,4.1"])

    def test_duplicate_charge_segments_get_ordinals(self):
        self.columns()
        # car 5: charge_segment 9 twice (two snippets of one charge) and 4 once
        self.seg("train/1.pkl", segment_array(3), {"label": "00", "car": 5, "charge_segment": "9", "mileage": 1.0})
        self.seg("train/2.pkl", segment_array(2), {"label": "00", "car": 5, "charge_segment": "9", "mileage": 1.0})
        self.seg("train/3.pkl", segment_array(1), {"label": "00", "car": 5, "charge_segment": "4", "mileage": 1.0})
        train = [os.path.join(self.brand, "train")]
        seg_map = os.path.join(self.out_dir, "map.csv")
        r = self.run_converter("--segment-map", seg_map, inputs=train)
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = self.read_out()
        firsts = [l for l in lines[1:] if l.split(",")[2] == "0"]
        # ordinals follow (charge_segment, first timestamp): 4, then 9 from file 2 (earlier), then 9 from file 1
        self.assertEqual([f.split(",")[1] for f in firsts], ["0", "1", "2"])
        self.assertEqual([f.split(",")[6] for f in firsts], ["100.0", "200.0", "300.0"])
        self.assertIn("per-car ordinal", r.stdout)
        with open(seg_map, encoding="utf-8") as f:
            self.assertEqual(f.read().splitlines(), [
                "car,segment,charge_segment,file",
                f"5,0,4,{os.path.join(train[0], '3.pkl')}",
                f"5,1,9,{os.path.join(train[0], '2.pkl')}",
                f"5,2,9,{os.path.join(train[0], '1.pkl')}"])
        os.remove(seg_map)
        os.remove(self.out)
        r = self.run_converter("--segment-id", "charge", inputs=train)
        self.assert_failed(r, "charge_segment 9", "1.pkl", "2.pkl")

    def test_label_rules(self):
        self.columns()
        self.seg("train/1.pkl", segment_array(1, length=2), {"label": "01", "car": 1, "charge_segment": 0, "mileage": 1.0})
        train = [os.path.join(self.brand, "train")]
        r = self.run_converter(inputs=train)
        self.assert_failed(r, "1.pkl", "'01'")
        for rule, label in (("first-char", "0"), ("not-00", "1")):
            r = self.run_converter("--label-rule", rule, inputs=train)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual({l.split(",")[3] for l in self.read_out()[1:]}, {label})
            os.remove(self.out)

    def test_metadata_timestamp_and_no_timestamp_column(self):
        self.columns(SIGNALS)
        arr = segment_array(1, length=2)[:, :-1]
        self.seg("train/1.pkl", arr, {"label": "00", "car": 1, "charge_segment": 0, "mileage": 1.0,
                                      "timestamp": "2020-01-01 00:00:00"})
        self.seg("train/2.pkl", arr, {"label": "00", "car": 1, "charge_segment": 1, "mileage": 1.0})
        r = self.run_converter(inputs=[os.path.join(self.brand, "train")])
        self.assertEqual(r.returncode, 0, r.stderr)
        stamps = [l.split(",")[5] for l in self.read_out()[1:]]
        self.assertEqual(stamps, ["1577836800.0", "1577836800.0", "", ""])

    def test_nonfinite_values(self):
        self.columns()
        bad = segment_array(2, length=3)
        bad[1, 2] = np.nan
        self.seg("train/1.pkl", segment_array(1, length=3), {"label": "00", "car": 1, "charge_segment": 0, "mileage": 1.0})
        self.seg("train/2.pkl", bad, {"label": "00", "car": 1, "charge_segment": 1, "mileage": 1.0})
        train = [os.path.join(self.brand, "train")]
        self.assert_failed(self.run_converter(inputs=train), "2.pkl", "'soc'", "non-finite")
        r = self.run_converter("--skip-nonfinite", inputs=train)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(len(self.read_out()), 1 + 3)
        self.assertIn("left out 1 segment", r.stdout)

    # ---- errors ---------------------------------------------------------------------------

    def test_malformed_pickle_fails_without_output(self):
        self.fleet()
        broken = os.path.join(self.brand, "train", "2.pkl")
        with open(broken, "rb") as f:
            data = f.read()
        write(broken, data[: len(data) // 2])  # truncated
        r = self.run_converter()
        self.assert_failed(r, broken, "not a readable pickle")

    def test_error_keeps_existing_output(self):
        self.fleet()
        write(os.path.join(self.brand, "test", "9.pkl"), b"this is not a pickle")
        with open(self.out, "w") as f:
            f.write("old\n")
        r = self.run_converter()
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("9.pkl", r.stderr)
        with open(self.out) as f:
            self.assertEqual(f.read(), "old\n")
        self.assertEqual(os.listdir(self.out_dir), ["converted.csv"])

    def test_wrong_shape(self):
        self.fleet()
        path = os.path.join(self.brand, "test", "5.pkl")
        self.seg("test/5.pkl", segment_array(5)[:, :7], {"label": "00", "car": 3, "charge_segment": 0, "mileage": 1.0})
        self.assert_failed(self.run_converter(), path, "shape (128, 7)")

    def test_missing_metadata_key(self):
        self.fleet()
        path = os.path.join(self.brand, "test", "5.pkl")
        self.seg("test/5.pkl", segment_array(5), {"label": "00", "car": 3, "charge_segment": 0})
        self.assert_failed(self.run_converter(), path, "'mileage'")

    def test_not_a_tuple(self):
        self.fleet()
        path = os.path.join(self.brand, "test", "5.pkl")
        write(path, plain_bytes({"label": "00"}))
        self.assert_failed(self.run_converter(), path, "expected a tuple (array, metadata)")

    def test_refuses_globals_outside_the_allow_list(self):
        self.fleet()

        class Sneaky:
            def __reduce__(self):
                return (os.getpid, ())

        path = os.path.join(self.brand, "test", "5.pkl")
        self.seg("test/5.pkl", segment_array(5), {"label": "00", "car": Sneaky(), "charge_segment": 0, "mileage": 1.0})
        self.assert_failed(self.run_converter(), path, "refusing to load the global")

    def test_missing_column_file(self):
        self.seg("train/1.pkl", segment_array(1), {"label": "00", "car": 1, "charge_segment": 0, "mileage": 1.0})
        self.assert_failed(self.run_converter(inputs=[os.path.join(self.brand, "train")]), "1.pkl", "column.pkl")

    def test_unknown_column_requested(self):
        self.fleet()
        self.assert_failed(self.run_converter("--columns", "soc,voltage"), "column.pkl", "'voltage'")


if __name__ == "__main__":
    unittest.main(verbosity=2)
