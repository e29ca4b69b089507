# The fuzz targets, built with the tree's own compiler and flags (a normal
# build, a sanitizer build, or the clang build of `make fuzz`). Included
# after upstream's src/Makefile, whose variables it uses:
#
#   make -C <tree>/src -f Makefile -f <this file> memprof-fuzz/all
#
# utils/fuzz.sh copies tests/fuzz/ to <tree>/src/memprof-fuzz/ first.
# FUZZ_MAIN: replay.o (a main() that runs each input once), or empty with
# FUZZ_LDFLAGS=-fsanitize=fuzzer (libFuzzer's main).

FUZZ_MAIN ?= memprof-fuzz/replay.o
FUZZ_LDFLAGS ?=
# Linked without link-time optimisation (the normal build's objects carry
# their code as well): 5 s instead of the 3 minutes of an LTO link.
FUZZ_LINK = $(SERVER_LD) -fno-lto $(FUZZ_LDFLAGS)
FUZZ_TARGETS = memprof-fuzz/report memprof-fuzz/cli-reply memprof-fuzz/cli-json memprof-fuzz/cli-merge
# The client library (libvalkey on 9.1, hiredis on 8.1) and the other
# archives the server links; Lua through LUA_LDFLAGS where that is set.
FUZZ_ARCHIVES = $(wildcard ../deps/libvalkey/lib/libvalkey.a ../deps/hiredis/libhiredis.a \
                  ../deps/hdr_histogram/libhdrhistogram.a ../deps/fpconv/libfpconv.a) \
                $(if $(LUA_LDFLAGS),,$(wildcard ../deps/lua/src/liblua.a))
# The server's objects, main() renamed.
FUZZ_SERVER_OBJ = $(filter-out server.o,$(ENGINE_SERVER_OBJ)) memprof-fuzz/server-nomain.o
# valkey-cli's objects but its main file and ours (the targets include ours).
FUZZ_CLI_OBJ = $(filter-out valkey-cli.o memprofile_cli%.o,$(ENGINE_CLI_OBJ))

memprof-fuzz/all: $(FUZZ_TARGETS)
# The targets' sources include the server's headers and files (8.1's
# compile rule has no -I. of its own).
memprof-fuzz/%.o: FINAL_CFLAGS += -I.
# Kept, so that their -MMD files say when to rebuild them.
.SECONDARY: memprof-fuzz/fuzz_cli_reply.o memprof-fuzz/fuzz_cli_json.o memprof-fuzz/fuzz_cli_merge.o

memprof-fuzz/server-nomain.o: server.o
	objcopy --redefine-sym main=memprofServerMain $< $@

memprof-fuzz/report: memprof-fuzz/fuzz_report.o $(FUZZ_MAIN) $(FUZZ_SERVER_OBJ) $(LUA_MODULE)
	$(FUZZ_LINK) -o $@ memprof-fuzz/fuzz_report.o $(FUZZ_MAIN) $(FUZZ_SERVER_OBJ) \
	    $(FUZZ_ARCHIVES) $(FINAL_LIBS) $(LUA_LDFLAGS)

memprof-fuzz/cli-%: memprof-fuzz/fuzz_cli_%.o $(FUZZ_MAIN) $(FUZZ_CLI_OBJ)
	$(FUZZ_LINK) -o $@ $^ $(FUZZ_ARCHIVES) $(FINAL_LIBS)

memprof-fuzz/fuzz_cli_%.o: memprof-fuzz/fuzz_cli_%.c memprof-fuzz/fuzz_cli.h memprof-fuzz/fuzz_json.h .make-prerequisites
	$(SERVER_CC) -MMD -Wno-unused-function -o $@ -c $<

# What each target's object was built from (the compiler's -MMD files).
-include $(wildcard memprof-fuzz/*.d)
