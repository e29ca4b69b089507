/*
 * Copyright (c) Valkey Contributors
 * All rights reserved.
 * SPDX-License-Identifier: BSD-3-Clause
 */

/* What the memory profiling files share among themselves (memprofile.h is
 * what upstream files see). The files form layers: each calls only files
 * above it in this list, so that there is no cycle.
 *
 *   memprofile_tables.c     names and totals every file shares
 *   memprofile_groups.c     key groups: memory-profile-groups parsed, and
 *                           which groups a key name is in
 *   memprofile_size.c       exact allocator sizes of values
 *   memprofile_summary.c    bounded summaries: top keys, prefixes
 *   memprofile_transport.c  the report from child to parent: region, encoding, checks
 *   memprofile_child.c      the child's per-key accounting and walk
 *   memprofile.c            the published state: last profile, status, history
 *   memprofile_forecast.c   growth rates fitted over the history, time to maxmemory
 *   memprofile_budgets.c    memory-profile-budgets: levels, their log lines
 *   memprofile_reply.c      the log lines, INFO rdb_stats, MEMORY DOCTOR
 *   memprofile_run.c        which saves profile, the profile in flight (prepared,
 *                           forked, ended), profile-only children, the interval
 *   memprofile_command.c    MEMORY PROFILE
 */

#ifndef __MEMPROFILE_INTERNAL_H
#define __MEMPROFILE_INTERNAL_H

#include "server.h"
#include "memprofile_compat.h"
#include "memprofile.h"

/* Type/encoding pairs the keyspace can hold: INFO's rdb_stats_<name>_*. */
enum {
    MEMPROF_ENC_STRING_INT,
    MEMPROF_ENC_STRING_EMBSTR,
    MEMPROF_ENC_STRING_RAW,
    MEMPROF_ENC_LIST_LISTPACK,
    MEMPROF_ENC_LIST_QUICKLIST,
    MEMPROF_ENC_SET_INTSET,
    MEMPROF_ENC_SET_LISTPACK,
    MEMPROF_ENC_SET_HASHTABLE,
    MEMPROF_ENC_ZSET_LISTPACK,
    MEMPROF_ENC_ZSET_SKIPLIST,
    MEMPROF_ENC_HASH_LISTPACK,
    MEMPROF_ENC_HASH_HASHTABLE,
    MEMPROF_ENC_STREAM_STREAM,
    MEMPROF_ENC_MODULE,
    MEMPROF_ENC_COUNT
};

enum { MEMPROF_TYPE_STRING,
       MEMPROF_TYPE_LIST,
       MEMPROF_TYPE_SET,
       MEMPROF_TYPE_ZSET,
       MEMPROF_TYPE_HASH,
       MEMPROF_TYPE_STREAM,
       MEMPROF_TYPE_MODULE,
       MEMPROF_TYPE_COUNT };

extern const char *memprofTypeNames[MEMPROF_TYPE_COUNT];
typedef struct memprofEncodingInfo {
    const char *name;     /* Also the INFO field stem: rdb_stats_<name>_keys. */
    const char *encoding; /* OBJECT ENCODING's name. */
    int type;             /* MEMPROF_TYPE_* */
} memprofEncodingInfo;
extern const memprofEncodingInfo memprofEncodings[MEMPROF_ENC_COUNT];

/* TTL horizon at the fork: disjoint buckets. */
enum {
    MEMPROF_TTL_NONE,    /* No TTL. */
    MEMPROF_TTL_EXPIRED, /* Expired already, waiting for reclaim. */
    MEMPROF_TTL_1H,      /* (0, 1 h] */
    MEMPROF_TTL_1D,      /* (1 h, 1 d] */
    MEMPROF_TTL_7D,      /* (1 d, 7 d] */
    MEMPROF_TTL_LATER,   /* Beyond 7 d. */
    MEMPROF_TTL_BUCKETS
};
extern const char *memprofTtlNames[MEMPROF_TTL_BUCKETS];

/* Histograms: bucket i holds the keys of at most 2^i bytes (and more than
 * 2^(i-1)); 'le' is 2^i. */
#define MEMPROF_HIST_BUCKETS 64

/* Limits: names are cut, prefixes are not split past this length. */
#define MEMPROF_KEY_NAME_MAX 1024
#define MEMPROF_PREFIX_MAX 128
#define MEMPROF_TOP_KEYS_MAX 1000
#define MEMPROF_PREFIX_DEPTH_MAX 8
#define MEMPROF_PREFIX_CAPACITY_MAX 65536

typedef struct memprofCount {
    unsigned long long keys;
    unsigned long long bytes;
} memprofCount;

/* The figures of every profile. Counters are 64-bit: they would overflow
 * only past 2^64 bytes (16 EiB) or keys, far beyond any addressable heap. */
typedef struct memprofFigures {
    memprofCount enc[MEMPROF_ENC_COUNT];
    unsigned long long kv_expire;        /* Expires tables. */
    unsigned long long kv_hash_meta;     /* Hash field TTL metadata (9.1; none in 8.1): the
                                          * volatile sets and the dbs' indexes of keys with
                                          * volatile fields. */
    unsigned long long kv_hash_vsets;    /* The volatile sets alone: part of the key bytes
                                          * above and of kv_hash_meta. */
    unsigned long long um_kvstore;       /* Keyspace tables, object headers excluded. */
    unsigned long long um_clients;       /* Normal, pubsub and primary clients. */
    unsigned long long sys_aof_buf;      /* AOF buffer. */
    unsigned long long sys_repl_buf;     /* Replication buffer beyond the backlog. */
    unsigned long long sys_repl_backlog; /* Backlog and its index. */
    /* 9.1's MEMORY STATS buffers (0 on 8.1): a replica's pending replication
     * data (dual-channel sync), and the clients of slot imports and exports
     * (atomic slot migration). */
    unsigned long long sys_repl_pending;
    unsigned long long sys_slot_import;
    unsigned long long sys_slot_export;
    memprofCount ttl[MEMPROF_TTL_BUCKETS];
    memprofCount importing; /* Keys of slots being imported (9.1's atomic slot migration). */
    memprofCount hist[MEMPROF_TYPE_COUNT][MEMPROF_HIST_BUCKETS];
} memprofFigures;

typedef struct memprofTopKey {
    sds name;                    /* Cut to MEMPROF_KEY_NAME_MAX bytes. */
    unsigned long long name_len; /* The whole name's length. */
    int db;
    int encoding; /* MEMPROF_ENC_* */
    unsigned long long bytes;
    unsigned long long elements; /* Collection length, string length, stream entries. */
    long long ttl_ms;            /* Left at the fork; -1 for none. */
} memprofTopKey;

typedef struct memprofPrefix {
    sds prefix;
    int depth;
    unsigned long long keys;
    unsigned long long bytes;
    unsigned long long error_bytes; /* The true bytes lie in [bytes - error_bytes, bytes]. */
} memprofPrefix;

/* A key group's figures, with the group's name (memory-profile-groups). */
typedef struct memprofGroupCount {
    sds name;
    unsigned long long keys;
    unsigned long long bytes;
} memprofGroupCount;

typedef struct memprofIndexed {
    int index; /* A db or a cluster slot. */
    unsigned long long keys;
    unsigned long long bytes;
} memprofIndexed;

/* A whole profile, as the parent publishes it. Lists are sorted as replies
 * show them. */
typedef struct memprofProfile {
    memprofFigures f;
    memprofIndexed *dbs; /* Dbs with keys, ascending. */
    size_t ndbs;
    memprofTopKey *topkeys; /* Largest first, all types. */
    size_t ntopkeys;
    memprofPrefix *prefixes; /* Depth ascending, largest first within a depth. */
    size_t nprefixes;
    memprofIndexed *slots; /* Cluster slots with keys, largest first. */
    size_t nslots;
    memprofGroupCount *groups; /* Every group the child counted, in the config's order. */
    size_t ngroups;
} memprofProfile;

void memprofProfileFree(memprofProfile *p);
void memprofTotals(const memprofFigures *f, unsigned long long *keys, unsigned long long *bytes);
unsigned long long memprofUserData(const memprofFigures *f);
void memprofTypeTotals(const memprofFigures *f, memprofCount types[MEMPROF_TYPE_COUNT]);

/* The published state (memprofile.c). */
enum { MEMPROF_STATUS_NONE,
       MEMPROF_STATUS_OK,
       MEMPROF_STATUS_ERR };
enum { MEMPROF_SOURCE_BGSAVE,
       MEMPROF_SOURCE_PROFILE };
extern const char *memprofStatusNames[];
extern const char *memprofSourceNames[];
/* The process and its allocator at the fork instant (the parent's view),
 * for the RSS waterfall. Zeros for what the allocator does not tell. */
typedef struct memprofMemoryView {
    size_t used_memory, startup, rss;
    size_t allocated, active, resident, retained, dirty, muzzy;
} memprofMemoryView;

/* The RSS waterfall: with the profile's figures, these add up to RSS:
 * user data + tables + buffers + other + startup = allocated,
 * + frag = active, + dirty + muzzy + rss_other = rss. */
typedef struct memprofWaterfall {
    long long rss, startup, other, frag, dirty, muzzy, retained, rss_other;
} memprofWaterfall;
#define MEMPROF_WATERFALL_FIELDS 8
extern const struct memprofWaterfallField {
    const char *name; /* INFO rdb_stats and the REPORT's breakdown. */
    size_t offset;
} memprofWaterfallFields[MEMPROF_WATERFALL_FIELDS];
#define MEMPROF_WATERFALL_VALUE(w, i) (*(long long *)((char *)(w) + memprofWaterfallFields[i].offset))

typedef struct memprofPublished {
    int status;                 /* MEMPROF_STATUS_* */
    int in_progress;            /* A profiling child runs. */
    const memprofProfile *last; /* NULL before the first profile. */
    int source;                 /* MEMPROF_SOURCE_* of 'last'. */
    time_t time;                /* Unix time of the fork. */
    long long duration_ms;      /* Fork to publication. */
    long long mstime;           /* The same in ms (the forecast's clock). */
    size_t used_memory;         /* used_memory at the fork. */
    memprofMemoryView mem;      /* The process at the fork. */
} memprofPublished;
const memprofPublished *memprofGetPublished(void);
/* memprofile_run.c: a profiling child runs (INFO's rdb_stats_in_progress). */
void memprofSetInProgress(int on);
/* What took the published profile, "none" before the first one: INFO
 * rdb_stats and MEMORY PROFILE REPORT say the same. */
const char *memprofSourceName(const memprofPublished *pub);

/* What the parent records at the fork of a profiling child, published with
 * its profile. */
typedef struct memprofForkInstant {
    int source;            /* MEMPROF_SOURCE_* */
    time_t time;           /* Unix time of the fork. */
    long long mstime;      /* The same in ms, for the duration. */
    size_t used_memory;    /* used_memory at the fork. */
    memprofMemoryView mem; /* The process at the fork. */
} memprofForkInstant;
/* The end of a profile in flight (memprofile_run.c): a whole, validated
 * profile (taken over) is published; a profile that could not be taken
 * sets the status to err and logs why. */
void memprofPublish(memprofProfile *p, const memprofForkInstant *at);
void memprofNotPublished(const char *why);

/* The profile in flight (memprofile_run.c): at most one, from the mapping
 * of its report region before the fork to its release, in one struct:
 *
 *   idle -> prepared (region mapped) -> forked (child runs) -> ended: the
 *   child reaped and its report published, or killed, or failed -> idle
 *   (region released); a failed mapping or fork goes back to idle at once.
 *
 * Prepare a profile of 'source' before a fork: C_ERR with *err set (an
 * sds the caller frees) when the region cannot be mapped; the status is err
 * then, with the reason in the log. */
int memprofRunPrepare(int source, sds *err);
/* MEMORY PROFILE START: fork a profile-only child. C_ERR with *err set (an
 * sds the caller frees) when it could not start. */
int memprofStartProfile(sds *err);
/* MEMORY PROFILE START inside MULTI/EXEC: as BGSAVE there, it does not fork
 * in the middle of the transaction; memprofCron() starts the profile once
 * no child runs. MEMORY PROFILE CANCEL unschedules it (1 if it was). */
void memprofScheduleProfile(void);
int memprofUnscheduleProfile(void);
/* serverCron: start the scheduled profile once no child runs. */
void memprofStartScheduled(void);

/* The figures of the breakdown and of the waterfall, by their INFO names
 * (memprofile_forecast.c): what a budget's category: target names. */
#define MEMPROF_BREAKDOWN_FIELDS 11
#define MEMPROF_CATEGORIES (MEMPROF_BREAKDOWN_FIELDS + MEMPROF_WATERFALL_FIELDS)
const char *memprofCategoryName(int i);
int memprofCategoryIndex(const char *name); /* -1 for none. */
void memprofCategoryValues(const memprofPublished *pub, long long out[MEMPROF_CATEGORIES]);

/* What the history keeps of a published profile: enough to tell what grew. */
#define MEMPROF_HISTORY_PREFIXES 20
typedef struct memprofSummary {
    int source;
    time_t time;
    long long mstime;
    long long cat[MEMPROF_CATEGORIES];
    size_t used_memory, rss;
    memprofCount enc[MEMPROF_ENC_COUNT];
    memprofCount ttl[MEMPROF_TTL_BUCKETS];
    memprofIndexed *dbs;
    size_t ndbs;
    memprofPrefix *prefixes; /* The largest depth-1 prefixes, largest first. */
    size_t nprefixes;
    memprofGroupCount *groups;
    size_t ngroups;
} memprofSummary;
/* The summaries kept (memory-profile-history of them), 0 the newest. */
size_t memprofHistoryLength(void);
const memprofSummary *memprofHistoryGet(size_t i);
/* The summary of the published profile (NULL before the first one), kept
 * even with memory-profile-history 0. */
const memprofSummary *memprofLatestSummary(void);

/* The forecast (memprofile_forecast.c): a least-squares line through one
 * figure of the profiles kept in the history, over the last
 * MEMPROF_FORECAST_WINDOW_MS before the newest one. It needs at least
 * MEMPROF_FORECAST_MIN_PROFILES of them spanning MEMPROF_FORECAST_MIN_SPAN_MS;
 * profiles == 0 means not known. A figure function returns 0 when a summary
 * lacks the figure (a group it did not count): that profile is left out. */
#define MEMPROF_FORECAST_WINDOW_MS (6LL * 3600 * 1000)
#define MEMPROF_FORECAST_MIN_PROFILES 3
#define MEMPROF_FORECAST_MIN_SPAN_MS 10000
typedef int (*memprofFigureFn)(const memprofSummary *s, const void *arg, long long *value);
typedef struct memprofTrend {
    int profiles;       /* Profiles the fit used; 0 when not known. */
    long long per_hour; /* The slope, bytes per hour, rounded. */
    long long span_ms;  /* Oldest to newest of them. */
} memprofTrend;
memprofTrend memprofFitHistory(memprofFigureFn fn, const void *arg);
/* Seconds until 'now' reaches 'limit' at the trend's rate: 0 at or past
 * it, -1 when not growing or not known. */
long long memprofForecastSeconds(long long now, long long limit, const memprofTrend *t);
/* The bytes of a key group (arg: its name) in a summary. */
int memprofGroupOf(const memprofSummary *s, const void *arg, long long *value);
sds memprofCatForecast(sds s, const char *what, const memprofTrend *t, long long secs);
sds memprofForecastInfo(sds info);
sds memprofForecastDoctor(sds report);

/* Budgets (memprofile_budgets.c): evaluated at each publication and when
 * their configs change. */
void memprofBudgetsEvaluate(void);
sds memprofBudgetsInfo(sds info);
sds memprofBudgetsDoctor(sds report);

/* Key groups (memprofile_groups.c). */
#define MEMPROF_GROUPS_MAX 32
#define MEMPROF_GROUP_NAME_MAX 32
/* Prefixes of two bytes or more are found by their first two bytes, through
 * a table of 4096 masks (16 KB): pairs that share a slot only cost a
 * comparison more. */
#define MEMPROF_GROUP_PAIRS 4096
#define MEMPROF_GROUP_PAIR(a, b) (((unsigned)(unsigned char)(a) << 4 ^ (unsigned char)(b)) & (MEMPROF_GROUP_PAIRS - 1))
typedef struct memprofGroups {
    int n;
    sds names[MEMPROF_GROUPS_MAX];
    sds prefixes[MEMPROF_GROUPS_MAX];
    uint32_t len[MEMPROF_GROUPS_MAX];   /* Each prefix's length. */
    uint64_t head[MEMPROF_GROUPS_MAX];  /* Its first (up to) 8 bytes, as a name's first word reads them... */
    uint64_t mask[MEMPROF_GROUPS_MAX];  /* ...and the mask of those bytes. */
    uint32_t any;                       /* The groups of the empty prefix: every key. */
    uint32_t first[256];                /* The groups of a one-byte prefix, by that byte. */
    uint32_t pair[MEMPROF_GROUP_PAIRS]; /* The other groups, by their first two bytes. */
} memprofGroups;
/* NULL with *err NULL for no groups (an empty value); NULL with *err set
 * (a static string) for a value the config refuses. */
memprofGroups *memprofGroupsParse(const char *value, size_t len, const char **err);
void memprofGroupsFree(memprofGroups *g);
int memprofGroupNameValid(const char *s, size_t len);
/* The first 8 bytes of a name as one word (zeros past a shorter name). */
static inline uint64_t memprofGroupsWord(const char *p, size_t len) {
    uint64_t w = 0;
    if (len >= 8) {
        memcpy(&w, p, 8);
    } else {
        for (size_t i = 0; i < len; i++) w |= (uint64_t)(unsigned char)p[i] << (8 * i);
    }
    return w;
}
/* The groups a key name is in, one bit per group: two table reads, and for
 * each group whose prefix begins with the name's first two bytes a masked
 * comparison of a word (and of the rest, for a prefix past 8 bytes). */
static inline uint32_t memprofGroupsOf(const memprofGroups *g, const char *name, size_t len) {
    uint32_t in = g->any;
    if (len == 0) return in;
    in |= g->first[(unsigned char)name[0]];
    if (len < 2) return in;
    uint32_t maybe = g->pair[MEMPROF_GROUP_PAIR(name[0], name[1])];
    if (!maybe) return in;
    uint64_t w = memprofGroupsWord(name, len);
    while (maybe) {
        int k = __builtin_ctz(maybe);
        maybe &= maybe - 1;
        size_t plen = g->len[k];
        if (plen <= len && (w & g->mask[k]) == g->head[k] &&
            (plen <= 8 || memcmp(name + 8, g->prefixes[k] + 8, plen - 8) == 0))
            in |= 1u << k;
    }
    return in;
}

/* Sizes (memprofile_size.c).
 *
 * Asking the allocator for a pointer's size costs a lookup in its page map,
 * a cache miss per allocation on a large heap. Where the size is known
 * otherwise, it is computed instead: from an sds header that records its
 * allocation, or, with jemalloc, as the size class of the request the
 * allocation was made with. jemalloc's size classes are multiples of 8, so
 * a request's class is that of the request rounded up to 8: the classes up
 * to MEMPROF_CLASS_TABLE_MAX, asked of je_nallocx() once
 * (memprofSizeInit(), before the first key), are a table of 2 KB read with
 * one load. */
void memprofSizeInit(void);
#if defined(USE_JEMALLOC)
#define MEMPROF_CLASS_TABLE_MAX 4096
extern uint32_t memprofClassTable[MEMPROF_CLASS_TABLE_MAX / 8 + 1];
#endif

/* The usable size of 'ptr', allocated with a request of 'request' bytes. */
static inline size_t memprofClassSize(void *ptr, size_t request) {
#if defined(USE_JEMALLOC)
    UNUSED(ptr);
    if (request <= MEMPROF_CLASS_TABLE_MAX) return memprofClassTable[(request + 7) >> 3];
    return je_nallocx(request, 0);
#else
    UNUSED(request);
    return zmalloc_size(ptr);
#endif
}

/* An EMBSTR value, in the object's allocation. 9.1 lays out the object as
 * the header, the expire, the embedded key (a byte giving its sds header's
 * size, the sds) and the value as a type 8 sds (objectGetVal()): after an
 * embedded key it is arithmetic (memprofEmbstrAfterKey()). 8.1 keeps a
 * pointer to it. */
#if MEMPROF_BASE_9
static inline sds memprofEmbstrAfterKey(const char *key, size_t keylen) {
    return (sds)(key + keylen + 1 + sizeof(struct sdshdr8));
}
#endif
static inline sds memprofEmbstrValue(robj *o, const char *key, size_t keylen) {
#if MEMPROF_BASE_9
    if (o->hasembkey) return memprofEmbstrAfterKey(key, keylen);
#else
    UNUSED(key);
    UNUSED(keylen);
#endif
    return objectGetVal(o);
}

/* The object header: one allocation holding the header, the expire, the
 * embedded key and, for EMBSTR, the value. Keyspace objects are allocated
 * with exactly the request computed here; an EMBSTR value's sds records the
 * rest of the allocation, up to its end: on both bases a type 8 sds (no
 * switch on its type). */
static inline size_t memprofEmbstrBytesOf(robj *o, sds val) {
    return (size_t)((char *)val - (char *)o) + ((struct sdshdr8 *)(val - sizeof(struct sdshdr8)))->alloc + 1;
}

static inline size_t memprofEmbstrBytes(robj *o, const char *key, size_t keylen) {
    return memprofEmbstrBytesOf(o, memprofEmbstrValue(o, key, keylen));
}

/* The request of any other object header. */
static inline size_t memprofHeaderRequest(robj *o, const char *key, size_t keylen) {
    /* An sds header's size by its type (sdsHdrSize() without the switch). */
    static const unsigned char hdr_sizes[8] = {sizeof(struct sdshdr5), sizeof(struct sdshdr8),
                                               sizeof(struct sdshdr16), sizeof(struct sdshdr32),
                                               sizeof(struct sdshdr64)};
    size_t request = sizeof(robj);
    if (o->hasexpire) request += sizeof(long long);
    if (o->hasembkey) request += 1 + hdr_sizes[key[-1] & SDS_TYPE_MASK] + keylen + 1;
    return request;
}

static inline size_t memprofHeaderBytes(robj *o, const char *key, size_t keylen) {
    if (o->encoding == OBJ_ENCODING_EMBSTR) return memprofEmbstrBytes(o, key, keylen);
    return memprofClassSize(o, memprofHeaderRequest(o, key, keylen));
}

size_t memprofValueBytesSlow(robj *o, const char *key, int dbid, unsigned long long *hash_meta);

/* A key's exact bytes: its value and every element. The one sizing walk,
 * for the save child (through rdb.c's callback) and the profile-only child
 * alike; key is the object's own name, keylen its length. What deleting the
 * key frees, so a hash's volatile set is part of it; those bytes are also
 * added to *hash_meta. Strings held in the header alone (INT, EMBSTR), most
 * keys of many keyspaces, take no call. */
static inline size_t memprofKeyBytes(robj *o, const char *key, size_t keylen, int dbid, unsigned long long *hash_meta) {
    size_t bytes = memprofHeaderBytes(o, key, keylen);
    if (o->encoding == OBJ_ENCODING_INT || o->encoding == OBJ_ENCODING_EMBSTR) return bytes;
    return bytes + memprofValueBytesSlow(o, key, dbid, hash_meta);
}
int memprofEncodingOf(robj *o);
unsigned long long memprofElements(robj *o);

/* Summaries (memprofile_summary.c): the largest keys of one type, and the
 * heaviest prefixes of one depth, in bounded memory. */
typedef struct memprofTopKeys memprofTopKeys;
memprofTopKeys *memprofTopKeysCreate(size_t capacity);
void memprofTopKeysFree(memprofTopKeys *t);
/* Keeps the key when it is among the 'capacity' largest so far. Returns the
 * floor: the size a key must exceed to enter from now on. */
unsigned long long memprofTopKeysOffer(memprofTopKeys *t, robj *o, const char *key, size_t keylen, int db, int encoding, unsigned long long bytes, long long ttl_ms);
unsigned long long memprofTopKeysFloor(const memprofTopKeys *t);
size_t memprofTopKeysCount(const memprofTopKeys *t);
size_t memprofTopKeysBytes(const memprofTopKeys *t);
const memprofTopKey *memprofTopKeysGet(const memprofTopKeys *t, size_t i);

typedef struct memprofPrefixes memprofPrefixes;
memprofPrefixes *memprofPrefixesCreate(size_t capacity);
void memprofPrefixesFree(memprofPrefixes *s);
/* Add 'keys' keys of 'bytes' in all under a prefix whose hash is 'hash'; a
 * prefix of up to 8 bytes must have its bytes (a word, zero padded) for hash. */
void memprofPrefixesAdd(memprofPrefixes *s, const char *prefix, size_t len, uint64_t hash, unsigned long long keys, unsigned long long bytes);
/* Whether a[0..len) and b[0..len) are equal: for names up to 16 bytes, two
 * overlapping loads and no call. */
static inline __attribute__((always_inline)) int memprofSameEnds(const char *a, const char *b, size_t len, size_t width) {
    /* The first and the last 'width' bytes, overlapping: equality tests of
     * a constant size, which the compiler makes two loads each. */
    return memcmp(a, b, width) == 0 && memcmp(a + len - width, b + len - width, width) == 0;
}
static inline int memprofSameBytes(const char *a, const char *b, size_t len) {
    if (len > 16) return memcmp(a, b, len) == 0;
    if (len >= 8) return memprofSameEnds(a, b, len, 8);
    if (len >= 4) return memprofSameEnds(a, b, len, 4);
    for (size_t i = 0; i < len; i++) {
        if (a[i] != b[i]) return 0;
    }
    return 1;
}
size_t memprofPrefixesCount(const memprofPrefixes *s);
size_t memprofPrefixesBytes(const memprofPrefixes *s);
/* Row i (any order) with its keys, bytes and error bound. */
void memprofPrefixesGet(const memprofPrefixes *s, size_t i, const char **prefix, size_t *len, unsigned long long *keys, unsigned long long *bytes, unsigned long long *error_bytes);

/* The profile-only child's walk (memprofile_child.c); returns the exit code. */
int memprofProfileChildMain(void);
/* The region the child writes its report into (set before the fork). */
struct memprofRegion;
void memprofChildUseRegion(const struct memprofRegion *region);

/* The report (memprofile_transport.c). The parent maps a shared region
 * before the fork; the child writes the report there and announces its
 * length on the childinfo pipe; the parent decodes and validates it after
 * the child exited. */
/* The lengths of the lists a report may hold: the configs in force when
 * the region was mapped, just before the fork, which the child runs with. */
typedef struct memprofReportLimits {
    size_t dbs;
    size_t topkeys; /* Per type. */
    size_t depth;
    size_t prefixes; /* Per depth. */
    size_t slots;
    size_t groups; /* Exactly this many: every group is reported. */
} memprofReportLimits;
typedef struct memprofRegion {
    char *base; /* NULL when not mapped. */
    size_t size;
    memprofReportLimits limits; /* What the region was sized for. */
    memprofGroups *groups;      /* The groups the child counts (limits.groups of them), or NULL. */
} memprofRegion;
/* Map a region for the largest report the current configs allow. Returns
 * NULL, or why it could not (an sds the caller frees). */
sds memprofRegionMap(memprofRegion *r);
void memprofRegionUnmap(memprofRegion *r);
/* The largest report these limits allow (the size of the region). */
size_t memprofReportBound(const memprofReportLimits *l);
/* Child: encode the profile into the shared region. Returns the length, or
 * 0 when it does not fit. */
size_t memprofTransportWrite(const memprofRegion *region, const memprofFigures *f, const memprofIndexed *dbs, size_t ndbs, memprofTopKeys **topkeys, memprofPrefixes **prefixes, int depth, const memprofIndexed *slots, size_t nslots, const memprofCount *groups);
size_t memprofTransportDamage(const memprofRegion *region, size_t len, int fault);
/* Set the header's body length and checksum to match 'len' bytes. */
void memprofTransportSeal(const memprofRegion *region, size_t len);
/* Parent: write the report to a file in the fuzz target's input format. */
void memprofTransportKeep(const memprofRegion *region, size_t len);
/* Parent: decode and validate 'len' bytes of the region. NULL when invalid,
 * with a reason in *why. */
memprofProfile *memprofTransportRead(const memprofRegion *region, size_t len, const char **why);

/* memory-profile-report-fault (hidden, for tests). 1 to 8 damage the report
 * the child wrote (memprofTransportDamage()); the others make a step of the
 * transport fail. */
enum {
    MEMPROF_FAULT_NO_PIPE = 9, /* The child has no childinfo pipe. */
    MEMPROF_FAULT_MAP = 10,    /* The report region cannot be mapped. */
    MEMPROF_FAULT_FORK = 11,   /* The fork of a profiling child fails. */
    MEMPROF_FAULT_KEEP = 12,   /* Not a fault: keep each report as a fuzz seed. */
    MEMPROF_FAULT_MAX = 12
};

/* Replies (memprofile_reply.c). */
void memprofLogProfile(const memprofProfile *p);
void memprofGetWaterfall(const memprofPublished *pub, memprofWaterfall *w);
unsigned long long memprofExplained(const memprofFigures *f);
/* Human-readable bytes (bytesToHuman()), and with a sign. */
sds memprofCatBytes(sds s, unsigned long long n);
sds memprofCatDelta(sds s, long long delta);

#endif
