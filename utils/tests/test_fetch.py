"""Tests of deps/fetch.sh and deps/pin.sh that need no network.

Each test lays out a small Debian archive of its own under a temporary
folder (dists/ with a Release file signed by a throwaway key, a Sources
index, and pool/), names it through file: URIs (PIN_ARCHIVES,
PIN_SECURITY_ARCHIVES, PIN_KEYRING), and runs the real scripts with apt's
real tools against it.

Run from the repository root:
    python3 -m unittest discover -s utils/tests -t utils -v
"""

import email.utils
import hashlib
import io
import os
import shutil
import subprocess
import tarfile
import tempfile
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FETCH = os.path.join(ROOT, "deps", "fetch.sh")
PIN = os.path.join(ROOT, "deps", "pin.sh")

UPSTREAM = "1.0+dfsg1"
ORIG = f"valkey_{UPSTREAM}.orig.tar.xz"
HELLO = "int main(void) {\n    return 0;\n}\n"
# Our hook patch: changes the line that revision -3's security patch changes too.
OUR_PATCH = """\
Description: a hook
--- a/src/hello.c
+++ b/src/hello.c
@@ -1,3 +1,3 @@
 int main(void) {
-    return 0;
+    return hook();
 }
"""
CVE_PATCH = """\
--- a/src/hello.c
+++ b/src/hello.c
@@ -1,3 +1,3 @@
 int main(void) {
-    return 0;
+    return check();
 }
"""


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def tar_xz(members):
    """A .tar.xz of {path: text}."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:xz") as tar:
        for path, text in members.items():
            data = text.encode()
            info = tarfile.TarInfo(path)
            info.size = len(data)
            info.mtime = 1700000000
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def debian_tarball(revision):
    """The debian/ tarball of a revision; -3 carries a security patch."""
    members = {"debian/changelog": f"valkey ({revision}) unstable; urgency=medium\n"}
    if revision.endswith("-3"):
        members["debian/patches/series"] = "CVE-2099-0001.patch\ndebian-packaging/0001-defaults.patch\n"
        members["debian/patches/CVE-2099-0001.patch"] = CVE_PATCH
    else:
        members["debian/patches/series"] = "debian-packaging/0001-defaults.patch\n"
    members["debian/patches/debian-packaging/0001-defaults.patch"] = "not applied by the build\n"
    return tar_xz(members)


ORIG_DATA = tar_xz({f"valkey-{UPSTREAM}/src/hello.c": HELLO, f"valkey-{UPSTREAM}/README": "valkey\n"})


def revision_files(version):
    """{name: bytes} of one revision: its .dsc, orig and debian tarballs."""
    deb = debian_tarball(version)
    files = {ORIG: ORIG_DATA, f"valkey_{version}.debian.tar.xz": deb}
    dsc = f"Format: 3.0 (quilt)\nSource: valkey\nVersion: {version}\nChecksums-Sha256:\n"
    for name, data in files.items():
        dsc += f" {sha256(data)} {len(data)} {name}\n"
    files[f"valkey_{version}.dsc"] = dsc.encode()
    return files


class Archive:
    """A Debian-shaped archive pair (main and security) under a folder."""

    def __init__(self, root, gnupg):
        self.root = root
        self.gnupg = gnupg
        self.main = os.path.join(root, "debian")
        self.security = os.path.join(root, "debian-security")

    def pool(self, security):
        if security:
            return os.path.join(self.security, "pool", "updates", "main", "v", "valkey")
        return os.path.join(self.main, "pool", "main", "v", "valkey")

    def put_pool(self, version, security=False, only=None, replace=None):
        """Put a revision's files in a pool (only: those names; replace: {name: bytes})."""
        d = self.pool(security)
        os.makedirs(d, exist_ok=True)
        for name, data in revision_files(version).items():
            if only is not None and name not in only:
                continue
            data = (replace or {}).get(name, data)
            with open(os.path.join(d, name), "wb") as f:
                f.write(data)

    def write_index(self, suite, versions, security=False):
        """dists/SUITE with a Sources index listing versions, signed."""
        base = self.security if security else self.main
        directory = "pool/updates/main/v/valkey" if security else "pool/main/v/valkey"
        stanzas = []
        for v in versions:
            files = revision_files(v)
            s = f"Package: valkey\nBinary: valkey-server\nVersion: {v}\nFormat: 3.0 (quilt)\n"
            s += f"Directory: {directory}\nFiles:\n"
            for name, data in files.items():
                s += f" {hashlib.md5(data).hexdigest()} {len(data)} {name}\n"
            s += "Checksums-Sha256:\n"
            for name, data in files.items():
                s += f" {sha256(data)} {len(data)} {name}\n"
            stanzas.append(s)
        # Another package around ours, as in a real index.
        stanzas.insert(0, "Package: other\nVersion: 1\nDirectory: pool/main/o/other\n"
                          "Checksums-Sha256:\n 00 1 other_1.dsc\n")
        sources = "\n".join(stanzas).encode()
        dists = os.path.join(base, "dists", suite)
        os.makedirs(os.path.join(dists, "main", "source"), exist_ok=True)
        with open(os.path.join(dists, "main", "source", "Sources"), "wb") as f:
            f.write(sources)
        release = (f"Origin: Debian\nLabel: Debian\nSuite: {suite}\nCodename: {suite}\n"
                   f"Date: {email.utils.formatdate(usegmt=True)}\n"
                   f"Architectures: amd64 source\nComponents: main\nSHA256:\n"
                   f" {sha256(sources)} {len(sources)} main/source/Sources\n")
        with open(os.path.join(dists, "Release"), "w") as f:
            f.write(release)
        inrelease = os.path.join(dists, "InRelease")
        if os.path.exists(inrelease):
            os.unlink(inrelease)
        subprocess.run(["gpg", "--homedir", self.gnupg, "--batch", "--yes", "--clearsign",
                        "-o", inrelease, os.path.join(dists, "Release")],
                       check=True, capture_output=True)


def pin_env(version, debian_sha=None, orig_sha=None):
    deb = f"valkey_{version}.debian.tar.xz"
    files = revision_files(version)
    return {
        "DEBIAN_VERSION": version,
        "DEBIAN_SUITE": "trixie",
        "ORIG_TARBALL": ORIG,
        "ORIG_SHA256": orig_sha or sha256(files[ORIG]),
        "DEBIAN_TARBALL": deb,
        "DEBIAN_SHA256": debian_sha or sha256(files[deb]),
    }


class FetchTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.keydir = tempfile.mkdtemp(prefix="fetch-key-")
        cls.gnupg = os.path.join(cls.keydir, "g")
        os.makedirs(cls.gnupg, mode=0o700)
        subprocess.run(["gpg", "--homedir", cls.gnupg, "--batch", "--pinentry-mode", "loopback",
                        "--passphrase", "", "--quick-gen-key", "Fetch Test <fetch-test@example.invalid>",
                        "ed25519", "sign", "never"], check=True, capture_output=True)
        cls.keyring = os.path.join(cls.keydir, "keyring.gpg")
        with open(cls.keyring, "wb") as f:
            f.write(subprocess.run(["gpg", "--homedir", cls.gnupg, "--export"],
                                   check=True, capture_output=True).stdout)

    @classmethod
    def tearDownClass(cls):
        subprocess.run(["gpgconf", "--homedir", cls.gnupg, "--kill", "gpg-agent"], capture_output=True)
        shutil.rmtree(cls.keydir, ignore_errors=True)

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="fetch-test-")
        self.archive = Archive(os.path.join(self.tmp, "mirror"), self.gnupg)
        self.out = os.path.join(self.tmp, "dl")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def run_script(self, args, pin, extra=None):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("VALKEY_", "PIN_"))}
        env.update(pin)
        env.update({
            "PIN_ARCHIVES": "file:" + self.archive.main,
            "PIN_SECURITY_ARCHIVES": "file:" + self.archive.security,
            "PIN_KEYRING": self.keyring,
        })
        env.update(extra or {})
        return subprocess.run(["sh"] + args, env=env, capture_output=True, text=True, timeout=120)

    def fetch(self, pin, extra=None):
        return self.run_script([FETCH, self.out], pin, extra)

    def assert_fetched(self, r, version):
        self.assertEqual(r.returncode, 0, r.stderr)
        for name in (ORIG, f"valkey_{version}.debian.tar.xz"):
            with open(os.path.join(self.out, name), "rb") as f:
                self.assertEqual(sha256(f.read()), sha256(revision_files(version)[name]))

    def test_pin_listed_uses_apt_source(self):
        self.archive.put_pool("1.0+dfsg1-1")
        self.archive.write_index("trixie", ["1.0+dfsg1-1"])
        self.archive.write_index("trixie-security", [], security=True)
        r = self.fetch(pin_env("1.0+dfsg1-1"))
        self.assert_fetched(r, "1.0+dfsg1-1")
        self.assertIn("verified (apt-get source valkey=1.0+dfsg1-1)", r.stderr)
        self.assertNotIn("notice", r.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.out, "notice")))

    def test_pin_unlisted_but_in_pool(self):
        # The index moved on to a security revision; the pinned files stay in the pool.
        self.archive.put_pool("1.0+dfsg1-1")
        self.archive.put_pool("1.0+dfsg1-2", security=True)
        self.archive.write_index("trixie", [])
        self.archive.write_index("trixie-security", ["1.0+dfsg1-2"], security=True)
        r = self.fetch(pin_env("1.0+dfsg1-1"))
        self.assert_fetched(r, "1.0+dfsg1-1")
        self.assertIn("verified (pool)", r.stderr)
        self.assertIn(f"from the pool: file:{self.archive.main}/pool/main/v/valkey/valkey_1.0+dfsg1-1.debian.tar.xz",
                      r.stderr)
        self.assertIn("notice: Debian's trixie-security lists valkey 1.0+dfsg1-2, newer than the pinned 1.0+dfsg1-1",
                      r.stderr)

    def test_pin_in_security_pool_only(self):
        self.archive.put_pool("1.0+dfsg1-1", security=True)
        self.archive.write_index("trixie", [])
        self.archive.write_index("trixie-security", [], security=True)
        r = self.fetch(pin_env("1.0+dfsg1-1"))
        self.assert_fetched(r, "1.0+dfsg1-1")
        self.assertIn(f"file:{self.archive.security}/pool/updates/main/v/valkey/", r.stderr)

    def test_suite_without_security_archive(self):
        # Unstable (the 9.1 pin) has no security archive: none is asked for,
        # the pin comes from the pool when its index moved on, and an error
        # names no security pool.
        self.archive.put_pool("1.0-1")
        self.archive.put_pool("1.0-2")
        self.archive.write_index("sid", ["1.0-2"])
        pin = dict(pin_env("1.0-1"), DEBIAN_SUITE="sid", DEBIAN_SECURITY="no")
        r = self.fetch(pin)
        self.assert_fetched(r, "1.0-1")
        self.assertIn("verified (pool)", r.stderr)
        self.assertNotIn("sid-security", r.stderr)
        self.assertIn("notice: Debian's sid lists valkey 1.0-2, newer than the pinned 1.0-1", r.stderr)
        with open(os.path.join(self.out, "apt", "sources.list")) as f:
            self.assertNotIn("security", f.read())
        shutil.rmtree(self.out)
        r = self.fetch(dict(pin_env("1.0-3"), DEBIAN_SUITE="sid", DEBIAN_SECURITY="no"))
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("the index of sid does not list 1.0-3", r.stderr)
        self.assertNotIn("pool/updates", r.stderr)
        self.assertIn("the index offers instead: 1.0-2 (sid)", r.stderr)

    def test_pin_gone_everywhere(self):
        self.archive.put_pool("1.0+dfsg1-2")
        self.archive.put_pool("1.0+dfsg1-1", only={ORIG})  # the orig stays, the debian tarball is gone
        self.archive.write_index("trixie", ["1.0+dfsg1-2"])
        self.archive.write_index("trixie-security", [], security=True)
        pin = pin_env("1.0+dfsg1-1")
        r = self.fetch(pin)
        self.assertNotEqual(r.returncode, 0)
        err = r.stderr
        self.assertIn(f"cannot obtain valkey_1.0+dfsg1-1.debian.tar.xz (sha256 {pin['DEBIAN_SHA256']})", err)
        self.assertIn(f"file:{self.archive.main}/pool/main/v/valkey/valkey_1.0+dfsg1-1.debian.tar.xz", err)
        self.assertIn(f"file:{self.archive.security}/pool/updates/main/v/valkey/valkey_1.0+dfsg1-1.debian.tar.xz", err)
        self.assertIn("the index offers instead: 1.0+dfsg1-2 (trixie)", err)
        self.assertIn("make pin-bump", err)

    def test_newer_revision_notice(self):
        self.archive.put_pool("1.0+dfsg1-1")
        self.archive.put_pool("1.0+dfsg1-2")
        self.archive.write_index("trixie", ["1.0+dfsg1-1", "1.0+dfsg1-2"])
        self.archive.write_index("trixie-security", [], security=True)
        r = self.fetch(pin_env("1.0+dfsg1-1"))
        self.assert_fetched(r, "1.0+dfsg1-1")
        notice = [line for line in r.stderr.splitlines() if line.startswith("notice:")]
        self.assertEqual(len(notice), 1, r.stderr)
        self.assertIn("trixie lists valkey 1.0+dfsg1-2, newer than the pinned 1.0+dfsg1-1", notice[0])
        with open(os.path.join(self.out, "notice")) as f:
            self.assertEqual(f.read().strip(), notice[0])

    def test_wrong_sum_listed(self):
        # The index lists the pin, but the pin's sum is not the file's.
        self.archive.put_pool("1.0+dfsg1-1")
        self.archive.write_index("trixie", ["1.0+dfsg1-1"])
        self.archive.write_index("trixie-security", [], security=True)
        bad = "0" * 64
        r = self.fetch(pin_env("1.0+dfsg1-1", debian_sha=bad))
        self.assertNotEqual(r.returncode, 0)
        real = sha256(revision_files("1.0+dfsg1-1")["valkey_1.0+dfsg1-1.debian.tar.xz"])
        self.assertIn("checksum mismatch for valkey_1.0+dfsg1-1.debian.tar.xz", r.stderr)
        self.assertIn(f"expected: {bad}", r.stderr)
        self.assertIn(f"actual:   {real}", r.stderr)

    def test_wrong_sum_in_pool(self):
        # Not listed; the pool has a file of that name with other content.
        other = b"not the pinned tarball"
        self.archive.put_pool("1.0+dfsg1-1", replace={"valkey_1.0+dfsg1-1.debian.tar.xz": other})
        self.archive.write_index("trixie", [])
        self.archive.write_index("trixie-security", [], security=True)
        pin = pin_env("1.0+dfsg1-1")
        r = self.fetch(pin)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(f"cannot obtain valkey_1.0+dfsg1-1.debian.tar.xz (sha256 {pin['DEBIAN_SHA256']})", r.stderr)
        self.assertIn(f"a file by that name has sha256 {sha256(other)} at file:{self.archive.main}", r.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.out, "valkey_1.0+dfsg1-1.debian.tar.xz")))

    def test_offline_source_dir(self):
        src = os.path.join(self.tmp, "src")
        os.makedirs(src)
        for name, data in revision_files("1.0+dfsg1-1").items():
            with open(os.path.join(src, name), "wb") as f:
                f.write(data)
        # No archive exists at all: the offline path must not need one.
        r = self.fetch(pin_env("1.0+dfsg1-1"), {"VALKEY_SOURCE_DIR": src})
        self.assert_fetched(r, "1.0+dfsg1-1")
        self.assertIn("verified (offline)", r.stderr)
        r = self.fetch(pin_env("1.0+dfsg1-1", orig_sha="1" * 64), {"VALKEY_SOURCE_DIR": src})
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(f"checksum mismatch for {ORIG}", r.stderr)
        self.assertIn(f"actual:   {sha256(ORIG_DATA)}", r.stderr)

    def patches(self):
        pdir = os.path.join(self.tmp, "proj", "patches", "1.0")
        os.makedirs(pdir, exist_ok=True)
        with open(os.path.join(pdir, "series"), "w") as f:
            f.write("0001-hook.patch\n")
        with open(os.path.join(pdir, "0001-hook.patch"), "w") as f:
            f.write(OUR_PATCH)
        return pdir

    def pin_file(self, version):
        path = os.path.join(self.tmp, "pin.mk")
        pin = pin_env(version)
        with open(path, "w") as f:
            f.write("# The pin.\nVALKEY_UPSTREAM_VERSION = 0.9\n")
            for k in ("DEBIAN_VERSION", "DEBIAN_SUITE", "ORIG_TARBALL", "ORIG_SHA256",
                      "DEBIAN_TARBALL", "DEBIAN_SHA256"):
                f.write(f"{k} = {pin[k]}\n")
        return path

    def pin(self, cmd, version):
        path = self.pin_file(version)
        r = self.run_script([PIN, cmd, os.path.join(self.tmp, "state")], pin_env(version),
                            {"PIN_FILE": path, "PIN_PATCHES": self.patches()})
        with open(path) as f:
            return r, f.read()

    def test_pin_status(self):
        self.archive.put_pool("1.0+dfsg1-1")
        self.archive.put_pool("1.0+dfsg1-2")
        self.archive.put_pool("1.0+dfsg1-3", security=True)
        self.archive.write_index("trixie", ["1.0+dfsg1-2"])
        self.archive.write_index("trixie-security", ["1.0+dfsg1-3"], security=True)
        r, _ = self.pin("status", "1.0+dfsg1-1")
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.splitlines()
        self.assertEqual(lines, [
            "pin: pinned valkey 1.0+dfsg1-1 (trixie): listed in no index; downloadable: yes",
            "pin: trixie newest 1.0+dfsg1-2 (newer than the pin); downloadable: yes; patches apply: yes",
            "pin: trixie-security newest 1.0+dfsg1-3 (newer than the pin); downloadable: yes; "
            "patches apply: no (patch 0001-hook.patch does not apply)",
        ], r.stdout + r.stderr)

    def test_pin_bump_skips_what_does_not_apply(self):
        # -3 is newest but our patch does not apply after its security patch;
        # -4 is listed but not downloadable: the bump takes -2.
        self.archive.put_pool("1.0+dfsg1-1")
        self.archive.put_pool("1.0+dfsg1-2")
        self.archive.put_pool("1.0+dfsg1-3", security=True)
        self.archive.write_index("trixie", ["1.0+dfsg1-2", "1.0+dfsg1-4"])
        self.archive.write_index("trixie-security", ["1.0+dfsg1-3"], security=True)
        r, text = self.pin("bump", "1.0+dfsg1-1")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("bumped 1.0+dfsg1-1 -> 1.0+dfsg1-2", r.stderr)
        new = pin_env("1.0+dfsg1-2")
        for k in ("DEBIAN_VERSION", "ORIG_TARBALL", "ORIG_SHA256", "DEBIAN_TARBALL", "DEBIAN_SHA256"):
            self.assertIn(f"{k} = {new[k]}\n", text)
        self.assertIn("VALKEY_UPSTREAM_VERSION = 1.0\n", text)
        self.assertTrue(text.startswith("# The pin.\n"))

    def test_pin_bump_nothing_usable(self):
        self.archive.put_pool("1.0+dfsg1-1")
        self.archive.write_index("trixie", ["1.0+dfsg1-2"])  # listed, files missing
        self.archive.write_index("trixie-security", [], security=True)
        r, text = self.pin("bump", "1.0+dfsg1-1")
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("the pin stays at 1.0+dfsg1-1", r.stderr)
        self.assertIn("1.0+dfsg1-2: downloadable: no (not in any archive's pool: valkey_1.0+dfsg1-2.dsc", r.stderr)
        self.assertIn("DEBIAN_VERSION = 1.0+dfsg1-1\n", text)
        # Already the newest: nothing to do, exit 0.
        self.archive.write_index("trixie", ["1.0+dfsg1-1"])
        r, text = self.pin("bump", "1.0+dfsg1-1")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("is the newest revision listed; nothing to do", r.stderr)


if __name__ == "__main__":
    unittest.main()
