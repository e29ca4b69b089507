/*
 * Copyright (c) Valkey Contributors
 * All rights reserved.
 * SPDX-License-Identifier: BSD-3-Clause
 */

/* Fuzz target: the parent's reader of the save child's report,
 * memprofTransportRead() and every check it makes, on an arbitrary region
 * and an arbitrary announced length.
 *
 * Input (what memory-profile-report-fault 12 writes from a real profile):
 *
 *   byte 0      flags; bit 0: before reading, set the header's body length
 *               and checksum to match the bytes (so that the fuzzer gets
 *               past the checksum to the records)
 *   bytes 1-6   the limits the region was mapped for: dbs, top keys per
 *               type, prefix depth, prefixes per depth (2 bytes, little
 *               endian), cluster (slots 16384 when non-zero); each clamped
 *               so that one run stays small
 *   byte 7      the key groups the region was mapped for (at most 32)
 *   bytes 8-15  the announced length (little endian, any value)
 *   then        the region's bytes (cut to the region's size, the rest 0)
 *
 * The region is a heap block of exactly the size memprofRegionMap() would
 * map for those limits, so a read past it is a sanitizer report. The
 * reader must refuse or accept, never crash; what it allocates for an
 * accepted report stays within a bound of the region's size (libFuzzer's
 * -malloc_limit_mb catches a transient one); an accepted report agrees
 * with the limits. */

#include "server.h"
#include "crc64.h"
#include "memprofile_internal.h"

#include "fuzz.h"

#define FUZZ_HEAD 16

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    crc64_init();
    server.dbnum = 16;
    server.hide_user_data_from_log = 1;
    return 0;
}

static size_t clamp(size_t v, size_t max) {
    return v > max ? max : v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < FUZZ_HEAD) return 0;
    memprofRegion region;
    memset(&region, 0, sizeof(region));
    memprofReportLimits *l = &region.limits;
    l->dbs = clamp(data[1], 16);
    l->topkeys = clamp(data[2], 64);
    l->depth = clamp(data[3], MEMPROF_PREFIX_DEPTH_MAX);
    l->prefixes = clamp((size_t)data[4] | ((size_t)data[5] << 8), 256);
    l->slots = data[6] ? 16384 : 0;
    l->groups = clamp(data[7], MEMPROF_GROUPS_MAX);
    if (l->groups) {
        /* As memprofRegionMap() parses memory-profile-groups. */
        sds conf = sdsempty();
        for (size_t i = 0; i < l->groups; i++) conf = sdscatprintf(conf, "g%zu p%zu: ", i, i);
        const char *err;
        region.groups = memprofGroupsParse(conf, sdslen(conf), &err);
        FUZZ_CHECK(region.groups && (size_t)region.groups->n == l->groups);
        sdsfree(conf);
    }
    uint64_t announced;
    memcpy(&announced, data + 8, sizeof(announced));

    region.size = memprofReportBound(l);
    region.base = zmalloc(region.size); /* Exactly that size: no prefix where the allocator knows sizes. */
    FUZZ_CHECK(region.base);
    size_t have = clamp(size - FUZZ_HEAD, region.size);
    memcpy(region.base, data + FUZZ_HEAD, have);
    memset(region.base + have, 0, region.size - have);

    if (data[0] & 1) memprofTransportSeal(&region, (size_t)announced);

    size_t before = zmalloc_used_memory();
    const char *why = NULL;
    memprofProfile *p = memprofTransportRead(&region, (size_t)announced, &why);
    size_t used = zmalloc_used_memory() - before;
    if (getenv("FUZZ_VERBOSE")) fprintf(stderr, "report: %s\n", p ? "accepted" : why);
    if (p) {
        FUZZ_CHECK(!why);
        FUZZ_CHECK(p->ndbs <= l->dbs && p->nslots <= l->slots);
        FUZZ_CHECK(p->ntopkeys <= MEMPROF_TYPE_COUNT * l->topkeys);
        FUZZ_CHECK(p->nprefixes <= l->depth * l->prefixes);
        FUZZ_CHECK(p->ngroups == l->groups);
        /* Decoded, a record takes at most twice its encoded size, plus an
         * allocation's slack. */
        size_t records = p->ndbs + p->nslots + p->ntopkeys + p->nprefixes + p->ngroups;
        FUZZ_CHECK(used <= 2 * region.size + 64 * records + 4096);
        for (size_t i = 0; i < p->ntopkeys; i++) FUZZ_CHECK(sdslen(p->topkeys[i].name) <= MEMPROF_KEY_NAME_MAX);
        for (size_t i = 0; i < p->nprefixes; i++) {
            FUZZ_CHECK(sdslen(p->prefixes[i].prefix) <= MEMPROF_PREFIX_MAX);
            FUZZ_CHECK(p->prefixes[i].error_bytes <= p->prefixes[i].bytes);
        }
        unsigned long long keys, bytes;
        memprofTotals(&p->f, &keys, &bytes);
        for (size_t i = 0; i < p->ngroups; i++) {
            FUZZ_CHECK(p->groups[i].keys <= keys && p->groups[i].bytes <= bytes);
            FUZZ_CHECK(!strcmp(p->groups[i].name, region.groups->names[i]));
        }
        (void)memprofUserData(&p->f);
        memprofProfileFree(p);
    } else {
        FUZZ_CHECK(why != NULL);
        FUZZ_CHECK(used == 0); /* Nothing is kept from a refused report. */
    }
    zfree(region.base);
    memprofGroupsFree(region.groups);
    return 0;
}
