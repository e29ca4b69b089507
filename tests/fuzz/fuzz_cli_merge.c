/*
 * Copyright (c) Valkey Contributors
 * All rights reserved.
 * SPDX-License-Identifier: BSD-3-Clause
 */

/* Fuzz target: --cluster memprofile's merge of per-node reports
 * (mpMerge(), mpMergeFinish()) and its slot plan (mpPlan()), on arbitrary
 * valid-looking reports: 1 to 4 nodes, figures below 2^40, key groups on
 * some of the nodes, each node's
 * prefix summary shaped as a Space-Saving summary (at a depth, rows with
 * error_bytes <= bytes; saturated when some row has an error).
 *
 * What must hold, against sums computed here: every counter of the merged
 * report (types and key groups among them) is the sum of the nodes'; the slots add; the top keys are all of
 * the nodes', largest first; for every merged prefix row the interval
 * [bytes - error_bytes, bytes] holds every total the nodes' summaries
 * allow (a node's row allows [bytes - error_bytes, bytes]; a node without
 * the row allows 0, or up to its smallest row at that depth when its
 * summary there is saturated); every prefix of a node is in the merge; the
 * plan moves only slots that their shard owns at that point, ends, and
 * never raises the largest shard's bytes. */

#include "fuzz_cli.h"

#define NODES_MAX 4
#define PREFIX_NAMES 6
#define DEPTHS 3

typedef struct byteSource {
    const uint8_t *p, *end;
} byteSource;

static unsigned take(byteSource *s, int bytes) {
    unsigned v = 0;
    for (int i = 0; i < bytes; i++) v = (v << 8) | (s->p < s->end ? *s->p++ : 0);
    return v;
}

static long long takeBig(byteSource *s) {
    /* Mostly small, sometimes near 2^40. */
    unsigned hi = take(s, 1), lo = take(s, 2);
    return hi >= 0xf0 ? ((long long)(hi & 0x0f) << 36) + lo : (long long)hi * 256 + lo;
}

static const char *names[] = {"string", "hash", "list", "set", "zset"};
static const char *groupNames[] = {"sessions", "users", "all"};
static const char *prefixNames[PREFIX_NAMES] = {"a:", "b:", "a:x:", "user:", "", "\xff:"};

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    fuzzQuiet();
    return 0;
}

/* The interval of totals a node's summary allows for (depth, prefix). */
static void nodeAllows(const mpReport *r, long long depth, const char *prefix, long long *lo, long long *hi) {
    long long floor = 0;
    int saturated = 0;
    for (size_t i = 0; i < r->nprefixes; i++) {
        const mpPrefix *p = &r->prefixes[i];
        if (p->depth != depth) continue;
        if (p->error_bytes) saturated = 1;
        if (!floor || p->bytes < floor) floor = p->bytes;
    }
    for (size_t i = 0; i < r->nprefixes; i++) {
        const mpPrefix *p = &r->prefixes[i];
        if (p->depth == depth && !strcmp(p->prefix, prefix)) {
            *lo += p->bytes - p->error_bytes;
            *hi += p->bytes;
            return;
        }
    }
    if (saturated) *hi += floor;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    byteSource src = {data, data + size};
    int nodes = 1 + take(&src, 1) % NODES_MAX;
    mpReport rep[NODES_MAX];
    int *owner = zmalloc(sizeof(int) * MP_SLOTS);
    for (int s = 0; s < MP_SLOTS; s++) owner[s] = -1;
    long long keys = 0, bytes = 0, used = 0, type_bytes[5] = {0}, type_keys[5] = {0}, hist_keys = 0, slot_sum = 0;
    long long group_keys[3] = {0}, group_bytes[3] = {0};
    size_t topkeys = 0;

    for (int n = 0; n < nodes; n++) {
        mpReport *r = &rep[n];
        mpReportInit(r);
        r->time = take(&src, 2);
        r->duration_ms = take(&src, 2);
        r->used_memory = takeBig(&src);
        used += r->used_memory;
        r->keys = takeBig(&src);
        r->bytes = takeBig(&src);
        keys += r->keys;
        bytes += r->bytes;
        for (int t = 0; t < 5; t++) {
            if (!(take(&src, 1) & 1)) continue;
            mpCount *c = mpCountsGet(&r->types, names[t], strlen(names[t]));
            c->keys = takeBig(&src);
            c->bytes = takeBig(&src);
            type_keys[t] += c->keys;
            type_bytes[t] += c->bytes;
            mpHistRow row = {sdsnew(names[t]), 1LL << (take(&src, 1) % 40), c->keys, c->bytes};
            MP_PUSH(r->hist, r->nhist, row);
            hist_keys += c->keys;
        }
        /* Key groups: each node counts some of them (a group configured on
         * some nodes only merges from those). */
        unsigned groups = take(&src, 1);
        for (int g = 0; g < 3; g++) {
            if (!(groups & (1u << g))) continue;
            mpCount *c = mpCountsGet(&r->groups, groupNames[g], strlen(groupNames[g]));
            c->keys = takeBig(&src);
            c->bytes = takeBig(&src);
            group_keys[g] += c->keys;
            group_bytes[g] += c->bytes;
        }
        int ntop = take(&src, 1) % 8;
        for (int i = 0; i < ntop; i++) {
            mpTopKey k = {sdsnewlen(src.p, (src.end - src.p) < 4 ? (size_t)(src.end - src.p) : 4),
                          4, n, sdsnew(names[i % 5]), sdsnew("raw"), takeBig(&src), take(&src, 1), -1, 0};
            MP_PUSH(r->topkeys, r->ntopkeys, k);
            topkeys++;
        }
        /* A summary per depth: distinct prefixes, errors only when saturated. */
        for (int d = 1; d <= DEPTHS; d++) {
            unsigned present = take(&src, 1), saturated = take(&src, 1) & 1;
            for (int i = 0; i < PREFIX_NAMES; i++) {
                if (!(present & (1u << i))) continue;
                long long b = takeBig(&src), e = saturated ? takeBig(&src) : 0;
                if (e > b) e = b;
                mpPrefix p = {sdsnew(prefixNames[i]), d, take(&src, 1), b, e, 0};
                MP_PUSH(r->prefixes, r->nprefixes, p);
            }
        }
        int nsl = take(&src, 1) % 16;
        r->has_slots = nsl > 0;
        for (int i = 0; i < nsl; i++) {
            int slot = take(&src, 2) % MP_SLOTS;
            int dup = 0;
            for (size_t j = 0; j < r->nslots; j++) dup |= r->slots[j].slot == slot;
            if (dup || (owner[slot] != -1 && owner[slot] != n)) continue;
            owner[slot] = n;
            mpSlot s = {slot, take(&src, 1), takeBig(&src)};
            slot_sum += s.bytes;
            MP_PUSH(r->slots, r->nslots, s);
        }
    }

    mpReport m;
    mpReportInit(&m);
    long long *slot_keys = zcalloc(sizeof(long long) * MP_SLOTS);
    long long *slot_bytes = zcalloc(sizeof(long long) * MP_SLOTS);
    for (int n = 0; n < nodes; n++) mpMerge(&m, &rep[n], n, slot_keys, slot_bytes);
    mpMergeFinish(&m, slot_keys, slot_bytes);

    FUZZ_CHECK(m.keys == keys && m.bytes == bytes && m.used_memory == used);
    for (int t = 0; t < 5; t++) {
        mpCount *c = NULL;
        for (size_t i = 0; i < m.types.n; i++)
            if (!strcmp(m.types.v[i].name, names[t])) c = &m.types.v[i];
        FUZZ_CHECK(c ? c->keys == type_keys[t] && c->bytes == type_bytes[t] : !type_keys[t] && !type_bytes[t]);
    }
    for (int g = 0; g < 3; g++) {
        mpCount *c = NULL;
        for (size_t i = 0; i < m.groups.n; i++)
            if (!strcmp(m.groups.v[i].name, groupNames[g])) c = &m.groups.v[i];
        FUZZ_CHECK(c ? c->keys == group_keys[g] && c->bytes == group_bytes[g] : !group_keys[g] && !group_bytes[g]);
    }
    long long hk = 0, sb = 0;
    for (size_t i = 0; i < m.nhist; i++) hk += m.hist[i].keys;
    FUZZ_CHECK(hk == hist_keys);
    for (size_t i = 0; i < m.nslots; i++) {
        FUZZ_CHECK(m.slots[i].slot >= 0 && m.slots[i].slot < MP_SLOTS);
        FUZZ_CHECK(m.slots[i].bytes == slot_bytes[m.slots[i].slot]);
        sb += m.slots[i].bytes;
    }
    FUZZ_CHECK(sb == slot_sum);
    FUZZ_CHECK(m.ntopkeys == topkeys);
    for (size_t i = 1; i < m.ntopkeys; i++) FUZZ_CHECK(m.topkeys[i - 1].bytes >= m.topkeys[i].bytes);

    for (size_t i = 0; i < m.nprefixes; i++) {
        const mpPrefix *p = &m.prefixes[i];
        long long lo = 0, hi = 0;
        for (int n = 0; n < nodes; n++) nodeAllows(&rep[n], p->depth, p->prefix, &lo, &hi);
        FUZZ_CHECK(p->error_bytes >= 0 && p->error_bytes <= p->bytes);
        FUZZ_CHECK(p->bytes - p->error_bytes <= lo && hi <= p->bytes);
    }
    for (int n = 0; n < nodes; n++) {
        for (size_t i = 0; i < rep[n].nprefixes; i++) {
            int found = 0;
            for (size_t j = 0; j < m.nprefixes && !found; j++)
                found = m.prefixes[j].depth == rep[n].prefixes[i].depth &&
                        !strcmp(m.prefixes[j].prefix, rep[n].prefixes[i].prefix);
            FUZZ_CHECK(found);
        }
    }

    /* The plan over the shards' slots. */
    size_t nmoves = 0;
    mpMove *moves = mpPlan(nodes, owner, slot_keys, slot_bytes, &nmoves);
    long long shard[NODES_MAX] = {0}, before_max = 0, after_max = 0;
    for (int s = 0; s < MP_SLOTS; s++)
        if (owner[s] >= 0) shard[owner[s]] += slot_bytes[s];
    for (int n = 0; n < nodes; n++)
        if (shard[n] > before_max) before_max = shard[n];
    for (size_t i = 0; i < nmoves; i++) {
        FUZZ_CHECK(moves[i].from != moves[i].to && owner[moves[i].slot] == moves[i].from);
        owner[moves[i].slot] = moves[i].to;
        shard[moves[i].from] -= moves[i].bytes;
        shard[moves[i].to] += moves[i].bytes;
    }
    for (int n = 0; n < nodes; n++)
        if (shard[n] > after_max) after_max = shard[n];
    FUZZ_CHECK(nmoves <= MP_SLOTS && after_max <= before_max);

    sds js = sdsnew("{");
    char *labels[] = {"a:1", "b:2", "c:3", "d:4", NULL};
    js = mpJsonReport(js, &m, 10, labels, MEMPROF_CLI_JSON);
    js = sdscat(js, "}");
    FUZZ_CHECK(jsonDocument(js, sdslen(js)));
    mpPrintReport(&m, NULL, 10, labels);
    sdsfree(js);
    zfree(moves);
    zfree(owner);
    zfree(slot_keys);
    zfree(slot_bytes);
    mpReportFree(&m);
    for (int n = 0; n < nodes; n++) mpReportFree(&rep[n]);
    return 0;
}
