# The pinned upstream: Valkey 8.1.1 as Debian's trixie source package ships it.
# `make pin-status` compares it with what Debian lists; `make pin-bump`
# rewrites the values below to the newest revision whose files download and
# whose patches apply (sums from the signed index), then `make` rebuilds.
# A mismatch names the file, the expected and the actual sum.
VALKEY_UPSTREAM_VERSION = 8.1.1
DEBIAN_VERSION          = 8.1.1+dfsg1-3+deb13u2
DEBIAN_SUITE            = trixie
DEBIAN_SECURITY         = yes
ORIG_TARBALL            = valkey_8.1.1+dfsg1.orig.tar.xz
ORIG_SHA256             = d9bbd82eecb82f359e649a0007ad3dc1b47cc15afa626348ca86b73c4ae2c7ee
DEBIAN_TARBALL          = valkey_8.1.1+dfsg1-3+deb13u2.debian.tar.xz
DEBIAN_SHA256           = b5a16407d42c74b93cce893e9480c6c3a8d1f85e247cc2e57627d7ab7746f259
