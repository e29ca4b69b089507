#!/usr/bin/env python3
"""Draw a flame graph of memory by key prefix from MEMORY PROFILE REPORT.

Reads the deep profile (MEMORY PROFILE REPORT COUNT 0) from a running server
or from a JSON file (a JSON object with the REPORT's field names, as
`valkey-cli --json -3 MEMORY PROFILE REPORT COUNT 0` prints it), and writes:

  - a self-contained SVG flame graph: one rectangle per reported prefix,
    nested by depth (a depth-(d+1) prefix sits on its depth-d parent), width
    proportional to bytes, a tooltip with the prefix, keys and bytes, a
    search box, colours by type where one type dominates a prefix;
  - an HTML page with the same graph and the report's tables.

Usage:
  memprof_flame.py --host 127.0.0.1 --port 6379 [--user U --pass P] --svg f.svg --html f.html
  memprof_flame.py --json report.json --svg f.svg --html f.html

Python standard library only; the RESP client is built in (RESP3 through
HELLO 3). MEMORY PROFILE REPORT needs a user with @admin.
"""

import argparse
import html
import json
import os
import socket
import sys
import time

TYPES = ("string", "list", "set", "zset", "hash", "stream", "module")
TYPE_COLOURS = {
    "string": "#e8a33d",
    "list": "#5b9bd5",
    "set": "#70ad47",
    "zset": "#a66fc4",
    "hash": "#e05c5c",
    "stream": "#3fb8af",
    "module": "#8c8c8c",
}
REST_COLOUR = "#d9d9d9"
ROOT_COLOUR = "#b0b0b0"
# Share of a prefix's sampled bytes one type must hold to colour it.
DOMINANCE = 0.8
ROW_HEIGHT = 18
FONT_SIZE = 12
CHAR_WIDTH = 7.2  # monospace at FONT_SIZE, for cutting labels
MARGIN = 10
HEADER = 64


class FlameError(Exception):
    """Input that cannot be drawn, or a server that cannot be read."""


# ---------------------------------------------------------------- RESP client

class RespError(FlameError):
    """An error reply from the server."""


def parse_resp(buf, pos=0):
    """Parse one RESP2/RESP3 reply from bytes at pos.

    Returns (value, next_pos), or raises IndexError when buf holds only part
    of the reply. Strings are decoded as UTF-8 with surrogateescape (lossless
    for any byte); maps become dicts, arrays, sets and pushes lists; error
    replies are returned as RespError instances (not raised), so that a
    nested error does not lose the rest of the stream.
    """
    end = buf.index(b"\r\n", pos)
    kind, line = buf[pos:pos + 1], buf[pos + 1:end]
    pos = end + 2
    if kind in (b"+", b"-"):
        text = line.decode("utf-8", "surrogateescape")
        return (RespError(text) if kind == b"-" else text), pos
    if kind == b":":
        return int(line), pos
    if kind == b"(":
        return int(line), pos
    if kind == b",":
        text = line.decode().lower()
        return float({"inf": "inf", "-inf": "-inf"}.get(text, text)), pos
    if kind == b"#":
        return line == b"t", pos
    if kind == b"_":
        return None, pos
    if kind in (b"$", b"!", b"="):
        n = int(line)
        if n < 0:
            return None, pos
        if len(buf) < pos + n + 2:
            raise IndexError("partial bulk string")
        data = buf[pos:pos + n]
        pos += n + 2
        if kind == b"=":
            data = data[4:]  # "txt:" or "mkd:"
        text = data.decode("utf-8", "surrogateescape")
        return (RespError(text) if kind == b"!" else text), pos
    if kind in (b"*", b"~", b">"):
        n = int(line)
        if n < 0:
            return None, pos
        items = []
        for _ in range(n):
            item, pos = parse_resp(buf, pos)
            items.append(item)
        return items, pos
    if kind in (b"%", b"|"):
        n = int(line)
        result = {}
        for _ in range(n):
            key, pos = parse_resp(buf, pos)
            value, pos = parse_resp(buf, pos)
            result[key if not isinstance(key, list) else tuple(key)] = value
        if kind == b"|":  # an attribute: the reply follows it
            return parse_resp(buf, pos)
        return result, pos
    raise FlameError("unexpected RESP type byte %r" % kind)


def encode_command(*args):
    """One command as a RESP array of bulk strings."""
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


class Client:
    """A minimal blocking RESP client: one connection, one command at a time."""

    def __init__(self, host, port, timeout=30.0):
        try:
            self.sock = socket.create_connection((host, port), timeout=timeout)
        except OSError as e:
            raise FlameError("cannot connect to %s:%d: %s" % (host, port, e))
        self.buf = b""

    def call(self, *args):
        """Send a command, return its parsed reply; raise RespError on an error reply."""
        self.sock.sendall(encode_command(*args))
        while True:
            try:
                value, pos = parse_resp(self.buf)
            except (IndexError, ValueError):
                try:
                    chunk = self.sock.recv(1 << 16)
                except OSError as e:
                    raise FlameError("reading from the server: %s" % e)
                if not chunk:
                    raise FlameError("the server closed the connection")
                self.buf += chunk
                continue
            self.buf = self.buf[pos:]
            if isinstance(value, RespError):
                raise value
            return value

    def close(self):
        self.sock.close()


def fetch_report(host, port, user=None, password=None, timeout=30.0):
    """MEMORY PROFILE REPORT COUNT 0 from a server, and its prefix delimiters
    (None when CONFIG GET is not allowed)."""
    client = Client(host, port, timeout)
    try:
        hello = ["HELLO", "3"]
        if password is not None:
            hello += ["AUTH", user or "default", password]
        client.call(*hello)
        report = client.call("MEMORY", "PROFILE", "REPORT", "COUNT", "0")
        try:
            conf = client.call("CONFIG", "GET", "memory-profile-prefix-delimiters")
            delimiters = conf.get("memory-profile-prefix-delimiters") if isinstance(conf, dict) else None
        except RespError:
            delimiters = None
    finally:
        client.close()
    if not isinstance(report, dict):
        raise FlameError("MEMORY PROFILE REPORT did not return a map")
    return report, delimiters


def load_json_report(path):
    """A REPORT map from a JSON file (or '-' for standard input)."""
    try:
        if path == "-":
            data = json.load(sys.stdin)
        else:
            with open(path, encoding="utf-8", errors="surrogateescape") as f:
                data = json.load(f)
    except (OSError, ValueError) as e:
        raise FlameError("cannot read %s: %s" % (path, e))
    if isinstance(data, dict) and "prefixes" not in data:
        # Tolerate a wrapper object holding the report as its only map.
        inner = [v for v in data.values() if isinstance(v, dict) and "prefixes" in v]
        if len(inner) == 1:
            data = inner[0]
    if not isinstance(data, dict) or "bytes" not in data:
        raise FlameError("%s does not hold a MEMORY PROFILE REPORT object" % path)
    return data


# ---------------------------------------------------------------- the tree

def infer_delimiters(prefixes):
    """The delimiter bytes as the report shows them: the last character of
    every non-empty prefix (a prefix ends with its last delimiter)."""
    return "".join(sorted({p["prefix"][-1] for p in prefixes if p.get("prefix")}))


def cut_prefix(name, depth, delimiters):
    """name up to and including its depth-th delimiter, or None when it has fewer."""
    seen = 0
    for i, ch in enumerate(name):
        if ch in delimiters:
            seen += 1
            if seen == depth:
                return name[:i + 1]
    return None


def new_node(kind, prefix, depth, keys, bytes_, error_bytes=0):
    return {"kind": kind, "prefix": prefix, "depth": depth, "keys": keys, "bytes": bytes_,
            "error_bytes": error_bytes, "children": [], "type": None, "type_source": None}


def build_tree(report, delimiters=None):
    """The prefix tree of a report: a root (all user data) whose children are
    the depth-1 prefixes, each holding its depth-2 prefixes, and so on.

    A depth-(d+1) prefix hangs under the depth-d prefix it starts with (its
    name cut after its d-th delimiter). When that parent is not in the report
    (the Space-Saving summary dropped it) the child hangs under the nearest
    listed ancestor, else under the root. Every node with children gets a
    "rest" child for the bytes its children do not cover (keys with no
    deeper prefix, or prefixes the summary dropped), when there are any.
    """
    prefixes = sorted(report.get("prefixes") or [], key=lambda p: (p["depth"], -p["bytes"]))
    if delimiters is None or delimiters == "":
        delimiters = infer_delimiters(prefixes)
    root = new_node("root", None, 0, report.get("keys", 0), report.get("bytes", 0))
    by_depth = {}
    for p in prefixes:
        node = new_node("prefix", p["prefix"], p["depth"], p.get("keys", 0), p["bytes"],
                        p.get("error_bytes", 0))
        parent = root
        name = p["prefix"]
        if name:
            for d in range(p["depth"] - 1, 0, -1):
                cut = cut_prefix(name, d, delimiters)
                candidate = by_depth.get(d, {}).get(cut) if cut else None
                if candidate is None and cut is None:
                    # Unknown delimiters: fall back to the longest listed prefix.
                    matches = [q for q, n in by_depth.get(d, {}).items() if q and name.startswith(q)]
                    candidate = by_depth[d][max(matches, key=len)] if matches else None
                if candidate is not None:
                    parent = candidate
                    break
        parent["children"].append(node)
        by_depth.setdefault(p["depth"], {})[name] = node
    add_rest(root)
    return root


def add_rest(node):
    """Add "rest" children wherever children do not cover their parent's bytes."""
    if not node["children"]:
        return
    for child in node["children"]:
        add_rest(child)
    covered = sum(c["bytes"] for c in node["children"])
    rest = node["bytes"] - covered
    if rest > 0:
        keys = max(0, node["keys"] - sum(c["keys"] for c in node["children"]))
        node["children"].append(new_node("rest", node["prefix"], node["depth"] + 1, keys, rest))


def iter_nodes(node):
    yield node
    for child in node["children"]:
        yield from iter_nodes(child)


def assign_types(root, report, delimiters=None):
    """Colour nodes by type where one type certainly dominates.

    A report has no per-prefix types; what it has is the largest keys of
    each type (topkeys) and each type's key count. A type whose keys are all
    listed is complete: under any prefix its bytes are known exactly. A
    prefix's bytes not covered by listed keys belong to incomplete types; when
    only one type is incomplete, they are that type's, exactly. A node takes a
    type when that type's known (lower-bound) bytes under it reach DOMINANCE
    of its bytes; otherwise it stays "mixed or unknown". Raising
    memory-profile-top-keys makes more types complete.
    """
    types = report.get("types") or {}
    present = [t for t, v in types.items() if v.get("bytes", 0) > 0]
    if len(present) == 1:
        for node in iter_nodes(root):
            node["type"], node["type_source"] = present[0], "the only type"
        return
    if delimiters is None or delimiters == "":
        delimiters = infer_delimiters(report.get("prefixes") or [])
    topkeys = report.get("topkeys") or []
    listed = {}
    for k in topkeys:
        listed[k["type"]] = listed.get(k["type"], 0) + 1
    incomplete = [t for t in present if listed.get(t, 0) < types[t].get("keys", 0)]
    for node in iter_nodes(root):
        if node["kind"] != "prefix" or node["bytes"] <= 0:
            continue
        prefix = node["prefix"]
        known = {}
        for k in topkeys:
            name = k.get("key", "")
            if prefix == "":
                under = cut_prefix(name[:128], 1, delimiters) is None
            else:
                under = name.startswith(prefix)
            if under:
                known[k["type"]] = known.get(k["type"], 0) + k["bytes"]
        rest = max(0, node["bytes"] - node.get("error_bytes", 0) - sum(known.values()))
        if len(incomplete) == 1 and rest:
            known[incomplete[0]] = known.get(incomplete[0], 0) + rest
        if known:
            best = max(known, key=known.get)
            if known[best] >= DOMINANCE * node["bytes"]:
                node["type"] = best
                node["type_source"] = "listed keys" if len(incomplete) != 1 else "listed keys and type totals"


def layout(root, width):
    """Give each node x and w in pixels: w = bytes * width / root bytes.

    Children are laid out left to right from their parent's left edge, in
    the report's order (largest first). If Space-Saving overestimates make
    children wider than their parent, they are scaled down to fit and marked.
    """
    total = root["bytes"]
    scale = float(width) / total if total > 0 else 0.0
    root["x"], root["w"], root["scaled"] = 0.0, width if total > 0 else 0.0, False

    def place(node, factor):
        x = node["x"]
        covered = sum(c["bytes"] for c in node["children"])
        child_factor = factor
        if covered > node["bytes"] > 0:
            child_factor = factor * node["bytes"] / covered
        for child in node["children"]:
            child["x"] = x
            child["w"] = child["bytes"] * scale * child_factor
            child["scaled"] = child_factor != 1.0
            x += child["w"]
            place(child, child_factor)

    place(root, 1.0)
    return scale


# ---------------------------------------------------------------- rendering

def display(text):
    """A name made printable for SVG/HTML: undecodable bytes and control
    characters as \\xNN escapes."""
    raw = text.encode("utf-8", "surrogateescape")
    out = []
    for ch in raw.decode("utf-8", "backslashreplace"):
        if ord(ch) < 0x20 or ord(ch) == 0x7f:
            out.append("\\x%02x" % ord(ch))
        else:
            out.append(ch)
    return "".join(out)


def human(n):
    """Bytes with a binary unit."""
    n = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return ("%d %s" % (n, unit)) if unit == "B" else ("%.1f %s" % (n, unit))
        n /= 1024.0


def node_label(node):
    if node["kind"] == "root":
        return "all user data"
    if node["kind"] == "rest":
        if node["prefix"] is None:
            return "(other prefixes)"
        return "%s (rest)" % (display(node["prefix"]) if node["prefix"] else '""')
    return display(node["prefix"]) if node["prefix"] != "" else "(no delimiter)"


def node_colour(node):
    if node["kind"] == "root":
        return ROOT_COLOUR
    if node["kind"] == "rest":
        return REST_COLOUR
    if node["type"] in TYPE_COLOURS:
        return TYPE_COLOURS[node["type"]]
    # No dominant type: a muted sand colour, varied a little by name and depth
    # so that neighbours stay apart.
    h = sum(node["prefix"].encode("utf-8", "surrogateescape")) % 12
    return "hsl(%d, 28%%, %d%%)" % (38 + h, 66 + (node["depth"] % 3) * 5)


def node_tooltip(node, total):
    share = 100.0 * node["bytes"] / total if total else 0.0
    lines = [node_label(node)]
    if node["kind"] == "rest":
        lines.append("bytes under %s not in a listed deeper prefix" % (
            '"%s"' % display(node["prefix"]) if node["prefix"] is not None else "the root"))
    lines.append("keys: %d" % node["keys"])
    lines.append("bytes: %d (%s, %.2f%%)" % (node["bytes"], human(node["bytes"]), share))
    if node["kind"] == "prefix":
        lines.append("depth: %d" % node["depth"])
        if node["error_bytes"]:
            lines.append("error_bytes: %d (the truth is in [bytes - error_bytes, bytes])" % node["error_bytes"])
        if node["type"]:
            lines.append("type: %s (from %s)" % (node["type"], node["type_source"]))
    if node.get("scaled"):
        lines.append("drawn scaled: the summary's overestimates exceed the parent")
    return "\n".join(lines)


SVG_SCRIPT = r"""
(function () {
  var svg = document.getElementById('memprof-flame');
  var input = document.getElementById('memprof-search');
  var status = document.getElementById('memprof-matched');
  var total = parseFloat(svg.getAttribute('data-total')) || 0;
  function human(n) {
    var units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    for (var i = 0; i < units.length; i++) {
      if (Math.abs(n) < 1024 || i === units.length - 1) return i ? n.toFixed(1) + ' ' + units[i] : n + ' B';
      n /= 1024;
    }
  }
  function search() {
    var term = (input && typeof input.value === 'string') ? input.value : '';
    var nodes = svg.querySelectorAll('rect.node');
    var matched = [];
    for (var i = 0; i < nodes.length; i++) {
      var r = nodes[i];
      var hit = term !== '' && r.getAttribute('data-prefix').indexOf(term) >= 0;
      r.setAttribute('class', hit ? 'node hit' : 'node');
      if (hit) matched.push(r);
    }
    // Bytes of matches that are not inside another match (a prefix's bytes
    // already hold its deeper prefixes').
    var bytes = 0;
    for (var j = 0; j < matched.length; j++) {
      var p = matched[j].getAttribute('data-prefix'), nested = false;
      for (var k = 0; k < matched.length; k++) {
        var q = matched[k].getAttribute('data-prefix');
        if (k !== j && q.length < p.length && p.indexOf(q) === 0 && q !== '') { nested = true; break; }
      }
      if (!nested) bytes += parseFloat(matched[j].getAttribute('data-bytes'));
    }
    if (status) {
      status.textContent = term === '' ? '' :
        'matched ' + matched.length + ' prefixes, ' + human(bytes) +
        (total ? ' (' + (100 * bytes / total).toFixed(1) + '%)' : '');
    }
  }
  if (input) input.addEventListener('input', search);
  var params = new URLSearchParams(window.location.search);
  if (input && params.get('s')) { input.value = params.get('s'); }
  search();
  svg.setAttribute('data-ready', '1');
})();
"""

SVG_STYLE = """
#memprof-flame text { font-family: DejaVu Sans Mono, monospace; font-size: %dpx; fill: #000; pointer-events: none; }
#memprof-flame text.heading { font-size: 16px; font-weight: bold; font-family: DejaVu Sans, sans-serif; }
#memprof-flame text.sub { font-size: 12px; fill: #444; font-family: DejaVu Sans, sans-serif; }
#memprof-flame rect { stroke: #ffffff; stroke-width: 0.5; }
#memprof-flame rect.hit { fill: #e040fb; }
#memprof-flame g.f:hover rect { stroke: #000; stroke-width: 1; }
#memprof-flame input { width: 220px; font-size: 12px; }
""" % FONT_SIZE


def render_svg(report, root, width=1200, title="Memory by key prefix", search_box=True):
    """The flame graph as a standalone SVG document (a string)."""
    nodes = list(iter_nodes(root))
    max_depth = max(n["depth"] for n in nodes)
    total = root["bytes"]
    graph_w = width
    svg_w = graph_w + 2 * MARGIN
    legend_h = 24
    svg_h = HEADER + (max_depth + 1) * ROW_HEIGHT + legend_h + MARGIN
    base_y = HEADER + max_depth * ROW_HEIGHT  # the root's row, at the bottom

    def esc(s):
        return html.escape(s, quote=True)

    out = []
    out.append('<?xml version="1.0" encoding="UTF-8" standalone="no"?>')
    out.append('<svg id="memprof-flame" xmlns="http://www.w3.org/2000/svg" '
               'xmlns:xhtml="http://www.w3.org/1999/xhtml" version="1.1" '
               'width="%d" height="%d" viewBox="0 0 %d %d" data-total="%d" data-graph-width="%d">'
               % (svg_w, svg_h, svg_w, svg_h, total, graph_w))
    out.append("<style>%s</style>" % SVG_STYLE)
    out.append('<rect x="0" y="0" width="%d" height="%d" fill="#fbfbf8" stroke="none"/>' % (svg_w, svg_h))
    out.append('<text class="heading" x="%d" y="22">%s</text>' % (MARGIN, esc(title)))
    when = report.get("time")
    sub = "%s keys, %s of user data (%d bytes); profile of %s, source %s, status %s" % (
        report.get("keys", 0), human(total), total,
        time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(when)) if when else "-",
        report.get("source", "-"), report.get("status", "-"))
    out.append('<text class="sub" x="%d" y="40">%s</text>' % (MARGIN, esc(sub)))
    out.append('<text class="sub" x="%d" y="56">width = bytes; hover for keys and bytes; '
               'grey: bytes not in a listed deeper prefix</text>' % MARGIN)
    if search_box:
        out.append('<foreignObject x="%d" y="8" width="300" height="48">'
                   '<xhtml:div style="font: 12px sans-serif; text-align: right">'
                   '<xhtml:input id="memprof-search" type="search" placeholder="search prefixes"/>'
                   '<xhtml:div id="memprof-matched" style="margin-top: 4px; color: #7b1fa2"></xhtml:div>'
                   '</xhtml:div></foreignObject>' % (svg_w - MARGIN - 300))

    for node in nodes:
        if node["w"] <= 0 and node["kind"] != "root":
            continue
        y = base_y - node["depth"] * ROW_HEIGHT
        x = MARGIN + node["x"]
        attrs = ['class="%s"' % node["kind"], 'x="%.3f"' % x, 'y="%d"' % y,
                 'width="%.3f"' % node["w"], 'height="%d"' % (ROW_HEIGHT - 1),
                 'fill="%s"' % node_colour(node)]
        if node["kind"] == "prefix":
            attrs += ['data-prefix="%s"' % esc(display(node["prefix"])), 'data-depth="%d"' % node["depth"],
                      'data-keys="%d"' % node["keys"], 'data-bytes="%d"' % node["bytes"],
                      'data-error-bytes="%d"' % node["error_bytes"]]
            if node["type"]:
                attrs.append('data-type="%s"' % node["type"])
        else:
            attrs.append('data-bytes="%d"' % node["bytes"])
        out.append('<g class="f"><title>%s</title><rect %s/>' % (esc(node_tooltip(node, total)), " ".join(attrs)))
        label = node_label(node)
        room = int((node["w"] - 6) / CHAR_WIDTH)
        if room >= 3:
            if len(label) > room:
                label = label[:room - 2] + ".."
            out.append('<text x="%.3f" y="%d">%s</text>' % (x + 3, y + ROW_HEIGHT - 5, esc(label)))
        out.append("</g>")

    # Legend: the type colours used.
    used = [t for t in TYPES if any(n["type"] == t for n in nodes)]
    lx = MARGIN
    ly = HEADER + (max_depth + 1) * ROW_HEIGHT + 8
    legend = [(TYPE_COLOURS[t], t) for t in used] + [("hsl(44, 28%, 71%)", "type mixed or not known"),
                                                     (REST_COLOUR, "rest")]
    for colour, name in legend:
        out.append('<rect x="%d" y="%d" width="12" height="12" fill="%s"/>' % (lx, ly, colour))
        out.append('<text class="sub" x="%d" y="%d">%s</text>' % (lx + 16, ly + 11, esc(name)))
        lx += 30 + int(len(name) * 7)
    out.append("<script><![CDATA[%s]]></script>" % SVG_SCRIPT)
    out.append("</svg>")
    return "\n".join(out) + "\n"


def html_table(headers, rows, numeric=()):
    out = ["<table><thead><tr>"]
    out += ["<th>%s</th>" % html.escape(h) for h in headers]
    out.append("</tr></thead><tbody>")
    for row in rows:
        out.append("<tr>")
        for i, cell in enumerate(row):
            cls = ' class="num"' if i in numeric else ""
            out.append("<td%s>%s</td>" % (cls, html.escape(str(cell))))
        out.append("</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def share(n, total):
    return "%.2f%%" % (100.0 * n / total) if total else "-"


def render_html(report, svg_text, title="Memory profile"):
    """An HTML page: the flame graph inline (render_svg with search_box=False:
    the page has its own search box), then the report's tables."""
    total = report.get("bytes", 0)
    parts = []
    svg_inline = svg_text.split("?>", 1)[1] if svg_text.startswith("<?xml") else svg_text
    when = report.get("time")
    summary = [
        ("status", report.get("status", "-")), ("source", report.get("source", "-")),
        ("time", time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(when)) if when else "-"),
        ("duration_ms", report.get("duration_ms", "-")), ("used_memory", report.get("used_memory", "-")),
        ("keys", report.get("keys", 0)), ("bytes", "%d (%s)" % (total, human(total))),
    ]
    parts.append("<h2>Summary</h2>" + html_table(["field", "value"], summary))

    def pairs_table(name, mapping, label):
        rows = [(k, v.get("keys", 0), v.get("bytes", 0), human(v.get("bytes", 0)), share(v.get("bytes", 0), total))
                for k, v in (mapping or {}).items()]
        if rows:
            parts.append("<h2>%s</h2>" % name + html_table([label, "keys", "bytes", "", "share"], rows, (1, 2, 4)))

    pairs_table("Types", report.get("types"), "type")
    pairs_table("Encodings", report.get("encodings"), "encoding")
    pairs_table("Databases", report.get("dbs"), "db")
    pairs_table("TTL horizon", report.get("ttl"), "bucket")
    breakdown = report.get("breakdown") or {}
    if breakdown:
        rss = breakdown.get("mem_rss", 0)
        rows = [(k, v, human(v), share(v, rss) if k not in ("mem_rss",) else "") for k, v in breakdown.items()]
        parts.append("<h2>Breakdown and RSS waterfall</h2><p>share of <code>mem_rss</code></p>"
                     + html_table(["figure", "bytes", "", "share of RSS"], rows, (1, 3)))
    prefixes = report.get("prefixes") or []
    if prefixes:
        rows = [(p["depth"], display(p["prefix"]) if p["prefix"] else "(no delimiter)", p.get("keys", 0), p["bytes"],
                 human(p["bytes"]), p.get("error_bytes", 0), share(p["bytes"], total)) for p in prefixes]
        parts.append("<h2>Prefixes</h2>" + html_table(
            ["depth", "prefix", "keys", "bytes", "", "error_bytes", "share"], rows, (0, 2, 3, 5, 6)))
    topkeys = report.get("topkeys") or []
    if topkeys:
        rows = [(display(k.get("key", "")), k.get("db", ""), k.get("type", ""), k.get("encoding", ""),
                 k.get("bytes", 0), human(k.get("bytes", 0)), k.get("elements", ""), k.get("ttl_ms", ""))
                for k in topkeys]
        parts.append("<h2>Largest keys</h2>" + html_table(
            ["key", "db", "type", "encoding", "bytes", "", "elements", "ttl_ms"], rows, (1, 4, 6, 7)))
    histograms = report.get("histograms") or {}
    rows = [(t, b.get("le"), b.get("keys", 0), b.get("bytes", 0), human(b.get("bytes", 0)))
            for t, buckets in histograms.items() for b in buckets]
    if rows:
        parts.append("<h2>Per-key size histograms</h2>" + html_table(
            ["type", "le (bytes)", "keys", "bytes", ""], rows, (1, 2, 3)))
    slots = report.get("slots") or []
    if slots:
        rows = [(s.get("slot"), s.get("keys", 0), s.get("bytes", 0), human(s.get("bytes", 0))) for s in slots]
        parts.append("<h2>Slots</h2>" + html_table(["slot", "keys", "bytes", ""], rows, (0, 1, 2)))

    return """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>%s</title>
<style>
body { font-family: DejaVu Sans, sans-serif; margin: 16px; color: #222; background: #fff; }
h1 { font-size: 20px; } h2 { font-size: 16px; margin-top: 24px; }
table { border-collapse: collapse; font-size: 13px; margin-bottom: 8px; }
th, td { border: 1px solid #ccc; padding: 2px 8px; text-align: left; }
th { background: #f0f0f0; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.graph { overflow-x: auto; }
</style></head>
<body>
<h1>%s</h1>
<p><input id="memprof-search" type="search" placeholder="search prefixes"> <span id="memprof-matched" style="color: #7b1fa2"></span></p>
<div class="graph">%s</div>
%s
<script>document.documentElement.setAttribute('data-ready', '1');</script>
</body></html>
""" % (html.escape(title), html.escape(title), svg_inline, "\n".join(parts))


def write_file(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="Flame graph of memory by key prefix from MEMORY PROFILE REPORT.")
    src = parser.add_mutually_exclusive_group()
    src.add_argument("--json", metavar="FILE", help="read the report from a JSON file ('-': standard input)")
    src.add_argument("--host", default=None, help="server host (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=6379, help="server port (default 6379)")
    parser.add_argument("--user", default=None, help="ACL user (with --pass)")
    parser.add_argument("--pass", dest="password", default=None,
                        help="password (or set the environment variable VALKEY_PASSWORD)")
    parser.add_argument("--svg", metavar="FILE", help="write the SVG flame graph here")
    parser.add_argument("--html", metavar="FILE", help="write the HTML page here")
    parser.add_argument("--width", type=int, default=1200, help="graph width in pixels (default 1200)")
    parser.add_argument("--delimiters", default=None,
                        help="prefix delimiters (default: the server's memory-profile-prefix-delimiters, "
                             "or inferred from the report)")
    parser.add_argument("--title", default=None, help="title of the graph")
    args = parser.parse_args(argv)
    if not args.svg and not args.html:
        args.svg, args.html = "memprof-flame.svg", "memprof-flame.html"
    if args.width < 100:
        parser.error("--width must be at least 100")
    if args.password is None:
        args.password = os.environ.get("VALKEY_PASSWORD")
    return args


def main(argv=None):
    args = parse_args(argv)
    try:
        if args.json:
            report, delimiters = load_json_report(args.json), None
            origin = os.path.basename(args.json) if args.json != "-" else "standard input"
        else:
            host = args.host or "127.0.0.1"
            report, delimiters = fetch_report(host, args.port, args.user, args.password)
            origin = "%s:%d" % (host, args.port)
        if args.delimiters is not None:
            delimiters = args.delimiters
        if report.get("status") == "none":
            raise FlameError("no profile published yet: run MEMORY PROFILE START (or BGSAVE STAT_MEMORY) first")
        title = args.title or "Memory by key prefix: %s" % origin
        root = build_tree(report, delimiters)
        assign_types(root, report, delimiters)
        layout(root, args.width)
        svg = render_svg(report, root, args.width, title)
        if args.svg:
            write_file(args.svg, svg)
            print(args.svg)
        if args.html:
            inline = render_svg(report, root, args.width, title, search_box=False)
            write_file(args.html, render_html(report, inline, title))
            print(args.html)
    except FlameError as e:
        print("memprof_flame: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
