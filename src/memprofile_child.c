/*
 * Copyright (c) Valkey Contributors
 * All rights reserved.
 * SPDX-License-Identifier: BSD-3-Clause
 */

/* The save child's side of a profile.
 *
 * memprofChildBegin() measures what exists only at the fork instant and
 * hands rdb.c the per-key callback; rdbSaveDb()'s loop calls it for every
 * key it saves, with the key's name, expire, db and table (slot). The
 * callback sizes the key (memprofile_size.c) and adds it to the
 * type/encoding counters, the TTL horizon, its type's histogram, its db
 * and cluster slot, the top keys of its type, the prefix summaries and the
 * key groups it is in. memprofChildSend() writes the report for the parent.
 *
 * The per-key path makes no allocation unless a key enters the top keys or
 * a new prefix enters a summary, and no allocator size lookup beyond what
 * sizing the value needs; a string held in its header alone is sized and
 * counted without a call. */

#include "memprofile_internal.h"
#include "cluster.h"
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#if MEMPROF_BASE_9
#include "cluster_migrateslots.h"
#endif

/* The keys of one prefix, one after another, not yet added to the summary. */
typedef struct memprofPrefixRun {
    const char *name; /* A key that begins with the prefix. */
    size_t len;
    uint64_t hash;
    unsigned long long keys, bytes;
} memprofPrefixRun;

static struct {
    memprofFigures f;
    memprofCount *dbs;   /* server.dbnum entries. */
    int db;                 /* The db being walked, or -1. */
    memprofCount db_start;  /* The totals when the walk entered it. */
    int cluster;                /* Slots are counted (cluster mode). */
    memprofIndexed *slot_runs;  /* The keys of each slot as the walk meets them, in its order. */
    size_t nruns, runs_alloc;
    memprofIndexed *slot_run;   /* The last run, of the slot of the last key. */
    unsigned char *importing; /* CLUSTER_SLOTS flags: slots being imported (9.1), or NULL. */
    memprofTopKeys *topkeys[MEMPROF_TYPE_COUNT];
    unsigned long long top_floor[MEMPROF_TYPE_COUNT]; /* A key must be larger to enter. */
    unsigned char type_enc[256]; /* By an object's first byte, which holds its type and encoding
                                  * bitfields: the type << 4 | memprofEncodingOf(). */
    memprofPrefixes *prefixes[MEMPROF_PREFIX_DEPTH_MAX];
    memprofPrefixRun run[MEMPROF_PREFIX_DEPTH_MAX]; /* Each depth's keys not yet added. */
    int depth;                    /* Prefix depths counted. */
    unsigned char delimiter[256]; /* 1 for the delimiter bytes. */
    int single_delimiter;         /* The delimiter when there is one, else -1. */
    uint64_t delimiter_word;      /* That delimiter in every byte, else 0. */
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

/* Prefixes.
 *
 * The name's first eight bytes are read as one word, in which a comparison
 * of every byte at once finds the delimiters; a prefix that ends there is
 * its own hash: its bytes as a word, zero padded (with its length, which
 * the summary compares too, it is the prefix). The rest of the name is
 * read the same way; a longer prefix's hash carries the state of the words
 * before it: the state after the words it covers whole, mixed with
 * the zero-padded rest and its length, so that no depth hashes the shared
 * part again. No byte past the name is read: a word that would pass its
 * end is read overlapping the one before it, or in pieces.
 *
 * Keys with the same prefix often follow one another (a keyspace where most
 * names share their first part): each depth keeps the run of keys of its
 * last prefix and adds it to the summary as one weighted addition when the
 * prefix changes, and at the end. */
#define MEMPROF_HASH_SEED 0x9e3779b97f4a7c15ULL
#define MEMPROF_HASH_MUL 0xff51afd7ed558ccdULL
#define MEMPROF_ONES 0x0101010101010101ULL
#define MEMPROF_LOW7 0x7f7f7f7f7f7f7f7fULL

static inline uint64_t memprofLoad64(const char *p) {
    uint64_t w;
    memcpy(&w, p, 8);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    w = __builtin_bswap64(w);
#endif
    return w; /* The first byte lowest. */
}

/* The n bytes (1 to 7) at p[0..n) as the low bytes of a word, the rest 0;
 * 'whole' is the name's length up to p + n: at least 8 lets the read start
 * before p. */
static inline uint64_t memprofLoadTail(const char *p, size_t n, size_t whole) {
    if (whole >= 8) return memprofLoad64(p + n - 8) >> (8 * (8 - n));
    if (n >= 4) {
        uint32_t a, b;
        memcpy(&a, p, 4);
        memcpy(&b, p + n - 4, 4);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        a = __builtin_bswap32(a);
        b = __builtin_bswap32(b);
#endif
        return (uint64_t)a | ((uint64_t)b << (8 * (n - 4)));
    }
    return (uint64_t)(unsigned char)p[0] | ((uint64_t)(unsigned char)p[n / 2] << (8 * (n / 2))) |
           ((uint64_t)(unsigned char)p[n - 1] << (8 * (n - 1)));
}

static inline uint64_t memprofHashStep(uint64_t h, uint64_t w) {
    h = (h ^ w) * MEMPROF_HASH_MUL;
    return h ^ (h >> 29);
}

static inline uint64_t memprofHashEnd(uint64_t h, uint64_t tail, size_t len) {
    h = ((h ^ tail) * MEMPROF_HASH_MUL) ^ len;
    h *= MEMPROF_HASH_MUL;
    return h ^ (h >> 29);
}

/* The masks of a word's low n bytes, n from 0 to 8. */
static const uint64_t memprofLowMask[9] = {0,
                                           0xffULL,
                                           0xffffULL,
                                           0xffffffULL,
                                           0xffffffffULL,
                                           0xffffffffffULL,
                                           0xffffffffffffULL,
                                           0xffffffffffffffULL,
                                           ~0ULL};

/* 0x80 in each byte of w that is a delimiter: with one delimiter (its
 * byte in every byte of 'single'), a comparison of the eight bytes at once
 * (no carry crosses a byte). */
static inline uint64_t memprofDelimiterBytes(uint64_t w, uint64_t single) {
    if (single) {
        uint64_t x = w ^ single;
        return ~(((x & MEMPROF_LOW7) + MEMPROF_LOW7) | x | MEMPROF_LOW7);
    }
    uint64_t m = 0;
    for (int i = 0; i < 8; i++) m |= (uint64_t)child.delimiter[(w >> (8 * i)) & 0xff] << (8 * i + 7);
    return m;
}

static void memprofRunFlush(int d) {
    memprofPrefixRun *r = &child.run[d];
    if (r->keys) memprofPrefixesAdd(child.prefixes[d], r->name, r->len, r->hash, r->keys, r->bytes);
    r->keys = 0;
}

/* Depth d's run ends: its keys are added, and one of another prefix starts. */
static inline void memprofRunStart(int d, const char *name, size_t len, uint64_t hash, unsigned long long bytes) {
    memprofPrefixRun *r = &child.run[d];
    if (r->keys) memprofPrefixesAdd(child.prefixes[d], r->name, r->len, r->hash, r->keys, r->bytes);
    r->name = name; /* A key of the keyspace: it stays in memory. */
    r->len = len;
    r->hash = hash;
    r->keys = 1;
    r->bytes = bytes;
}

static inline void memprofAccountPrefix(int d, const char *name, size_t len, uint64_t hash, unsigned long long bytes) {
    memprofPrefixRun *r = &child.run[d];
    /* Up to 8 bytes, the same hash and length are the same prefix. */
    if (r->hash == hash && r->len == len && (len <= 8 || memprofSameBytes(r->name, name, len))) {
        r->keys++;
        r->bytes += bytes;
        return;
    }
    memprofRunStart(d, name, len, hash, bytes);
}

/* The prefixes that end past the first word, from the depth 'd' on. The
 * rest of the name is read a word at a time as the first one (memchr()
 * would read whole aligned vectors, cache lines past the name among them),
 * and the hash state advanced over the words up to each delimiter found
 * only: bytes past the last one are not hashed. A prefix equal to its
 * depth's run (compared byte by byte) needs no hash at all. */
static int memprofAccountLongPrefixes(const char *key, size_t len, int d, unsigned long long bytes) {
    const uint64_t single = child.delimiter_word;
    uint64_t w;
    uint64_t h = MEMPROF_HASH_SEED; /* Over key[0..hashed), whole words: none until a delimiter is found. */
    size_t hashed = 0, at = 8;
#if defined(__SSE2__)
    /* Long names: sixteen bytes without a delimiter at a time, within the
     * name, before the words. */
    if (single && at + 16 <= len) {
        const __m128i pattern = _mm_set1_epi8((char)child.single_delimiter);
        while (at + 16 <= len &&
               !_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_loadu_si128((const __m128i *)(key + at)), pattern)))
            at += 16;
    }
#endif
    for (; at < len; at += 8) {
        size_t n = len - at;
        if (n >= 8) {
            w = memprofLoad64(key + at);
            n = 8;
        } else {
            w = memprofLoadTail(key + at, n, len);
        }
        for (uint64_t m = memprofDelimiterBytes(w, single) & memprofLowMask[n]; m; m &= m - 1) {
            size_t j = ((size_t)__builtin_ctzll(m) >> 3) + 1, end = at + j;
            memprofPrefixRun *r = &child.run[d];
            if (r->len == end && memprofSameBytes(r->name, key, end)) {
                /* The run's prefix: no hash needed (the state catches up
                 * at the next prefix that needs one). */
                r->keys++;
                r->bytes += bytes;
            } else {
                for (; hashed + 8 <= end; hashed += 8) h = memprofHashStep(h, memprofLoad64(key + hashed));
                uint64_t tail = end > hashed ? w & memprofLowMask[j] : 0;
                memprofRunStart(d, key, end, memprofHashEnd(h, tail, end), bytes);
            }
            if (++d == child.depth) return d;
        }
    }
    return d;
}

static inline __attribute__((always_inline)) void memprofAccountPrefixes(const char *key, size_t keylen, unsigned long long bytes) {
    size_t len = keylen < MEMPROF_PREFIX_MAX ? keylen : MEMPROF_PREFIX_MAX;
    const uint64_t single = child.delimiter_word;
    const int depth = child.depth;
    int d = 0;
    if (len) {
        /* The first word: its prefixes are their own hashes. */
        uint64_t w = len >= 8 ? memprofLoad64(key) : memprofLoadTail(key, len, len);
        for (uint64_t m = memprofDelimiterBytes(w, single) & memprofLowMask[len < 8 ? len : 8]; m; m &= m - 1) {
            size_t end = ((size_t)__builtin_ctzll(m) >> 3) + 1;
            memprofAccountPrefix(d, key, end, w & memprofLowMask[end], bytes);
            if (++d == depth) return;
        }
        if (len > 8) {
            /* Up to 16 bytes, the rest is one word (read overlapping the
             * first): most names have no delimiter there, and take no call. */
            if (len > 16 || memprofDelimiterBytes(memprofLoad64(key + len - 8) >> (8 * (16 - len)), single) & memprofLowMask[len - 8])
                d = memprofAccountLongPrefixes(key, len, d, bytes);
        }
    }
    /* A name without a delimiter counts under the empty prefix. */
    if (d == 0) memprofAccountPrefix(0, "", 0, 0, bytes);
}

/* The keys counted so far, every encoding's. */
static memprofCount memprofTotalsOf(const memprofFigures *f) {
    memprofCount all = {0, 0};
    for (int e = 0; e < MEMPROF_ENC_COUNT; e++) {
        all.keys += f->enc[e].keys;
        all.bytes += f->enc[e].bytes;
    }
    return all;
}

/* The walks go through the dbs one after another: a db's figures are the
 * growth of the totals while its keys are walked, added when the walk
 * leaves it (before the first key of the next db is counted, and at the
 * end). */
static __attribute__((noinline)) void memprofDbChange(int dbid) {
    memprofCount all = memprofTotalsOf(&child.f);
    if (child.db >= 0) {
        child.dbs[child.db].keys += all.keys - child.db_start.keys;
        child.dbs[child.db].bytes += all.bytes - child.db_start.bytes;
    }
    child.db_start = all;
    child.db = dbid;
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

/* Slots: the walks (the save's and the profile-only child's) go through a
 * db's slots in order, one table each, so a slot's keys follow one another:
 * each slot's keys are a run, appended when the slot changes, and the runs
 * are the list of slots with keys (no table of every slot to touch). */
static void memprofSlotRun(int slot) {
    if (child.nruns == child.runs_alloc) {
        child.runs_alloc = child.runs_alloc ? child.runs_alloc * 2 : 256;
        child.slot_runs = zrealloc(child.slot_runs, sizeof(memprofIndexed) * child.runs_alloc);
    }
    child.slot_run = &child.slot_runs[child.nruns++];
    *child.slot_run = (memprofIndexed){slot, 0, 0};
}

/* The slots with keys, ascending, each once: the runs themselves, or merged
 * by slot when several dbs (9.1's cluster-databases) or the tables of slots
 * being imported have keys in one slot. */
static memprofIndexed *memprofSlotsOf(size_t *n) {
    int ascending = 1;
    for (size_t i = 1; i < child.nruns; i++) {
        if (child.slot_runs[i].index <= child.slot_runs[i - 1].index) ascending = 0;
    }
    if (!ascending) {
        memprofCount *by_slot = zcalloc(sizeof(memprofCount) * CLUSTER_SLOTS);
        for (size_t i = 0; i < child.nruns; i++) {
            by_slot[child.slot_runs[i].index].keys += child.slot_runs[i].keys;
            by_slot[child.slot_runs[i].index].bytes += child.slot_runs[i].bytes;
        }
        zfree(child.slot_runs);
        child.slot_runs = memprofNonEmpty(by_slot, CLUSTER_SLOTS, &child.nruns);
        zfree(by_slot);
    }
    *n = child.nruns;
    return child.slot_runs;
}

/* The accounting of one key of 'bytes': 'deep' is a constant in each of
 * the callbacks below, so that a profile without top keys, prefixes, slots
 * or groups runs none of their code. */
static inline __attribute__((always_inline)) void memprofAccount(robj *o, sds key, size_t keylen, unsigned long long bytes, long long expire, int dbid, int slot, int deep) {
    unsigned char te = child.type_enc[*(unsigned char *)o];
    int enc = te & 15, type = te >> 4;
    memprofFigures *f = &child.f;

    if (dbid != child.db) memprofDbChange(dbid);
    f->enc[enc].keys++;
    f->enc[enc].bytes += bytes;
    /* Keys without a TTL and a db's keys are counted by difference
     * (memprofTotalsOf()): nothing to add for them here. */
    long long ttl_ms = -1;
    if (expire != -1) {
        ttl_ms = expire - child.now_ms;
        int ttl = memprofTtlBucket(ttl_ms);
        if (ttl_ms < 0) ttl_ms = 0;
        f->ttl[ttl].keys++;
        f->ttl[ttl].bytes += bytes;
    }

    int b = memprofHistBucket(bytes);
    f->hist[type][b].keys++;
    f->hist[type][b].bytes += bytes;

    if (!deep) return;

    if (child.cluster) {
        if (!child.slot_run || child.slot_run->index != slot) memprofSlotRun(slot);
        child.slot_run->keys++;
        child.slot_run->bytes += bytes;
        if (child.importing && child.importing[slot]) {
            f->importing.keys++;
            f->importing.bytes += bytes;
        }
    }
    if (bytes > child.top_floor[type]) {
        child.top_floor[type] = memprofTopKeysOffer(child.topkeys[type], o, key, keylen, dbid, enc, bytes, ttl_ms);
    }
    if (child.depth) memprofAccountPrefixes(key, keylen, bytes);
    if (child.groups) {
        for (uint32_t in = memprofGroupsOf(child.groups, key, keylen); in; in &= in - 1) {
            int g = __builtin_ctz(in);
            child.group[g].keys++;
            child.group[g].bytes += bytes;
        }
    }
}

/* A key's bytes without a call, where its header holds it all (INT, EMBSTR:
 * the strings of most keyspaces) and the header's size class is in the
 * table: then the callback needs no saved register either. */
static inline __attribute__((always_inline)) int memprofInlineBytes(robj *o, const char *key, size_t keylen, unsigned long long *bytes) {
#if MEMPROF_BASE_9
    if (o->encoding == OBJ_ENCODING_EMBSTR && o->hasembkey) {
        *bytes = memprofEmbstrBytesOf(o, memprofEmbstrAfterKey(key, keylen));
        return 1;
    }
#else
    if (o->encoding == OBJ_ENCODING_EMBSTR) {
        *bytes = memprofEmbstrBytes(o, key, keylen);
        return 1;
    }
#endif
#if defined(USE_JEMALLOC)
    if (o->encoding == OBJ_ENCODING_INT) {
        size_t request = memprofHeaderRequest(o, key, keylen);
        if (request <= MEMPROF_CLASS_TABLE_MAX) {
            *bytes = memprofClassTable[(request + 7) >> 3];
            return 1;
        }
    }
#endif
    return 0;
}

/* Any other key: its value sized by the sizing walk, out of line, so that
 * the strings' path saves no register for it. */
static __attribute__((noinline)) void memprofAccountSizedBasic(robj *o, sds key, size_t keylen, long long expire, int dbid, int slot) {
    memprofAccount(o, key, keylen, memprofKeyBytes(o, key, keylen, dbid, &child.f.kv_hash_vsets), expire, dbid, slot, 0);
}

static __attribute__((noinline)) void memprofAccountSizedDeep(robj *o, sds key, size_t keylen, long long expire, int dbid, int slot) {
    memprofAccount(o, key, keylen, memprofKeyBytes(o, key, keylen, dbid, &child.f.kv_hash_vsets), expire, dbid, slot, 1);
}

/* One key, as either callback below: strings held in their header in line,
 * any other key through its out-of-line function (a tail call). */
static inline __attribute__((always_inline)) void memprofAccountKey(robj *o, sds key, long long expire, int dbid, int slot, int deep) {
    size_t keylen = sdslen(key);
    unsigned long long bytes;
    if (memprofInlineBytes(o, key, keylen, &bytes))
        memprofAccount(o, key, keylen, bytes, expire, dbid, slot, deep);
    else if (deep)
        memprofAccountSizedDeep(o, key, keylen, expire, dbid, slot);
    else
        memprofAccountSizedBasic(o, key, keylen, expire, dbid, slot);
}

/* The type and encoding counters, the TTL horizon, the histograms, the dbs. */
static void memprofAccountBasic(robj *o, sds key, long long expire, int dbid, int slot) {
    memprofAccountKey(o, key, expire, dbid, slot, 0);
}

/* All that and the slots, the top keys, the prefixes and the groups. */
static void memprofAccountDeep(robj *o, sds key, long long expire, int dbid, int slot) {
    memprofAccountKey(o, key, expire, dbid, slot, 1);
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
         * volatile sets are added key by key (memprofAccount()). */
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
    child.db = -1;
    child.cluster = server.cluster_enabled;
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
    /* The type and encoding bitfields, four bits each, first in an object:
     * its first byte holds both (checked: 256 distinct bytes). */
    unsigned char seen[256] = {0};
    for (int t = 0; t < 16; t++) {
        for (int e = 0; e < 16; e++) {
            robj o;
            memset(&o, 0, sizeof(o));
            o.type = t;
            o.encoding = e;
            unsigned char first = *(unsigned char *)&o;
            serverAssert(!seen[first]);
            seen[first] = 1;
            int enc = memprofEncodingOf(&o);
            child.type_enc[first] = memprofEncodings[enc].type << 4 | enc;
        }
    }
    memprofSizeInit();
    child.depth = server.memory_profile_prefix_depth;
    for (int d = 0; d < MEMPROF_PREFIX_DEPTH_MAX; d++) child.run[d].len = SIZE_MAX; /* Matches no prefix. */
    for (int d = 0; d < child.depth; d++) child.prefixes[d] = memprofPrefixesCreate(server.memory_profile_prefix_capacity);
    int ndelimiters = 0;
    for (const char *p = server.memory_profile_prefix_delimiters; p && *p; p++) {
        if (!child.delimiter[(unsigned char)*p]) ndelimiters++;
        child.delimiter[(unsigned char)*p] = 1;
        child.single_delimiter = (unsigned char)*p;
    }
    if (ndelimiters != 1) child.single_delimiter = -1;
    child.delimiter_word = ndelimiters == 1 ? MEMPROF_ONES * (uint64_t)child.single_delimiter : 0;
    if (child_region && child_region->groups && child_region->groups->n) child.groups = child_region->groups;
    int deep = server.memory_profile_top_keys || child.depth || child.cluster || child.groups;
    return deep ? memprofAccountDeep : memprofAccountBasic;
}

/* What the deep state holds in the child's memory (its own allocations;
 * copy-on-write of the parent's pages comes on top). */
static size_t memprofChildStateBytes(void) {
    size_t bytes = zmalloc_size(child.dbs) + (child.slot_runs ? zmalloc_size(child.slot_runs) : 0);
    for (int t = 0; t < MEMPROF_TYPE_COUNT; t++) bytes += memprofTopKeysBytes(child.topkeys[t]);
    for (int d = 0; d < child.depth; d++) bytes += memprofPrefixesBytes(child.prefixes[d]);
    return bytes;
}

/* MEMORY PROFILE START's child: the same accounting as a profiling save's,
 * over every db, without serializing anything. Progress goes to the parent
 * about once a second, as a save's does.
 *
 * With no serialization between two keys, the walk waits on memory: each
 * key's object, and a value held outside it, are cache misses. The walk
 * is a software pipeline over the iterator: an entry is prefetched when
 * the iterator yields it, its value MEMPROF_VALUE_AHEAD entries before it
 * is accounted, so that both have arrived by then (measured against
 * upstream's HASHTABLE_ITER_PREFETCH_VALUES, which prefetches a bucket's
 * values when the iterator enters it: 0.18 s against 0.29 s of child CPU
 * on 3M small strings). The iterator is not a safe one: the child changes
 * nothing, and a safe iterator would write to the table (copy-on-write
 * pages for nothing). */
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

static void memprofTouchKey(robj *o, sds key, long long expire, int dbid, int slot) {
    unsigned long sum = (unsigned long)o->type + o->encoding + (unsigned char)key[0] + (unsigned long)dbid +
                        (unsigned long)expire + (unsigned long)slot;
    if (o->encoding != OBJ_ENCODING_INT) sum += *(unsigned char *)objectGetVal(o);
    memprof_floor_sink += sum;
}

int memprofProfileChildMain(void) {
    int floor = server.memory_profile_walk_floor;
    rdbKeyMemStatFn account = floor ? memprofTouchKey : memprofChildBegin(RDBFLAGS_STAT_MEMORY);
    long long info_updated = 0;
    size_t keys = 0;
    for (int j = 0; j < server.dbnum; j++) {
        serverDb *db = memprofDb(j);
        if (!db) continue; /* Never used (9.1 creates dbs lazily). */
        /* Keys of slots being imported hold memory too (rdbSaveDb() saves them). */
        kvstoreIterator *it = kvstoreIteratorInit(db->keys, HASHTABLE_ITER_INCLUDE_IMPORTING);
        robj *ring[MEMPROF_PIPELINE];
        int ring_slot[MEMPROF_PIPELINE]; /* The table (slot) each entry came from. */
        size_t head = 0, tail = 0;       /* Entries ring[head..tail) are in flight. */
        void *next;
        int more = 1;
        while (1) {
            while (more && tail - head < MEMPROF_PIPELINE) {
                if (!kvstoreIteratorNext(it, &next)) {
                    more = 0;
                    break;
                }
                valkey_prefetch(next);
                ring_slot[tail & (MEMPROF_PIPELINE - 1)] = kvstoreIteratorGetCurrentHashtableIndex(it);
                ring[tail++ & (MEMPROF_PIPELINE - 1)] = next;
            }
            if (head == tail) break;
            if (tail - head > MEMPROF_VALUE_AHEAD) memprofPrefetchValue(ring[(head + MEMPROF_VALUE_AHEAD) & (MEMPROF_PIPELINE - 1)]);
            int slot = ring_slot[head & (MEMPROF_PIPELINE - 1)];
            robj *o = ring[head++ & (MEMPROF_PIPELINE - 1)];
            account(o, objectGetKey(o), objectGetExpire(o), j, slot);
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
    for (int d = 0; d < child.depth; d++) memprofRunFlush(d);
    memprofDbChange(-1); /* The last db's figures. */
    /* The keys without a TTL: all but those of a bucket. */
    memprofCount *none = &child.f.ttl[MEMPROF_TTL_NONE];
    *none = memprofTotalsOf(&child.f);
    for (int t = 0; t < MEMPROF_TTL_BUCKETS; t++) {
        if (t == MEMPROF_TTL_NONE) continue;
        none->keys -= child.f.ttl[t].keys;
        none->bytes -= child.f.ttl[t].bytes;
    }
    /* The hash field TTL metadata: the dbs' indexes and the volatile sets. */
    child.f.kv_hash_meta += child.f.kv_hash_vsets;
    memprofIndexed *dbs = memprofNonEmpty(child.dbs, server.dbnum, &ndbs);
    memprofIndexed *slots = child.cluster ? memprofSlotsOf(&nslots) : NULL;
    const memprofRegion *region = child_region;
    size_t len = memprofTransportWrite(region, &child.f, dbs, ndbs, child.topkeys, child.prefixes, child.depth,
                                       slots, nslots, child.group);
    zfree(dbs);
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
