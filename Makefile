# Valkey with fork-based memory profiling.
#
#   make                 build the server (installs build packages on first use)
#   make demo            build, then run the demo on loopback
#   make test            our tests + the upstream regression subset + utils tests
#   make test-upstream   the whole upstream suite against our build
#   make test-ecosystem  Prometheus, Grafana dashboard and flame graph end to end
#   make vanilla         the same pinned upstream without our changes
#   make pin-status      the pinned Debian revision against what Debian lists
#   make pin-bump        move the pin to the newest usable Debian revision
#   make bench           speed and exactness, side by side
#   make fuzz            the fuzz targets, FUZZ_SECONDS each (60)
#   make soak            profiles under load with AOF and a replica, SOAK_SECONDS (600)
#   make patch-queue / make refresh-patches   work on patches/ (see docs/building.md)
#
# Every target takes BASE=8.1 or BASE=9.1 (the upstream line to build on;
# default below). Each base builds in its own folder, build/<base>/, so that
# switching never rebuilds the other; build/bin/ (and build/vanilla/bin/)
# hold the default base's binaries, build/<base>/bin/ each base's.

BASES        = 8.1 9.1
DEFAULT_BASE = 9.1
BASE        ?= $(DEFAULT_BASE)
ifeq ($(filter $(BASE),$(BASES)),)
$(error BASE=$(BASE): the bases are $(BASES))
endif
include deps/pin-$(BASE).mk

BUILD    ?= build
B         = $(BUILD)/$(BASE)
DL        = $(B)/dl
PRISTINE  = $(B)/pristine
TREE      = $(B)/valkey
VTREE     = $(B)/vanilla/valkey
BIN       = $(B)/bin
VBIN      = $(B)/vanilla/bin
PATCHES   = patches/$(BASE)
# The default base's binaries are also copied here.
DEFBIN    = $(if $(filter $(BASE),$(DEFAULT_BASE)),$(BUILD)/bin)
DEFVBIN   = $(if $(filter $(BASE),$(DEFAULT_BASE)),$(BUILD)/vanilla/bin)
JOBS     ?= $(shell nproc 2>/dev/null || echo 2)
# Extra arguments for the upstream build, e.g. SANITIZER=address.
VALKEY_MAKE_ARGS ?= BUILD_TLS=no USE_SYSTEMD=no
# Upstream's release header reads git state: keep it from finding this
# repository above build/, so that a commit here does not relink everything.
export GIT_CEILING_DIRECTORIES = $(abspath $(BUILD))
PROGRAMS  = valkey-server valkey-cli valkey-benchmark valkey-check-rdb valkey-check-aof
PIN_ENV   = DEBIAN_VERSION='$(DEBIAN_VERSION)' DEBIAN_SUITE='$(DEBIAN_SUITE)' DEBIAN_SECURITY='$(DEBIAN_SECURITY)' \
            ORIG_TARBALL='$(ORIG_TARBALL)' ORIG_SHA256='$(ORIG_SHA256)' \
            DEBIAN_TARBALL='$(DEBIAN_TARBALL)' DEBIAN_SHA256='$(DEBIAN_SHA256)'
SETUP_PKGS = build-essential pkg-config tcl xz-utils patch python3 procps gpg gpg-agent

OURS = $(wildcard src/*.c src/*.h $(PATCHES)/series $(PATCHES)/*.patch \
         tests/unit/*.tcl tests/unit/*/*.tcl tests/integration/*.tcl tests/helpers/* tests/modules/*.c utils/memprof_log.py)

.PHONY: all setup demo test test-ours test-upstream vanilla bench clean distclean \
        patch-queue refresh-patches test-sanitizers test-valgrind test-ecosystem \
        pin-status pin-bump fuzz soak
.DELETE_ON_ERROR:

all: $(B)/.built

# Debian packages the build needs; installed once, only those missing.
$(BUILD)/.setup:
	@mkdir -p $(BUILD)
	@missing=""; for p in $(SETUP_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	    echo "setup: installing$$missing"; \
	    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	fi
	@touch $@
setup: $(BUILD)/.setup

$(DL)/.verified: deps/pin-$(BASE).mk deps/fetch.sh deps/debsrc.sh | $(BUILD)/.setup
	$(PIN_ENV) sh deps/fetch.sh $(DL)
	@touch $@

$(PRISTINE)/.stamp: $(DL)/.verified deps/prepare.sh
	$(PIN_ENV) sh deps/prepare.sh pristine $(DL) $(PRISTINE)
	@touch $@

$(TREE)/.overlay: $(PRISTINE)/.stamp $(OURS) deps/prepare.sh
	sh deps/prepare.sh overlay $(PRISTINE) $(TREE) $(CURDIR) $(CURDIR)/$(PATCHES)
	@touch $@

# The upstream make decides what to recompile (nothing, when nothing changed);
# binaries are copied to $(BIN) (and $(DEFBIN)) only when they changed.
COPY_BINS = for d in $(2); do mkdir -p $$d; for p in $(PROGRAMS); do cmp -s $(1)/src/$$p $$d/$$p || \
            { cp $(1)/src/$$p $$d/$$p.tmp && mv -f $$d/$$p.tmp $$d/$$p; } || exit 1; done; done
$(B)/.built: $(TREE)/.overlay FORCE
	@$(MAKE) --no-print-directory -C $(TREE) -j$(JOBS) $(VALKEY_MAKE_ARGS)
	@$(call COPY_BINS,$(TREE),$(BIN) $(DEFBIN))
	@if [ -f $(DL)/notice ]; then echo "fetch: $$(cat $(DL)/notice) (as of $$(date -r $(DL)/notice +%F))"; fi
	@touch $@
FORCE:

# The pin against Debian's index (see docs/building.md, "Following Debian's revisions").
PIN_FILES = PIN_FILE=deps/pin-$(BASE).mk PIN_PATCHES=$(CURDIR)/$(PATCHES)
pin-status: | $(BUILD)/.setup
	@$(PIN_ENV) $(PIN_FILES) sh deps/pin.sh status $(B)/pin
pin-bump: | $(BUILD)/.setup
	@$(PIN_ENV) $(PIN_FILES) sh deps/pin.sh bump $(B)/pin

vanilla: $(B)/vanilla/.built
$(B)/vanilla/.built: $(PRISTINE)/.stamp
	sh deps/prepare.sh overlay $(PRISTINE) $(VTREE) /nonexistent /nonexistent
	$(MAKE) -C $(VTREE) -j$(JOBS) $(VALKEY_MAKE_ARGS)
	@$(call COPY_BINS,$(VTREE),$(VBIN) $(DEFVBIN))
	@touch $@

demo: all
	python3 utils/demo.py --bin $(BIN) --conf valkey.conf

# Our tests, the upstream files our patches touch, and the utils tests.
TEST_CLIENTS ?= 2
# Upstream's latency assertions (active defrag cycle lengths, latency
# monitor spikes, a module's blocking times, replication CPU use) measure the
# machine's scheduling, which a shared machine does not give: off unless
# LATENCY=1 (runtest's --no-latency otherwise; every runtest target).
LATENCY ?= 0
export LATENCY
test: all
	sh utils/run-tests.sh $(TREE) ours+subset $(TEST_CLIENTS)

# In a copy of the built tree ($(B)/suite): runtest clears files of its
# tree's tests/tmp when it starts, so the copy lets `make test` (with another
# port range, RUNTEST_ARGS) run at the same time.
test-upstream: all
	rm -rf $(B)/suite && cp -a $(TREE) $(B)/suite
	sh utils/run-tests.sh $(B)/suite all 4

# Prometheus (exporter script, rules), the Grafana dashboard and the flame
# graph end to end; installs Debian's prometheus, prometheus-redis-exporter
# and chromium when missing.
test-ecosystem: all
	SCREENSHOTS=$(SCREENSHOTS) sh utils/test-ecosystem.sh $(BIN)

test-sanitizers: $(PRISTINE)/.stamp
	BASE=$(BASE) sh utils/sanitizers.sh address+undefined

# Coverage-guided fuzzing of everything that reads bytes it did not write
# (tests/fuzz/): a clang build with libFuzzer, ASan and UBSan in
# build/<base>/fuzz/, each target run FUZZ_SECONDS from its seeds, FUZZ_JOBS
# targets at a time (1), FUZZ_TARGETS of them (all). Installs
# Debian's clang and libclang-rt-14-dev when missing.
FUZZ_SECONDS ?= 60
fuzz: $(PRISTINE)/.stamp
	sh utils/fuzz.sh run $(BASE) $(FUZZ_SECONDS)

# A long run on a busy primary with AOF and a replica (utils/soak.py; not
# part of make test): SOAK_SECONDS (600), SOAK_ARGS (e.g. --out FILE). The
# load comes from the default base's valkey-benchmark (--rps, sequences).
SOAK_SECONDS ?= 600
soak: all
	@$(MAKE) --no-print-directory BASE=$(DEFAULT_BASE) all
	SOAK_SECONDS=$(SOAK_SECONDS) python3 utils/soak.py --bin $(BIN) --load-bin $(BUILD)/$(DEFAULT_BASE)/bin $(SOAK_ARGS)

test-valgrind: $(PRISTINE)/.stamp
	BASE=$(BASE) sh utils/sanitizers.sh valgrind

bench: all vanilla
	python3 bench/bench.py --bin $(BIN) --vanilla-bin $(VBIN)

# A git patch queue over the pristine tree: edit and commit there, then
# `make refresh-patches` writes the commits back to patches/.
patch-queue: $(PRISTINE)/.stamp
	sh utils/patch-queue.sh init $(PRISTINE) $(B)/pq $(CURDIR)/$(PATCHES)
refresh-patches:
	sh utils/patch-queue.sh refresh $(PRISTINE) $(B)/pq $(CURDIR)/$(PATCHES)

clean:
	-$(MAKE) -C $(TREE) clean
	rm -f $(B)/.built
distclean:
	rm -rf $(BUILD)
