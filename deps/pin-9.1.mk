# The pinned upstream: Valkey 9.1.2 as Debian's unstable source package ships
# it (also in forky). Its Debian series holds build patches only: there are
# no security patches to apply, and unstable has no security archive.
# `make pin-status BASE=9.1` compares it with what Debian lists; `make
# pin-bump BASE=9.1` rewrites the values below (sums from the signed index).
VALKEY_UPSTREAM_VERSION = 9.1.2
DEBIAN_VERSION          = 9.1.2-1
DEBIAN_SUITE            = sid
DEBIAN_SECURITY         = no
ORIG_TARBALL            = valkey_9.1.2.orig.tar.gz
ORIG_SHA256             = 8e8557da7426a51b4e0fb514a65ef6241dc7c85cb408243af389070abf379cec
DEBIAN_TARBALL          = valkey_9.1.2-1.debian.tar.xz
DEBIAN_SHA256           = e83701e1f5140721fe85cbe11bfdbf9b4bb841b6d423644977fbfd2ee417a629
