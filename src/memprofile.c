/*
 * Copyright (c) Valkey Contributors
 * All rights reserved.
 * SPDX-License-Identifier: BSD-3-Clause
 */

/* Fork-based memory profiling: see memprofile.h for the overview.
 *
 * Child side: memprofChildBegin() measures what only exists at the fork
 * instant and hands rdb.c a per-key callback; memprofChildSend() serializes
 * the figures and sends them over the childinfo pipe.
 *
 * Parent side: the payload is read next to the regular childinfo records,
 * and published by memprofSaveDone() only when the child exited with success
 * and the whole payload arrived and parsed. A failed, killed or cancelled
 * profiling save keeps the previous figures and sets the status to err.
 *
 * Payload format (text, one figure a line, so that later versions can add
 * figures without a new message type; unknown lines are ignored):
 *
 *   memprof 1
 *   slot <name> <keys> <bytes>      one line per type/encoding slot
 *   <figure> <value>                kv_expire, um_kvstore, ...
 *   end
 */

#include "server.h"
#include "memprofile.h"
#include "rdb.h"
#include "module.h"

/* ------------------------------------------------------------------------
 * Slots: one per type/encoding pair the keyspace can hold.
 * --------------------------------------------------------------------- */

enum {
    MP_STRING_INT,
    MP_STRING_EMBSTR,
    MP_STRING_RAW,
    MP_LIST_LISTPACK,
    MP_LIST_QUICKLIST,
    MP_SET_INTSET,
    MP_SET_LISTPACK,
    MP_SET_HASHTABLE,
    MP_ZSET_LISTPACK,
    MP_ZSET_SKIPLIST,
    MP_HASH_LISTPACK,
    MP_HASH_HASHTABLE,
    MP_STREAM_STREAM,
    MP_MODULE,
    MP_SLOTS
};

enum { MPT_STRING, MPT_LIST, MPT_SET, MPT_ZSET, MPT_HASH, MPT_STREAM, MPT_MODULE, MPT_TYPES };

static const char *memprofTypeNames[MPT_TYPES] = {"string", "list", "set", "zset", "hash", "stream", "module"};

static const struct {
    const char *name; /* Also the INFO field stem: rdb_stats_<name>_keys. */
    int type;         /* MPT_* */
} memprofSlots[MP_SLOTS] = {
    [MP_STRING_INT] = {"string_int", MPT_STRING},
    [MP_STRING_EMBSTR] = {"string_embstr", MPT_STRING},
    [MP_STRING_RAW] = {"string_raw", MPT_STRING},
    [MP_LIST_LISTPACK] = {"list_listpack", MPT_LIST},
    [MP_LIST_QUICKLIST] = {"list_quicklist", MPT_LIST},
    [MP_SET_INTSET] = {"set_intset", MPT_SET},
    [MP_SET_LISTPACK] = {"set_listpack", MPT_SET},
    [MP_SET_HASHTABLE] = {"set_hashtable", MPT_SET},
    [MP_ZSET_LISTPACK] = {"zset_listpack", MPT_ZSET},
    [MP_ZSET_SKIPLIST] = {"zset_skiplist", MPT_ZSET},
    [MP_HASH_LISTPACK] = {"hash_listpack", MPT_HASH},
    [MP_HASH_HASHTABLE] = {"hash_hashtable", MPT_HASH},
    [MP_STREAM_STREAM] = {"stream_stream", MPT_STREAM},
    [MP_MODULE] = {"module", MPT_MODULE},
};

/* Everything one profile holds. Counters are 64-bit: they would overflow
 * only past 2^64 bytes (16 EiB) or keys, far beyond any addressable heap. */
typedef struct memprofFigures {
    unsigned long long keys[MP_SLOTS];
    unsigned long long bytes[MP_SLOTS];
    unsigned long long kv_expire;        /* Expires tables. */
    unsigned long long kv_hash_meta;     /* Hash field TTL metadata: none in 8.1. */
    unsigned long long um_kvstore;       /* Keyspace tables, object headers excluded. */
    unsigned long long um_clients;       /* Normal, pubsub and primary clients. */
    unsigned long long sys_aof_buf;      /* AOF buffer. */
    unsigned long long sys_repl_buf;     /* Replication buffer beyond the backlog. */
    unsigned long long sys_repl_backlog; /* Backlog and its index. */
} memprofFigures;

/* The scalar figures, by payload name. */
static const struct {
    const char *name;
    size_t offset;
} memprofScalars[] = {
    {"kv_expire", offsetof(memprofFigures, kv_expire)},
    {"kv_hash_meta", offsetof(memprofFigures, kv_hash_meta)},
    {"um_kvstore", offsetof(memprofFigures, um_kvstore)},
    {"um_clients", offsetof(memprofFigures, um_clients)},
    {"sys_aof_buf", offsetof(memprofFigures, sys_aof_buf)},
    {"sys_repl_buf", offsetof(memprofFigures, sys_repl_buf)},
    {"sys_repl_backlog", offsetof(memprofFigures, sys_repl_backlog)},
};
#define MEMPROF_SCALARS (sizeof(memprofScalars) / sizeof(memprofScalars[0]))
#define MEMPROF_SCALAR(f, i) (*(unsigned long long *)((char *)(f) + memprofScalars[i].offset))

/* A payload larger than this is refused: it can only be garbage. */
#define MEMPROF_MAX_PAYLOAD (64 * 1024 * 1024)

static void memprofTotals(const memprofFigures *f, unsigned long long *keys, unsigned long long *bytes) {
    *keys = *bytes = 0;
    for (int i = 0; i < MP_SLOTS; i++) {
        *keys += f->keys[i];
        *bytes += f->bytes[i];
    }
}

static void memprofTypeTotals(const memprofFigures *f,
                              unsigned long long keys[MPT_TYPES],
                              unsigned long long bytes[MPT_TYPES]) {
    memset(keys, 0, sizeof(unsigned long long) * MPT_TYPES);
    memset(bytes, 0, sizeof(unsigned long long) * MPT_TYPES);
    for (int i = 0; i < MP_SLOTS; i++) {
        keys[memprofSlots[i].type] += f->keys[i];
        bytes[memprofSlots[i].type] += f->bytes[i];
    }
}

/* ------------------------------------------------------------------------
 * Exact sizes: the allocator's usable size of every allocation a value owns.
 *
 * Asking the allocator for a pointer's size costs a lookup in its page map,
 * a cache miss per allocation on a large heap. Where the size is known
 * otherwise, it is computed instead: from an sds header that records its
 * allocation, or, with jemalloc, as the size class of the request the
 * allocation was made with (je_nallocx(), arithmetic only). The tests check
 * every encoding against the allocator's own accounting.
 * --------------------------------------------------------------------- */

/* The usable size of 'ptr', allocated with a request of 'request' bytes. */
static inline size_t memprofClassSize(void *ptr, size_t request) {
#if defined(USE_JEMALLOC)
    UNUSED(ptr);
    return je_nallocx(request, 0);
#else
    UNUSED(request);
    return zmalloc_size(ptr);
#endif
}

/* An element's sds: set members, skiplist elements, consumer names. Type 5
 * headers do not record the allocation; elements are made by sdsnewlen()
 * with a request of header + length + terminator and never shortened in
 * place, so the request gives the size. */
size_t memprofSdsBytes(sds s) {
    if (sdsType(s) == SDS_TYPE_5) return memprofClassSize(sdsAllocPtr(s), sdslen(s) + 2);
    return sdsAllocSize(s);
}

/* A string value's sds. A type 5 value may have been shortened in place
 * (a module's StringTruncate keeps the allocation of a type 5 sds), so its
 * length says nothing of its allocation: ask the allocator. */
static size_t memprofStringValueBytes(sds s) {
    if (sdsType(s) == SDS_TYPE_5) return zmalloc_size(sdsAllocPtr(s));
    return sdsAllocSize(s);
}

size_t memprofZslNodeBytes(zskiplistNode *zn) {
    /* The height of a node is kept in its level 0 span (see server.h). */
    size_t request = sizeof(*zn) + zn->level[0].span * sizeof(struct zskiplistLevel);
    return memprofClassSize(zn, request) + memprofSdsBytes(zn->ele);
}

/* The object header: one allocation holding the header, the expire, the
 * embedded key and, for EMBSTR, the value. Keyspace objects are allocated
 * with exactly the request computed here; an EMBSTR value's sds records the
 * rest of the allocation, up to its end. */
static size_t memprofHeaderBytes(robj *o) {
    if (o->type == OBJ_STRING && o->encoding == OBJ_ENCODING_EMBSTR) {
        return (size_t)((char *)o->ptr - (char *)o) + sdsalloc(o->ptr) + 1;
    }
    size_t request = sizeof(robj);
    if (o->hasexpire) request += sizeof(long long);
    if (o->hasembkey) {
        sds key = objectGetKey(o);
        request += 1 + sdsHdrSize(sdsType(key)) + sdslen(key) + 1;
    }
    return memprofClassSize(o, request);
}

/* The table struct (with its metadata), the bucket tables and the chained
 * buckets. Bucket tables are power-of-two multiples of the bucket size, which
 * are allocator size classes, so the count times the size is exact. */
static size_t memprofHashtableBytes(hashtable *ht) {
    size_t buckets = hashtableBuckets(ht) + hashtableChainedBuckets(ht, 0) + hashtableChainedBuckets(ht, 1);
    return zmalloc_size(ht) + buckets * HASHTABLE_BUCKET_SIZE;
}

static size_t memprofQuicklistBytes(quicklist *ql) {
    size_t bytes = zmalloc_size(ql);
    for (quicklistNode *node = ql->head; node; node = node->next) {
        /* A compressed node's entry is its quicklistLZF allocation. */
        bytes += zmalloc_size(node) + zmalloc_size(node->entry);
    }
    return bytes;
}

/* The skiplist's structures; its nodes are sized by the save loop. */
static size_t memprofZsetBytes(zset *zs) {
    return zmalloc_size(zs) + memprofHashtableBytes(zs->ht) + zmalloc_size(zs->zsl) + zmalloc_size(zs->zsl->header);
}

static size_t memprofStreamBytes(stream *s) {
    size_t bytes = zmalloc_size(s) + raxAllocSize(s->rax);
    raxIterator ri;
    raxStart(&ri, s->rax);
    raxSeek(&ri, "^", NULL, 0);
    while (raxNext(&ri)) bytes += zmalloc_size(ri.data);
    raxStop(&ri);
    if (!s->cgroups) return bytes;

    bytes += raxAllocSize(s->cgroups);
    raxStart(&ri, s->cgroups);
    raxSeek(&ri, "^", NULL, 0);
    while (raxNext(&ri)) {
        streamCG *cg = ri.data;
        bytes += zmalloc_size(cg) + raxAllocSize(cg->pel) + raxAllocSize(cg->consumers);
        raxIterator it;
        /* NACKs are shared by the group PEL and the consumer PELs: count
         * them once, here. */
        raxStart(&it, cg->pel);
        raxSeek(&it, "^", NULL, 0);
        while (raxNext(&it)) bytes += zmalloc_size(it.data);
        raxStop(&it);
        raxStart(&it, cg->consumers);
        raxSeek(&it, "^", NULL, 0);
        while (raxNext(&it)) {
            streamConsumer *c = it.data;
            bytes += zmalloc_size(c) + memprofSdsBytes(c->name) + raxAllocSize(c->pel);
        }
        raxStop(&it);
    }
    raxStop(&ri);
    return bytes;
}

/* Everything a value owns but the elements rdbSaveObject()'s loops size
 * (set elements of the hashtable encoding, skiplist nodes, hash entries of
 * the hashtable encoding). Module values report through mem_usage. */
static size_t memprofValueBytes(robj *o, int dbid) {
    size_t bytes = memprofHeaderBytes(o);
    if (o->type == OBJ_MODULE) {
        robj keyobj;
        initStaticStringObject(keyobj, objectGetKey(o));
        return bytes + zmalloc_size(o->ptr) + moduleGetMemUsage(&keyobj, o, 0, dbid);
    }
    switch (o->encoding) {
    case OBJ_ENCODING_INT:
    case OBJ_ENCODING_EMBSTR: return bytes; /* All in the header. */
    case OBJ_ENCODING_RAW: return bytes + memprofStringValueBytes(o->ptr);
    case OBJ_ENCODING_LISTPACK:
    case OBJ_ENCODING_INTSET: return bytes + zmalloc_size(o->ptr);
    case OBJ_ENCODING_QUICKLIST: return bytes + memprofQuicklistBytes(o->ptr);
    case OBJ_ENCODING_HASHTABLE: return bytes + memprofHashtableBytes(o->ptr);
    case OBJ_ENCODING_SKIPLIST: return bytes + memprofZsetBytes(o->ptr);
    case OBJ_ENCODING_STREAM: return bytes + memprofStreamBytes(o->ptr);
    default: return bytes;
    }
}

static int memprofSlotOf(robj *o) {
    switch (o->type) {
    case OBJ_STRING:
        return o->encoding == OBJ_ENCODING_INT      ? MP_STRING_INT
               : o->encoding == OBJ_ENCODING_EMBSTR ? MP_STRING_EMBSTR
                                                    : MP_STRING_RAW;
    case OBJ_LIST: return o->encoding == OBJ_ENCODING_QUICKLIST ? MP_LIST_QUICKLIST : MP_LIST_LISTPACK;
    case OBJ_SET:
        return o->encoding == OBJ_ENCODING_INTSET     ? MP_SET_INTSET
               : o->encoding == OBJ_ENCODING_LISTPACK ? MP_SET_LISTPACK
                                                      : MP_SET_HASHTABLE;
    case OBJ_ZSET: return o->encoding == OBJ_ENCODING_SKIPLIST ? MP_ZSET_SKIPLIST : MP_ZSET_LISTPACK;
    case OBJ_HASH: return o->encoding == OBJ_ENCODING_HASHTABLE ? MP_HASH_HASHTABLE : MP_HASH_LISTPACK;
    case OBJ_STREAM: return MP_STREAM_STREAM;
    default: return MP_MODULE;
    }
}

/* ------------------------------------------------------------------------
 * Child side.
 * --------------------------------------------------------------------- */

static memprofFigures childFigures;

static void memprofAccountKey(robj *o, int dbid, size_t element_bytes) {
    int slot = memprofSlotOf(o);
    childFigures.keys[slot]++;
    childFigures.bytes[slot] += memprofValueBytes(o, dbid) + element_bytes;
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
        f->um_kvstore += mh->db[j].overhead_ht_main - kvstoreSize(server.db[mh->db[j].dbid].keys) * sizeof(robj);
        f->kv_expire += mh->db[j].overhead_ht_expires;
    }
    f->kv_hash_meta = 0;
    f->um_clients = mh->clients_normal;
    f->sys_aof_buf = mh->aof_buffer;
    f->sys_repl_buf = mh->clients_replicas;
    f->sys_repl_backlog = mh->repl_backlog;
    freeMemoryOverheadData(mh);
}

rdbKeyMemStatFn memprofChildBegin(int rdbflags) {
    if (!(rdbflags & RDBFLAGS_STAT_MEMORY)) return NULL;
    memset(&childFigures, 0, sizeof(childFigures));
    memprofMeasureForkInstant(&childFigures);
    return memprofAccountKey;
}

static sds memprofSerialize(const memprofFigures *f) {
    sds p = sdsnew("memprof 1\n");
    for (int i = 0; i < MP_SLOTS; i++) {
        p = sdscatprintf(p, "slot %s %llu %llu\n", memprofSlots[i].name, f->keys[i], f->bytes[i]);
    }
    for (size_t i = 0; i < MEMPROF_SCALARS; i++) {
        p = sdscatprintf(p, "%s %llu\n", memprofScalars[i].name, MEMPROF_SCALAR(f, i));
    }
    return sdscat(p, "end\n");
}

void memprofChildSend(void) {
    sds payload = memprofSerialize(&childFigures);
    size_t len = sdslen(payload), done = 0;
    int fd = server.child_info_pipe[1];
    if (sendChildInfoAnnounce(CHILD_INFO_TYPE_MEMORY_PROFILE, len) == C_OK) {
        if (server.memory_profile_report_delay) debugDelay(server.memory_profile_report_delay);
        while (done < len) {
            ssize_t w = write(fd, payload + done, len - done);
            if (w > 0)
                done += w;
            else if (errno != EINTR)
                break;
        }
    }
    sdsfree(payload);
    if (done != len) {
        serverLog(LL_WARNING, "Child failed reporting its memory profile to the parent, exiting: %s",
                  strerror(errno));
        exitFromChild(1);
    }
}

/* ------------------------------------------------------------------------
 * Parent side.
 * --------------------------------------------------------------------- */

enum { MEMPROF_STATUS_NONE, MEMPROF_STATUS_OK, MEMPROF_STATUS_ERR };

static struct {
    /* The published profile. */
    int status;
    memprofFigures last;
    time_t last_time;            /* Unix time of the fork. */
    long long last_duration_ms;  /* Fork to publication. */
    size_t last_used_memory;     /* used_memory at the fork. */
    /* The profile being taken. */
    int in_progress;
    int scheduled; /* The pending scheduled BGSAVE asked for a profile. */
    time_t fork_time;
    long long fork_mstime;
    size_t fork_used_memory;
    /* The payload on the childinfo pipe. */
    char *payload;
    size_t expected, received;
} mp;

int memprofIsStatMemoryArg(const char *arg) {
    return !strcasecmp(arg, "stat_memory");
}

void memprofScheduleRequest(int rdbflags) {
    /* One schedule serves every BGSAVE sent while it is pending: it profiles
     * when any of them asked. A schedule that is no longer pending (it ran,
     * or was cancelled) carries nothing over to the next one. */
    mp.scheduled = (rdbflags & RDBFLAGS_STAT_MEMORY) || (mp.scheduled && server.rdb_bgsave_scheduled);
}

int memprofSaveFlags(int rdbflags) {
    if (rdbflags & (RDBFLAGS_REPLICATION | RDBFLAGS_AOF_PREAMBLE)) return rdbflags & ~RDBFLAGS_STAT_MEMORY;
    /* The request is honoured while upstream's schedule is pending: a save
     * whose fork failed leaves it pending, and the retry profiles. */
    if (server.rdb_save_stat_memory || (mp.scheduled && server.rdb_bgsave_scheduled)) {
        rdbflags |= RDBFLAGS_STAT_MEMORY;
    }
    return rdbflags;
}

static void memprofDropPayload(void) {
    zfree(mp.payload);
    mp.payload = NULL;
    mp.expected = mp.received = 0;
}

void memprofSaveStarted(int rdbflags) {
    memprofDropPayload();
    mp.in_progress = (rdbflags & RDBFLAGS_STAT_MEMORY) != 0;
    if (!mp.in_progress) return;
    mp.fork_time = time(NULL);
    mp.fork_mstime = mstime();
    mp.fork_used_memory = zmalloc_used_memory();
}

void memprofPipeExpect(size_t len) {
    memprofDropPayload();
    /* An implausible length is still drained from the pipe (without a
     * buffer), so that the records after it stay in step; it is never
     * published. */
    if (len <= MEMPROF_MAX_PAYLOAD) mp.payload = zmalloc(len ? len : 1);
    mp.expected = len;
}

int memprofPipeRead(int fd) {
    if (mp.received == mp.expected) return 1;
    char scratch[4096];
    size_t want = mp.expected - mp.received;
    char *dst = mp.payload ? mp.payload + mp.received : scratch;
    if (!mp.payload && want > sizeof(scratch)) want = sizeof(scratch);
    ssize_t n = read(fd, dst, want);
    if (n > 0) mp.received += n;
    return mp.received == mp.expected;
}

/* Parse a complete payload. Returns C_ERR unless it is well formed. */
static int memprofParse(const char *buf, size_t len, memprofFigures *f) {
    memset(f, 0, sizeof(*f));
    int nlines, ok = 0, ret = C_ERR;
    sds *lines = sdssplitlen(buf, len, "\n", 1, &nlines);
    if (!lines || nlines < 2 || strcmp(lines[0], "memprof 1")) goto done;
    for (int i = 1; i < nlines; i++) {
        char name[64];
        unsigned long long a, b;
        if (!strcmp(lines[i], "end")) {
            ok = 1;
            break;
        }
        if (sscanf(lines[i], "slot %63s %llu %llu", name, &a, &b) == 3) {
            for (int s = 0; s < MP_SLOTS; s++) {
                if (!strcmp(name, memprofSlots[s].name)) {
                    f->keys[s] = a;
                    f->bytes[s] = b;
                }
            }
        } else if (sscanf(lines[i], "%63s %llu", name, &a) == 2) {
            for (size_t s = 0; s < MEMPROF_SCALARS; s++) {
                if (!strcmp(name, memprofScalars[s].name)) MEMPROF_SCALAR(f, s) = a;
            }
        }
    }
    if (ok) ret = C_OK;
done:
    sdsfreesplitres(lines, nlines);
    return ret;
}

static void memprofLogProfile(const memprofFigures *f) {
    unsigned long long keys, bytes, tkeys[MPT_TYPES], tbytes[MPT_TYPES];
    memprofTotals(f, &keys, &bytes);
    memprofTypeTotals(f, tkeys, tbytes);

    sds line = sdscatprintf(sdsempty(), "RDB object stats: total keys=%llu mem_bytes=%llu |", keys, bytes);
    for (int t = 0; t < MPT_TYPES; t++) {
        if (tkeys[t]) line = sdscatprintf(line, " %s=%llu/%lluB", memprofTypeNames[t], tkeys[t], tbytes[t]);
    }
    serverLog(LL_NOTICE, "%s", line);
    sdsfree(line);
    serverLog(LL_NOTICE,
              "RDB memory breakdown: kv[user=%lluB expire=%lluB hash_meta=%lluB] "
              "user_meta[kvstore=%lluB clients=%lluB] "
              "sys[aof_buf=%lluB repl_buf=%lluB repl_backlog=%lluB]",
              bytes, f->kv_expire, f->kv_hash_meta, f->um_kvstore, f->um_clients, f->sys_aof_buf, f->sys_repl_buf,
              f->sys_repl_backlog);
}

void memprofSaveDone(int exitcode, int bysignal) {
    if (!mp.in_progress) {
        memprofDropPayload();
        return;
    }
    mp.in_progress = 0;

    memprofFigures f;
    const char *why = NULL;
    if (bysignal)
        why = "the save was terminated by a signal";
    else if (exitcode != 0)
        why = "the save failed";
    else if (!mp.payload || mp.received != mp.expected)
        why = "the child's report did not arrive whole";
    else if (memprofParse(mp.payload, mp.expected, &f) != C_OK)
        why = "the child's report is malformed";
    memprofDropPayload();

    if (why) {
        mp.status = MEMPROF_STATUS_ERR;
        serverLog(LL_WARNING, "RDB memory profile not published: %s", why);
        return;
    }
    mp.status = MEMPROF_STATUS_OK;
    mp.last = f;
    mp.last_time = mp.fork_time;
    mp.last_duration_ms = mstime() - mp.fork_mstime;
    mp.last_used_memory = mp.fork_used_memory;
    memprofLogProfile(&mp.last);
}

/* ------------------------------------------------------------------------
 * INFO rdb_stats
 * --------------------------------------------------------------------- */

sds memprofInfoString(sds info) {
    static const char *status_names[] = {"none", "ok", "err"};
    const memprofFigures *f = &mp.last;
    unsigned long long keys, bytes, tkeys[MPT_TYPES], tbytes[MPT_TYPES];
    memprofTotals(f, &keys, &bytes);
    memprofTypeTotals(f, tkeys, tbytes);

    info = sdscatprintf(info,
                        "# Rdb_stats\r\n"
                        "rdb_stats_status:%s\r\n"
                        "rdb_stats_in_progress:%d\r\n"
                        "rdb_stats_last_time:%lld\r\n"
                        "rdb_stats_duration_ms:%lld\r\n"
                        "rdb_stats_used_memory:%zu\r\n"
                        "rdb_stats_keys:%llu\r\n"
                        "rdb_stats_bytes:%llu\r\n",
                        status_names[mp.status], mp.in_progress, (long long)mp.last_time, mp.last_duration_ms,
                        mp.last_used_memory, keys, bytes);
    for (int t = 0; t < MPT_TYPES; t++) {
        info = sdscatprintf(info, "rdb_stats_%s_keys:%llu\r\nrdb_stats_%s_bytes:%llu\r\n", memprofTypeNames[t],
                            tkeys[t], memprofTypeNames[t], tbytes[t]);
    }
    for (int s = 0; s < MP_SLOTS; s++) {
        if (s == MP_MODULE) continue; /* Already listed as a type. */
        info = sdscatprintf(info, "rdb_stats_%s_keys:%llu\r\nrdb_stats_%s_bytes:%llu\r\n", memprofSlots[s].name,
                            f->keys[s], memprofSlots[s].name, f->bytes[s]);
    }
    info = sdscatprintf(info,
                        "mem_kv_user_data:%llu\r\n"
                        "mem_kv_expiration:%llu\r\n"
                        "mem_kv_hash_metadata:%llu\r\n"
                        "mem_um_kvstore:%llu\r\n"
                        "mem_um_clients_io:%llu\r\n"
                        "mem_sys_aof_buffer:%llu\r\n"
                        "mem_sys_repl_buffer:%llu\r\n"
                        "mem_sys_repl_backlog:%llu\r\n",
                        bytes, f->kv_expire, f->kv_hash_meta, f->um_kvstore, f->um_clients, f->sys_aof_buf,
                        f->sys_repl_buf, f->sys_repl_backlog);
    return info;
}

/* ------------------------------------------------------------------------
 * MEMORY DOCTOR: the composition part.
 * --------------------------------------------------------------------- */

/* Share of 'part' in 'whole', in percent. */
static double memprofPct(unsigned long long part, unsigned long long whole) {
    return whole ? (double)part * 100 / whole : 0;
}

static sds memprofCatBytes(sds s, unsigned long long n) {
    char buf[64];
    bytesToHuman(buf, sizeof(buf), n);
    return sdscat(s, buf);
}

/* Advice on a collection type whose non-compact encoding holds most of the
 * user data: the settings that decide the compact encoding, with their
 * current values. */
static sds memprofEncodingAdvice(sds s, const memprofFigures *f, unsigned long long user) {
    static const struct {
        int slot;
        const char *what;
    } big[] = {
        {MP_HASH_HASHTABLE, "hashes"},
        {MP_SET_HASHTABLE, "sets"},
        {MP_ZSET_SKIPLIST, "sorted sets"},
        {MP_LIST_QUICKLIST, "lists"},
    };
    for (size_t i = 0; i < sizeof(big) / sizeof(big[0]); i++) {
        int slot = big[i].slot;
        if (!f->keys[slot] || memprofPct(f->bytes[slot], user) < 50) continue;
        s = sdscatprintf(s, " * %.1f%% of the user data is %s in their %s encoding (%llu keys, ",
                         memprofPct(f->bytes[slot], user), big[i].what, strchr(memprofSlots[slot].name, '_') + 1,
                         f->keys[slot]);
        s = memprofCatBytes(s, f->bytes[slot] / f->keys[slot]);
        s = sdscat(s, " per key on average). ");
        switch (slot) {
        case MP_HASH_HASHTABLE:
            s = sdscatprintf(s, "Hashes stay compact listpacks up to hash-max-listpack-entries (now %zu) fields "
                                "of at most hash-max-listpack-value (now %zu) bytes",
                             server.hash_max_listpack_entries, server.hash_max_listpack_value);
            break;
        case MP_SET_HASHTABLE:
            s = sdscatprintf(s, "Sets stay compact up to set-max-intset-entries (now %zu) integers, or "
                                "set-max-listpack-entries (now %zu) members of at most set-max-listpack-value "
                                "(now %zu) bytes",
                             server.set_max_intset_entries, server.set_max_listpack_entries,
                             server.set_max_listpack_value);
            break;
        case MP_ZSET_SKIPLIST:
            s = sdscatprintf(s, "Sorted sets stay compact listpacks up to zset-max-listpack-entries (now %zu) "
                                "members of at most zset-max-listpack-value (now %zu) bytes",
                             server.zset_max_listpack_entries, server.zset_max_listpack_value);
            break;
        case MP_LIST_QUICKLIST:
            s = sdscatprintf(s, "Lists are sized by list-max-listpack-size (now %d)", server.list_max_listpack_size);
            if (server.list_compress_depth == 0) s = sdscat(s, "; list-compress-depth is 0, so no node is compressed");
            break;
        }
        s = sdscat(s, ": if most keys are only a little over these limits, raising them saves memory "
                      "(at some CPU cost on large collections).\n");
    }
    return s;
}

/* Advice on overhead that is large next to the user data: above 1 MB and
 * above a share of the user data. */
static sds memprofOverheadAdvice(sds s, const memprofFigures *f, unsigned long long user) {
    const struct {
        unsigned long long bytes;
        double min_pct;
        const char *what;   /* The subject of the sentence. */
        const char *advice; /* What to do about it. */
    } checks[] = {
        {f->sys_repl_backlog, 10, "The replication backlog is",
         "a smaller repl-backlog-size is enough if replicas reconnect quickly."},
        {f->sys_repl_buf, 10, "Replication buffers are",
         "a replica is slow or far behind. See INFO replication and client-output-buffer-limit replica."},
        {f->um_clients, 10, "Client buffers are",
         "CLIENT LIST shows the clients with large qbuf or omem; client-output-buffer-limit and "
         "maxmemory-clients bound them."},
        {f->sys_aof_buf, 10, "The AOF buffer is", "the disk does not keep up with the writes."},
        {f->kv_expire, 20, "The expires tables are",
         "many small keys carry a TTL. Grouping small values into hashes, or fewer TTLs, reduces this."},
        {f->um_kvstore, 25, "The keyspace tables are",
         "the keys are many and small. Grouping small values into hashes reduces the per-key overhead."},
    };
    for (size_t i = 0; i < sizeof(checks) / sizeof(checks[0]); i++) {
        double pct = memprofPct(checks[i].bytes, user);
        if (checks[i].bytes <= 1024 * 1024 || pct < checks[i].min_pct) continue;
        s = sdscatprintf(s, " * %s %.1f%% of the user data: %s\n", checks[i].what, pct, checks[i].advice);
    }
    return s;
}

sds memprofDoctorReport(sds report) {
    report = sdscat(report, "\nMemory composition (BGSAVE STAT_MEMORY):\n");
    if (mp.status == MEMPROF_STATUS_NONE) {
        return sdscat(report, " * No profile yet. Run BGSAVE STAT_MEMORY (or set rdb-save-stat-memory yes) to "
                              "take one: the save child measures every key without slowing the server, and the "
                              "result appears here, in INFO rdb_stats and in the log.\n");
    }
    if (mp.status == MEMPROF_STATUS_ERR) {
        report = sdscat(report, " * The last profiling save failed or was stopped; ");
        if (!mp.last_time) return sdscat(report, "there is no earlier profile. Run BGSAVE STAT_MEMORY again.\n");
        report = sdscat(report, "the figures below are from the one before it.\n");
    }
    if (mp.in_progress) report = sdscat(report, " * A profiling save is running now.\n");

    const memprofFigures *f = &mp.last;
    unsigned long long keys, user, tkeys[MPT_TYPES], tbytes[MPT_TYPES];
    memprofTotals(f, &keys, &user);
    memprofTypeTotals(f, tkeys, tbytes);
    long long age = (long long)(time(NULL) - mp.last_time);
    report = sdscatprintf(report, " * Profile taken %lld seconds ago (the save took %lld ms): %llu keys, ", age,
                          mp.last_duration_ms, keys);
    report = memprofCatBytes(report, user);
    report = sdscat(report, " of user data.\n");

    /* Types by share of the user data, largest first. */
    int order[MPT_TYPES];
    for (int t = 0; t < MPT_TYPES; t++) order[t] = t;
    for (int i = 1; i < MPT_TYPES; i++) {
        for (int j = i; j > 0 && tbytes[order[j]] > tbytes[order[j - 1]]; j--) {
            int tmp = order[j];
            order[j] = order[j - 1];
            order[j - 1] = tmp;
        }
    }
    report = sdscat(report, " * User data by type:");
    for (int i = 0; i < MPT_TYPES; i++) {
        int t = order[i];
        if (!tkeys[t]) continue;
        report = sdscatprintf(report, " %s %.1f%% (%llu keys)", memprofTypeNames[t], memprofPct(tbytes[t], user),
                              tkeys[t]);
    }
    report = sdscat(report, "\n");

    /* The breakdown's largest categories. */
    struct {
        const char *name;
        unsigned long long bytes;
    } cat[] = {
        {"user data", user},
        {"expires tables", f->kv_expire},
        {"keyspace tables", f->um_kvstore},
        {"client buffers", f->um_clients},
        {"AOF buffer", f->sys_aof_buf},
        {"replication buffers", f->sys_repl_buf},
        {"replication backlog", f->sys_repl_backlog},
    };
    int ncat = sizeof(cat) / sizeof(cat[0]);
    unsigned long long explained = f->kv_hash_meta;
    for (int i = 0; i < ncat; i++) explained += cat[i].bytes;
    report = sdscat(report, " * Largest categories:");
    for (int shown = 0; shown < 3; shown++) {
        int best = -1;
        for (int i = 0; i < ncat; i++) {
            if (cat[i].bytes && (best == -1 || cat[i].bytes > cat[best].bytes)) best = i;
        }
        if (best == -1) break;
        report = sdscatprintf(report, "%s %s ", shown ? "," : "", cat[best].name);
        report = memprofCatBytes(report, cat[best].bytes);
        cat[best].bytes = 0;
    }
    report = sdscat(report, "\n");

    size_t startup = server.initial_memory_usage;
    size_t net = mp.last_used_memory > startup ? mp.last_used_memory - startup : 0;
    report = sdscatprintf(report,
                          " * The profile explains %.1f%% of used_memory at the fork beyond the startup "
                          "memory (",
                          memprofPct(explained, net));
    report = memprofCatBytes(report, explained);
    report = sdscat(report, " of ");
    report = memprofCatBytes(report, net);
    report = sdscat(report, ").\n");

    sds advice = memprofEncodingAdvice(sdsempty(), f, user);
    advice = memprofOverheadAdvice(advice, f, user);
    if (net && memprofPct(explained, net) < 90) {
        advice = sdscat(advice, " * More than 10% of used_memory is outside the profile: Lua and function "
                                "caches, module allocations, cluster links or memory freed since the fork. "
                                "MEMORY STATS shows the first ones.\n");
    }
    if (age > 3600) {
        advice = sdscatprintf(advice, " * The profile is %lld hours old: run BGSAVE STAT_MEMORY for a fresh one.\n",
                              age / 3600);
    }
    if (sdslen(advice)) {
        report = sdscat(report, "\nComposition advice:\n");
        report = sdscatsds(report, advice);
    } else {
        report = sdscat(report, " * Nothing in the composition calls for attention.\n");
    }
    sdsfree(advice);
    return report;
}
