/*
 * Copyright (c) Valkey Contributors
 * All rights reserved.
 * SPDX-License-Identifier: BSD-3-Clause
 */

/* The save child's side of a profile.
 *
 * memprofChildBegin() measures what exists only at the fork instant and
 * hands rdb.c the per-key callback; rdbSaveObject() calls it for every key
 * it serializes, with the bytes its element loops sized. The callback adds
 * the key to the type/encoding counters, the TTL horizon, its type's
 * histogram, its db and cluster slot, the top keys of its type, the
 * prefix summaries and the key groups it is in. memprofChildSend() writes the report for the parent.
 *
 * The per-key path makes no allocation unless a key enters the top keys or
 * a new prefix enters a summary, and no allocator size lookup beyond what
 * sizing the value needs. */

#include "memprofile_internal.h"
#include "cluster.h"
#if MEMPROF_BASE_9
#include "cluster_migrateslots.h"
#endif

static struct {
    memprofFigures f;
    memprofCount *dbs;   /* server.dbnum entries. */
    memprofCount *slots; /* CLUSTER_SLOTS entries, cluster mode only. */
    unsigned char *importing; /* CLUSTER_SLOTS flags: slots being imported (9.1), or NULL. */
    memprofTopKeys *topkeys[MEMPROF_TYPE_COUNT];
    unsigned long long top_floor[MEMPROF_TYPE_COUNT]; /* A key must be larger to enter. */
    unsigned char encoding_of[16][16];                /* memprofEncodingOf() by type, encoding. */
    memprofPrefixes *prefixes[MEMPROF_PREFIX_DEPTH_MAX];
    int depth;                    /* Prefix depths counted. */
    unsigned char delimiter[256]; /* 1 for the delimiter bytes. */
    int single_delimiter;         /* The delimiter when there is one, else -1. */
    long long now_ms;             /* The fork instant, for TTLs. */
    const memprofGroups *groups;  /* The key groups, or NULL: the region's parse. */
    memprofCount group[MEMPROF_GROUPS_MAX];
} child;

/* The report region of the profile in flight, set by memprofile_run.c in the
 * parent before the fork: the child, a copy of the parent, writes there. */
static const memprofRegion *child_region;

void memprofChildUseRegion(const memprofRegion *region) {
    child_region = region;
}

static int memprofTtlBucket(long long ttl_ms) {
    if (ttl_ms <= 0) return MEMPROF_TTL_EXPIRED;
    if (ttl_ms <= 3600LL * 1000) return MEMPROF_TTL_1H;
    if (ttl_ms <= 86400LL * 1000) return MEMPROF_TTL_1D;
    if (ttl_ms <= 7 * 86400LL * 1000) return MEMPROF_TTL_7D;
    return MEMPROF_TTL_LATER;
}

/* Bucket i holds sizes in (2^(i-1), 2^i]. */
static inline int memprofHistBucket(unsigned long long bytes) {
    return bytes <= 1 ? 0 : 64 - __builtin_clzll(bytes - 1);
}

/* A fast hash of a prefix, eight bytes at a time; the last (or only) word
 * is read overlapping the one before it, or in pieces for prefixes shorter
 * than eight bytes, so that nothing past the prefix is read. (The summary
 * mixes the result again before use.) */
#define MEMPROF_HASH_SEED 0x9e3779b97f4a7c15ULL
#define MEMPROF_HASH_MUL 0xff51afd7ed558ccdULL

static inline uint64_t memprofHashPrefix(const char *p, size_t len) {
    uint64_t h = MEMPROF_HASH_SEED ^ ((uint64_t)len * MEMPROF_HASH_MUL), w;
    if (len >= 8) {
        const char *last = p + len - 8;
        for (; p < last; p += 8) {
            memcpy(&w, p, 8);
            h = (h ^ w) * MEMPROF_HASH_MUL;
            h ^= h >> 29;
        }
        memcpy(&w, last, 8);
    } else {
        uint32_t a = 0, b = 0;
        if (len >= 4) {
            memcpy(&a, p, 4);
            memcpy(&b, p + len - 4, 4);
        } else if (len) {
            a = (unsigned char)p[0] | ((unsigned char)p[len / 2] << 8) | ((unsigned char)p[len - 1] << 16);
        }
        w = ((uint64_t)a << 32) | b;
    }
    h = (h ^ w) * MEMPROF_HASH_MUL;
    return h ^ (h >> 29);
}

/* The next delimiter in p[0..len), or NULL. */
static inline const char *memprofNextDelimiter(const char *p, size_t len) {
    if (child.single_delimiter >= 0) return memchr(p, child.single_delimiter, len);
    for (size_t i = 0; i < len; i++) {
        if (child.delimiter[(unsigned char)p[i]]) return p + i;
    }
    return NULL;
}

static void memprofAccountPrefixes(sds key, unsigned long long bytes) {
    size_t len = sdslen(key), max = len < MEMPROF_PREFIX_MAX ? len : MEMPROF_PREFIX_MAX;
    size_t start = 0;
    for (int d = 0; d < child.depth; d++) {
        const char *delim = memprofNextDelimiter(key + start, max - start);
        if (!delim) break;
        size_t end = (size_t)(delim - key) + 1;
        memprofPrefixesAdd(child.prefixes[d], key, end, memprofHashPrefix(key, end), bytes);
        start = end;
    }
    /* A name without a delimiter counts under the empty prefix. */
    if (start == 0) memprofPrefixesAdd(child.prefixes[0], "", 0, memprofHashPrefix("", 0), bytes);
}

static void memprofAccountKey(robj *o, int dbid) {
    int enc = child.encoding_of[o->type][o->encoding];
    int type = memprofEncodings[enc].type;
    memprofFigures *f = &child.f;
    unsigned long long bytes = memprofObjectBytes(o, dbid, &f->kv_hash_vsets);

    f->enc[enc].keys++;
    f->enc[enc].bytes += bytes;

    long long when = o->hasexpire ? objectGetExpire(o) : -1;
    long long ttl_ms = -1;
    int ttl = MEMPROF_TTL_NONE;
    if (when != -1) {
        ttl_ms = when - child.now_ms;
        ttl = memprofTtlBucket(ttl_ms);
        if (ttl_ms < 0) ttl_ms = 0;
    }
    f->ttl[ttl].keys++;
    f->ttl[ttl].bytes += bytes;

    int b = memprofHistBucket(bytes);
    f->hist[type][b].keys++;
    f->hist[type][b].bytes += bytes;

    child.dbs[dbid].keys++;
    child.dbs[dbid].bytes += bytes;

    sds key = objectGetKey(o);
    if (child.slots) {
        int slot = keyHashSlot(key, (int)sdslen(key));
        child.slots[slot].keys++;
        child.slots[slot].bytes += bytes;
        if (child.importing && child.importing[slot]) {
            f->importing.keys++;
            f->importing.bytes += bytes;
        }
    }
    if (bytes > child.top_floor[type]) {
        child.top_floor[type] = memprofTopKeysOffer(child.topkeys[type], o, dbid, enc, bytes, ttl_ms);
    }
    if (child.depth) memprofAccountPrefixes(key, bytes);
    if (child.groups) {
        for (uint32_t in = memprofGroupsOf(child.groups, key, sdslen(key)); in; in &= in - 1) {
            int g = __builtin_ctz(in);
            child.group[g].keys++;
            child.group[g].bytes += bytes;
        }
    }
}

/* The figures that exist only at the fork instant, read from the child's
 * copy of the parent's memory before the save changes anything, as MEMORY
 * STATS and INFO memory count them: the keyspace and expires tables of the
 * dbs that hold keys (the robj that MEMORY STATS adds per key is part of
 * the object header, already counted as user data), clients, the AOF
 * buffer and the replication buffer's split between replicas and backlog. */
static void memprofMeasureForkInstant(memprofFigures *f) {
    struct serverMemOverhead *mh = getMemoryOverheadData();
    for (size_t j = 0; j < mh->num_dbs; j++) {
        serverDb *db = memprofDb(mh->db[j].dbid);
        f->um_kvstore += mh->db[j].overhead_ht_main - kvstoreSize(db->keys) * sizeof(robj);
        f->kv_expire += mh->db[j].overhead_ht_expires;
#if MEMPROF_BASE_9
        /* The index of the keys that hold fields with a TTL; the hashes'
         * volatile sets are added key by key (memprofAccountKey()). */
        f->kv_hash_meta += kvstoreMemUsage(db->keys_with_volatile_items);
#endif
    }
    f->um_clients = mh->clients_normal;
    f->sys_aof_buf = mh->aof_buffer;
    f->sys_repl_buf = mh->clients_replicas;
    f->sys_repl_backlog = mh->repl_backlog;
#if MEMPROF_BASE_9
    f->sys_repl_pending = mh->replicas_repl_buffer;
    f->sys_slot_import = mh->cluster_slot_import;
    f->sys_slot_export = mh->cluster_slot_export;
#endif
    freeMemoryOverheadData(mh);
}

rdbKeyMemStatFn memprofChildBegin(int rdbflags) {
    if (!(rdbflags & RDBFLAGS_STAT_MEMORY)) return NULL;
    /* Tests: a child without a childinfo pipe, as when the parent could not
     * open one (upstream's own records are not sent either then). */
    if (server.memory_profile_report_fault == MEMPROF_FAULT_NO_PIPE && server.in_fork_child &&
        server.child_info_pipe[1] != -1) {
        close(server.child_info_pipe[1]);
        server.child_info_pipe[1] = -1;
    }
    memset(&child, 0, sizeof(child));
    child.now_ms = mstime();
    memprofMeasureForkInstant(&child.f);
    child.dbs = zcalloc(sizeof(memprofCount) * server.dbnum);
    if (server.cluster_enabled) child.slots = zcalloc(sizeof(memprofCount) * CLUSTER_SLOTS);
#if MEMPROF_BASE_9
    if (server.cluster_enabled && clusterIsAnySlotImporting()) {
        child.importing = zcalloc(CLUSTER_SLOTS);
        for (int s = 0; s < CLUSTER_SLOTS; s++) child.importing[s] = clusterIsSlotImporting(s);
    }
#endif
    for (int t = 0; t < MEMPROF_TYPE_COUNT; t++) {
        child.topkeys[t] = memprofTopKeysCreate(server.memory_profile_top_keys);
        child.top_floor[t] = server.memory_profile_top_keys ? 0 : ULLONG_MAX;
    }
    for (int t = 0; t < 16; t++) {
        for (int e = 0; e < 16; e++) {
            robj o = {.type = t, .encoding = e};
            child.encoding_of[t][e] = memprofEncodingOf(&o);
        }
    }
    child.depth = server.memory_profile_prefix_depth;
    for (int d = 0; d < child.depth; d++) child.prefixes[d] = memprofPrefixesCreate(server.memory_profile_prefix_capacity);
    int ndelimiters = 0;
    for (const char *p = server.memory_profile_prefix_delimiters; p && *p; p++) {
        if (!child.delimiter[(unsigned char)*p]) ndelimiters++;
        child.delimiter[(unsigned char)*p] = 1;
        child.single_delimiter = (unsigned char)*p;
    }
    if (ndelimiters != 1) child.single_delimiter = -1;
    if (child_region && child_region->groups && child_region->groups->n) child.groups = child_region->groups;
    return memprofAccountKey;
}

/* What the deep state holds in the child's memory (its own allocations;
 * copy-on-write of the parent's pages comes on top). */
static size_t memprofChildStateBytes(void) {
    size_t bytes = zmalloc_size(child.dbs) + (child.slots ? zmalloc_size(child.slots) : 0);
    for (int t = 0; t < MEMPROF_TYPE_COUNT; t++) bytes += memprofTopKeysBytes(child.topkeys[t]);
    for (int d = 0; d < child.depth; d++) bytes += memprofPrefixesBytes(child.prefixes[d]);
    return bytes;
}

/* Lists of the dbs or slots that have keys. */
static memprofIndexed *memprofNonEmpty(const memprofCount *counts, int n, size_t *len) {
    memprofIndexed *out = zmalloc(sizeof(*out) * n);
    *len = 0;
    for (int i = 0; i < n; i++) {
        if (counts[i].keys) out[(*len)++] = (memprofIndexed){i, counts[i].keys, counts[i].bytes};
    }
    return out;
}

/* MEMORY PROFILE START's child: the same accounting as a profiling save's,
 * over every db, without serializing anything. Progress goes to the parent
 * about once a second, as a save's does.
 *
 * With no serialization between two keys, the walk waits on memory: each
 * key's object, and a value held outside it, are cache misses. The walk
 * is a software pipeline over the iterator: an entry is prefetched when
 * the iterator yields it, its value MEMPROF_VALUE_AHEAD entries before it
 * is accounted, so that both have arrived by then. The iterator is not a
 * safe one: the child changes nothing, and a safe iterator would write to
 * the table (copy-on-write pages for nothing). */
#define MEMPROF_PIPELINE 32 /* A power of two. */
#define MEMPROF_VALUE_AHEAD 12

static inline void memprofPrefetchValue(robj *o) {
    /* The object's next cache line: the rest of its embedded key and, for
     * EMBSTR, its value and the value's header, which sizing reads. */
    valkey_prefetch((char *)o + 64);
    if (o->encoding != OBJ_ENCODING_EMBSTR && o->encoding != OBJ_ENCODING_INT) valkey_prefetch(objectGetVal(o));
}

/* memory-profile-walk-floor (hidden, for make bench): the walk alone, each
 * key's object, name and first value byte read and nothing accounted, so
 * that the profile-only child's cost can be set against its floor. */
static volatile unsigned long memprof_floor_sink;

static void memprofTouchKey(robj *o, int dbid) {
    unsigned long sum = (unsigned long)o->type + o->encoding + (unsigned char)objectGetKey(o)[0] + (unsigned long)dbid;
    if (o->encoding != OBJ_ENCODING_INT) sum += *(unsigned char *)objectGetVal(o);
    memprof_floor_sink += sum;
}

int memprofProfileChildMain(void) {
    int floor = server.memory_profile_walk_floor;
    rdbKeyMemStatFn account = floor ? memprofTouchKey : memprofChildBegin(RDBFLAGS_STAT_MEMORY);
    long long info_updated = 0;
    size_t keys = 0;
    robj *ring[MEMPROF_PIPELINE];
    for (int j = 0; j < server.dbnum; j++) {
        serverDb *db = memprofDb(j);
        if (!db) continue; /* Never used (9.1 creates dbs lazily). */
        /* Keys of slots being imported hold memory too (rdbSaveDb() saves them). */
        kvstoreIterator *it = kvstoreIteratorInit(db->keys, HASHTABLE_ITER_INCLUDE_IMPORTING);
        size_t head = 0, tail = 0; /* Entries ring[head..tail) are in flight. */
        void *next;
        int more = 1;
        while (1) {
            while (more && tail - head < MEMPROF_PIPELINE) {
                if (!kvstoreIteratorNext(it, &next)) {
                    more = 0;
                    break;
                }
                valkey_prefetch(next);
                ring[tail++ & (MEMPROF_PIPELINE - 1)] = next;
            }
            if (head == tail) break;
            if (tail - head > MEMPROF_VALUE_AHEAD) memprofPrefetchValue(ring[(head + MEMPROF_VALUE_AHEAD) & (MEMPROF_PIPELINE - 1)]);
            robj *o = ring[head++ & (MEMPROF_PIPELINE - 1)];
            account(o, j);
            if ((keys++ & 1023) == 0) {
                long long now = mstime();
                if (now - info_updated >= 1000) {
                    sendChildInfo(CHILD_INFO_TYPE_CURRENT_INFO, keys, "Memory profile");
                    info_updated = now;
                }
            }
            if (server.rdb_key_save_delay) debugDelay(server.rdb_key_save_delay);
        }
        kvstoreIteratorRelease(it);
    }
    /* What the child cost the machine in memory: the pages it owns alone,
     * its own allocations and the parent's pages copied on write. */
    serverLog(LL_VERBOSE, "Memory profile: walked %zu keys%s; the child's private memory is %zu bytes", keys,
              floor ? " (memory-profile-walk-floor: nothing accounted, no report)" : "", zmalloc_get_private_dirty(-1));
    if (!floor) memprofChildSend();
    return 0;
}

void memprofChildSend(void) {
    size_t ndbs, nslots = 0;
    /* The hash field TTL metadata: the dbs' indexes and the volatile sets. */
    child.f.kv_hash_meta += child.f.kv_hash_vsets;
    memprofIndexed *dbs = memprofNonEmpty(child.dbs, server.dbnum, &ndbs);
    memprofIndexed *slots = child.slots ? memprofNonEmpty(child.slots, CLUSTER_SLOTS, &nslots) : NULL;
    const memprofRegion *region = child_region;
    size_t len = memprofTransportWrite(region, &child.f, dbs, ndbs, child.topkeys, child.prefixes, child.depth,
                                       slots, nslots, child.group);
    zfree(dbs);
    zfree(slots);
    if (len == 0) {
        serverLog(LL_WARNING, "Memory profile: the report does not fit its region; not sent");
        return;
    }
    serverLog(LL_VERBOSE, "Memory profile: report of %zu bytes; the deep state took %zu bytes in the child", len,
              memprofChildStateBytes());
    if (server.memory_profile_report_fault)
        len = memprofTransportDamage(region, len, server.memory_profile_report_fault);
    /* The save's success does not depend on the profile's transport: without
     * the announce the parent publishes nothing and says so. */
    if (sendChildInfoAnnounce(CHILD_INFO_TYPE_MEMORY_PROFILE, len) != C_OK) {
        serverLog(LL_WARNING, "Memory profile: the report could not be announced to the parent: %s",
                  server.child_info_pipe[1] == -1 ? "there is no childinfo pipe" : strerror(errno));
    }
    /* Tests: the child lives on after its announce, which the parent's
     * periodic drain of the pipe then reads before the child's exit. */
    if (server.memory_profile_report_delay) debugDelay(server.memory_profile_report_delay);
}
