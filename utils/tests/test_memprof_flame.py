"""Unit tests for utils/memprof_flame.py (its pure parts: RESP parsing, the
prefix tree, layout, SVG and HTML output).

Run from the repository root:
    python3 -m unittest discover -s utils/tests -t utils -v
"""

import json
import os
import subprocess
import sys
import tempfile
import unittest
import xml.etree.ElementTree as ET

UTILS_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(UTILS_DIR, "memprof_flame.py")
if UTILS_DIR not in sys.path:
    sys.path.insert(0, UTILS_DIR)

import memprof_flame as mf  # noqa: E402

SVG_NS = "{http://www.w3.org/2000/svg}"


def prefix(name, depth, keys, bytes_, error=0):
    return {"prefix": name, "depth": depth, "keys": keys, "bytes": bytes_, "error_bytes": error}


def sample_report():
    """The README's worked example, with a hash and a counter."""
    return {
        "status": "ok", "source": "bgsave", "time": 1795381815, "duration_ms": 85,
        "used_memory": 2318728, "keys": 7102, "bytes": 1259928,
        "types": {"string": {"keys": 7101, "bytes": 1159928}, "hash": {"keys": 1, "bytes": 100000}},
        "dbs": {"db0": {"keys": 7102, "bytes": 1259928}},
        "ttl": {"none": {"keys": 7099, "bytes": 1259136}, "1h": {"keys": 3, "bytes": 792}},
        "topkeys": [
            {"key": "app:big", "db": 0, "type": "hash", "encoding": "hashtable", "bytes": 100000,
             "elements": 2000, "ttl_ms": -1},
            {"key": "cache:page:1", "db": 0, "type": "string", "encoding": "raw", "bytes": 1056,
             "elements": 1000, "ttl_ms": -1},
            {"key": "app:user:1", "db": 0, "type": "string", "encoding": "embstr", "bytes": 112,
             "elements": 64, "ttl_ms": -1},
            {"key": "counter", "db": 0, "type": "string", "encoding": "int", "bytes": 32,
             "elements": 1, "ttl_ms": -1},
        ],
        "prefixes": [
            prefix("app:", 1, 7001, 1154296),
            prefix("cache:", 1, 100, 105600),
            prefix("", 1, 1, 32),
            prefix("app:user:", 2, 5000, 560000),
            prefix("app:session:", 2, 2000, 494296),
            prefix("cache:page:", 2, 100, 105600),
        ],
        "breakdown": {"mem_kv_user_data": 1259928, "mem_rss": 4000000},
    }


class RespTest(unittest.TestCase):
    def test_resp3_map_nested(self):
        data = (b"%3\r\n+status\r\n+ok\r\n$5\r\nbytes\r\n:1259928\r\n"
                b"$8\r\nprefixes\r\n*1\r\n%2\r\n+prefix\r\n$4\r\napp:\r\n+depth\r\n:1\r\n")
        value, pos = mf.parse_resp(data)
        self.assertEqual(pos, len(data))
        self.assertEqual(value, {"status": "ok", "bytes": 1259928,
                                 "prefixes": [{"prefix": "app:", "depth": 1}]})

    def test_resp_scalars(self):
        self.assertEqual(mf.parse_resp(b",1.5\r\n")[0], 1.5)
        self.assertEqual(mf.parse_resp(b"#t\r\n")[0], True)
        self.assertIsNone(mf.parse_resp(b"_\r\n")[0])
        self.assertIsNone(mf.parse_resp(b"$-1\r\n")[0])
        self.assertEqual(mf.parse_resp(b"(12345678901234567890\r\n")[0], 12345678901234567890)
        self.assertEqual(mf.parse_resp(b"=8\r\ntxt:abcd\r\n")[0], "abcd")
        self.assertEqual(mf.parse_resp(b"~2\r\n:1\r\n:2\r\n")[0], [1, 2])

    def test_resp_error_and_binary(self):
        err, _ = mf.parse_resp(b"-NOPERM no\r\n")
        self.assertIsInstance(err, mf.RespError)
        value, _ = mf.parse_resp(b"$3\r\na\xffb\r\n")
        self.assertEqual(value.encode("utf-8", "surrogateescape"), b"a\xffb")
        self.assertEqual(mf.display(value), "a\\xffb")
        self.assertEqual(mf.display("a\nb"), "a\\x0ab")

    def test_resp_partial(self):
        with self.assertRaises(IndexError):
            mf.parse_resp(b"$10\r\nabc")
        with self.assertRaises(ValueError):
            mf.parse_resp(b"*2\r\n:1\r")

    def test_encode(self):
        self.assertEqual(mf.encode_command("GET", "k"), b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n")


class TreeTest(unittest.TestCase):
    def test_nesting_and_rest(self):
        root = mf.build_tree(sample_report())
        self.assertEqual(root["bytes"], 1259928)
        names = [(c["kind"], c["prefix"]) for c in root["children"]]
        self.assertEqual(names, [("prefix", "app:"), ("prefix", "cache:"), ("prefix", "")])
        app = root["children"][0]
        self.assertEqual([c["prefix"] for c in app["children"]], ["app:user:", "app:session:", "app:"])
        rest = app["children"][-1]
        self.assertEqual(rest["kind"], "rest")
        self.assertEqual(rest["bytes"], 1154296 - 560000 - 494296)
        self.assertEqual(rest["keys"], 1)
        # cache:page: covers cache: entirely: no rest.
        self.assertEqual([c["kind"] for c in root["children"][1]["children"]], ["prefix"])

    def test_dropped_parent_and_root_rest(self):
        report = {"keys": 10, "bytes": 1000, "prefixes": [
            prefix("a:", 1, 5, 600), prefix("b:x:", 2, 2, 300), prefix("a:y:", 2, 1, 100),
            prefix("a:y:z:", 3, 1, 100), prefix("c:q:r:", 3, 1, 50)]}
        root = mf.build_tree(report)
        kinds = [(c["kind"], c["prefix"]) for c in root["children"]]
        # b: was dropped: b:x: hangs under the root; c:q:r: too; 400 - ... rest.
        self.assertIn(("prefix", "b:x:"), kinds)
        self.assertIn(("prefix", "c:q:r:"), kinds)
        self.assertEqual(root["children"][-1]["kind"], "rest")
        self.assertEqual(root["children"][-1]["bytes"], 1000 - 600 - 300 - 50)
        a = root["children"][0]
        self.assertEqual(a["children"][0]["prefix"], "a:y:")
        self.assertEqual(a["children"][0]["children"][0]["prefix"], "a:y:z:")

    def test_delimiters(self):
        self.assertEqual(mf.infer_delimiters([prefix("a:", 1, 1, 1), prefix("a:b/", 2, 1, 1), prefix("", 1, 1, 1)]),
                         "/:")
        self.assertEqual(mf.cut_prefix("a:b/c:d", 2, ":/"), "a:b/")
        self.assertIsNone(mf.cut_prefix("abc", 1, ":"))
        # An empty segment: "x::" at depth 2 sits on "x:".
        root = mf.build_tree({"keys": 1, "bytes": 10, "prefixes": [prefix("x:", 1, 1, 10), prefix("x::", 2, 1, 10)]})
        self.assertEqual(root["children"][0]["children"][0]["prefix"], "x::")

    def test_types(self):
        report = sample_report()
        root = mf.build_tree(report)
        mf.assign_types(root, report)
        by_name = {n["prefix"]: n for n in mf.iter_nodes(root) if n["kind"] == "prefix"}
        # The hash's one key is listed (complete); strings are the only
        # incomplete type, so every unlisted byte is a string's.
        self.assertEqual(by_name["cache:"]["type"], "string")
        self.assertEqual(by_name[""]["type"], "string")
        self.assertEqual(by_name["app:session:"]["type"], "string")
        self.assertEqual(by_name["app:"]["type"], "string")  # 1054296 of 1154296 bytes
        single = {"keys": 1, "bytes": 5, "types": {"set": {"keys": 1, "bytes": 5}, "hash": {"keys": 0, "bytes": 0}},
                  "prefixes": [prefix("s:", 1, 1, 5)]}
        root = mf.build_tree(single)
        mf.assign_types(root, single)
        self.assertEqual(root["children"][0]["type"], "set")

    def test_types_unknown_when_two_types_are_incomplete(self):
        report = sample_report()
        report["types"]["hash"]["keys"] = 50  # 49 hashes not listed
        root = mf.build_tree(report)
        mf.assign_types(root, report)
        by_name = {n["prefix"]: n for n in mf.iter_nodes(root) if n["kind"] == "prefix"}
        self.assertIsNone(by_name["app:session:"]["type"])  # no listed key under it
        self.assertIsNone(by_name["app:"]["type"])
        # cache:page:1 is listed, but 1056 of 105600 bytes prove nothing.
        self.assertIsNone(by_name["cache:"]["type"])
        report["topkeys"].append({"key": "cache:page:big", "db": 0, "type": "string", "encoding": "raw",
                                  "bytes": 90000, "elements": 1, "ttl_ms": -1})
        root = mf.build_tree(report)
        mf.assign_types(root, report)
        by_name = {n["prefix"]: n for n in mf.iter_nodes(root) if n["kind"] == "prefix"}
        self.assertEqual(by_name["cache:"]["type"], "string")  # 91056 >= 80% of 105600


class LayoutTest(unittest.TestCase):
    def test_widths_proportional(self):
        report = sample_report()
        root = mf.build_tree(report)
        scale = mf.layout(root, 1000)
        self.assertAlmostEqual(scale, 1000.0 / 1259928)
        for node in mf.iter_nodes(root):
            self.assertAlmostEqual(node["w"], node["bytes"] * scale, places=6)
            for child in node["children"]:
                self.assertGreaterEqual(child["x"] + 1e-9, node["x"])
                self.assertLessEqual(child["x"] + child["w"], node["x"] + node["w"] + 1e-6)

    def test_overestimate_scaled(self):
        report = {"keys": 3, "bytes": 100, "prefixes": [
            prefix("a:", 1, 3, 100), prefix("a:b:", 2, 2, 80, 30), prefix("a:c:", 2, 2, 60, 30)]}
        root = mf.build_tree(report)
        mf.layout(root, 100)
        a = root["children"][0]
        self.assertAlmostEqual(sum(c["w"] for c in a["children"]), 100.0)
        self.assertTrue(all(c["scaled"] for c in a["children"]))

    def test_empty_report(self):
        root = mf.build_tree({"keys": 0, "bytes": 0, "prefixes": []})
        mf.layout(root, 500)
        ET.fromstring(mf.render_svg({"bytes": 0}, root, 500).encode())


class RenderTest(unittest.TestCase):
    def render(self, report):
        root = mf.build_tree(report)
        mf.assign_types(root, report)
        mf.layout(root, 1000)
        return mf.render_svg(report, root, 1000, "t <&>")

    def test_svg_parses_one_rect_per_prefix(self):
        report = sample_report()
        svg = self.render(report)
        tree = ET.fromstring(svg.encode())
        rects = [r for r in tree.iter(SVG_NS + "rect") if r.get("class") == "prefix"]
        self.assertEqual(len(rects), len(report["prefixes"]))
        for r in rects:
            self.assertAlmostEqual(float(r.get("width")), int(r.get("data-bytes")) * 1000.0 / report["bytes"],
                                   delta=0.01)
        titles = [t.text for t in tree.iter(SVG_NS + "title")]
        self.assertTrue(any("app:user:" in t and "keys: 5000" in t and "bytes: 560000" in t for t in titles))
        self.assertEqual(len(list(tree.iter(SVG_NS + "script"))), 1)

    def test_svg_escapes_names(self):
        report = {"keys": 2, "bytes": 100, "prefixes": [prefix("<a&\"b>:", 1, 1, 60), prefix("k\x01:", 1, 1, 40)]}
        tree = ET.fromstring(self.render(report).encode())
        names = sorted(r.get("data-prefix") for r in tree.iter(SVG_NS + "rect") if r.get("class") == "prefix")
        self.assertEqual(names, ["<a&\"b>:", "k\\x01:"])

    def test_html(self):
        report = sample_report()
        root = mf.build_tree(report)
        mf.layout(root, 1000)
        page = mf.render_html(report, mf.render_svg(report, root, 1000, "x", search_box=False), "x")
        self.assertIn("<svg id=\"memprof-flame\"", page)
        self.assertEqual(page.count('id="memprof-search"'), 1)
        self.assertNotIn("foreignObject", page)
        self.assertNotIn("<?xml", page)
        for heading in ("Types", "Prefixes", "Largest keys", "TTL horizon", "Breakdown"):
            self.assertIn("<h2>%s" % heading, page)


class CommandLineTest(unittest.TestCase):
    def test_json_file(self):
        with tempfile.TemporaryDirectory() as d:
            src = os.path.join(d, "r.json")
            with open(src, "w") as f:
                json.dump(sample_report(), f)
            svg, page = os.path.join(d, "f.svg"), os.path.join(d, "f.html")
            result = subprocess.run([sys.executable, SCRIPT, "--json", src, "--svg", svg, "--html", page],
                                    capture_output=True, text=True)
            self.assertEqual(result.returncode, 0, result.stderr)
            ET.parse(svg)
            self.assertTrue(os.path.getsize(page) > 0)

    def test_no_profile(self):
        with tempfile.TemporaryDirectory() as d:
            src = os.path.join(d, "r.json")
            with open(src, "w") as f:
                json.dump({"status": "none", "bytes": 0, "keys": 0, "prefixes": []}, f)
            result = subprocess.run([sys.executable, SCRIPT, "--json", src, "--svg", os.path.join(d, "f.svg")],
                                    capture_output=True, text=True)
            self.assertEqual(result.returncode, 1)
            self.assertIn("no profile", result.stderr)


if __name__ == "__main__":
    unittest.main()
