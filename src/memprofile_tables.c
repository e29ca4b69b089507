/*
 * Copyright (c) Valkey Contributors
 * All rights reserved.
 * SPDX-License-Identifier: BSD-3-Clause
 */

/* The names and small helpers every memory profiling file shares: type,
 * encoding, TTL bucket, status and source names, the totals of a profile's
 * figures, the RSS waterfall and the categories (breakdown and waterfall
 * figures by their INFO names), human-readable bytes, and freeing a decoded
 * profile. It calls no other file of ours,
 * so that each file uses only what lies below it (memprofile_internal.h
 * lists the layers). */

#include "memprofile_internal.h"

const char *memprofTypeNames[MEMPROF_TYPE_COUNT] = {"string", "list", "set", "zset", "hash", "stream", "module"};

const memprofEncodingInfo memprofEncodings[MEMPROF_ENC_COUNT] = {
    [MEMPROF_ENC_STRING_INT] = {"string_int", "int", MEMPROF_TYPE_STRING},
    [MEMPROF_ENC_STRING_EMBSTR] = {"string_embstr", "embstr", MEMPROF_TYPE_STRING},
    [MEMPROF_ENC_STRING_RAW] = {"string_raw", "raw", MEMPROF_TYPE_STRING},
    [MEMPROF_ENC_LIST_LISTPACK] = {"list_listpack", "listpack", MEMPROF_TYPE_LIST},
    [MEMPROF_ENC_LIST_QUICKLIST] = {"list_quicklist", "quicklist", MEMPROF_TYPE_LIST},
    [MEMPROF_ENC_SET_INTSET] = {"set_intset", "intset", MEMPROF_TYPE_SET},
    [MEMPROF_ENC_SET_LISTPACK] = {"set_listpack", "listpack", MEMPROF_TYPE_SET},
    [MEMPROF_ENC_SET_HASHTABLE] = {"set_hashtable", "hashtable", MEMPROF_TYPE_SET},
    [MEMPROF_ENC_ZSET_LISTPACK] = {"zset_listpack", "listpack", MEMPROF_TYPE_ZSET},
    [MEMPROF_ENC_ZSET_SKIPLIST] = {"zset_skiplist", "skiplist", MEMPROF_TYPE_ZSET},
    [MEMPROF_ENC_HASH_LISTPACK] = {"hash_listpack", "listpack", MEMPROF_TYPE_HASH},
    [MEMPROF_ENC_HASH_HASHTABLE] = {"hash_hashtable", "hashtable", MEMPROF_TYPE_HASH},
    [MEMPROF_ENC_STREAM_STREAM] = {"stream_stream", "stream", MEMPROF_TYPE_STREAM},
    [MEMPROF_ENC_MODULE] = {"module", "raw", MEMPROF_TYPE_MODULE},
};

const char *memprofTtlNames[MEMPROF_TTL_BUCKETS] = {"none", "expired", "1h", "1d", "7d", "later"};
const char *memprofStatusNames[] = {"none", "ok", "err"};
const char *memprofSourceNames[] = {"bgsave", "profile"};

void memprofTotals(const memprofFigures *f, unsigned long long *keys, unsigned long long *bytes) {
    *keys = *bytes = 0;
    for (int i = 0; i < MEMPROF_ENC_COUNT; i++) {
        *keys += f->enc[i].keys;
        *bytes += f->enc[i].bytes;
    }
}

/* mem_kv_user_data: the keys' bytes but their hashes' volatile sets, which
 * mem_kv_hash_metadata counts (9.1), so that the breakdown adds up. */
unsigned long long memprofUserData(const memprofFigures *f) {
    unsigned long long keys, bytes;
    memprofTotals(f, &keys, &bytes);
    return bytes - f->kv_hash_vsets;
}

void memprofTypeTotals(const memprofFigures *f, memprofCount types[MEMPROF_TYPE_COUNT]) {
    memset(types, 0, sizeof(memprofCount) * MEMPROF_TYPE_COUNT);
    for (int i = 0; i < MEMPROF_ENC_COUNT; i++) {
        types[memprofEncodings[i].type].keys += f->enc[i].keys;
        types[memprofEncodings[i].type].bytes += f->enc[i].bytes;
    }
}

const char *memprofSourceName(const memprofPublished *pub) {
    return pub->last ? memprofSourceNames[pub->source] : "none";
}

void memprofProfileFree(memprofProfile *p) {
    if (!p) return;
    for (size_t i = 0; i < p->ntopkeys; i++) sdsfree(p->topkeys[i].name);
    for (size_t i = 0; i < p->nprefixes; i++) sdsfree(p->prefixes[i].prefix);
    for (size_t i = 0; i < p->ngroups; i++) sdsfree(p->groups[i].name);
    zfree(p->groups);
    zfree(p->dbs);
    zfree(p->topkeys);
    zfree(p->prefixes);
    zfree(p->slots);
    zfree(p);
}

/* The RSS waterfall of the published profile and the categories a budget
 * can name: the breakdown's figures, then the waterfall's. */
const struct memprofWaterfallField memprofWaterfallFields[MEMPROF_WATERFALL_FIELDS] = {
    {"mem_rss", offsetof(memprofWaterfall, rss)},
    {"mem_startup", offsetof(memprofWaterfall, startup)},
    {"mem_other_allocations", offsetof(memprofWaterfall, other)},
    {"mem_allocator_frag", offsetof(memprofWaterfall, frag)},
    {"mem_allocator_dirty", offsetof(memprofWaterfall, dirty)},
    {"mem_allocator_muzzy", offsetof(memprofWaterfall, muzzy)},
    {"mem_allocator_retained", offsetof(memprofWaterfall, retained)},
    {"mem_rss_other", offsetof(memprofWaterfall, rss_other)},
};

/* The profile's own figures: what it names of the allocated memory. */
unsigned long long memprofExplained(const memprofFigures *f) {
    return memprofUserData(f) + f->kv_expire + f->kv_hash_meta + f->um_kvstore + f->um_clients + f->sys_aof_buf +
           f->sys_repl_buf + f->sys_repl_backlog + f->sys_repl_pending + f->sys_slot_import + f->sys_slot_export;
}

void memprofGetWaterfall(const memprofPublished *pub, memprofWaterfall *w) {
    memset(w, 0, sizeof(*w));
    if (!pub->last) return;
    const memprofMemoryView *m = &pub->mem;
    /* Without the allocator's figures (not jemalloc), used_memory stands
     * for what is allocated and active. */
    long long allocated = m->allocated ? (long long)m->allocated : (long long)m->used_memory;
    long long active = m->active ? (long long)m->active : allocated;
    w->rss = m->rss;
    w->startup = m->startup;
    w->other = allocated - w->startup - (long long)memprofExplained(&pub->last->f);
    w->frag = active - allocated;
    w->dirty = m->dirty;
    w->muzzy = m->muzzy;
    w->retained = m->retained;
    w->rss_other = w->rss - active - w->dirty - w->muzzy;
}

static const char *memprofBreakdownNames[MEMPROF_BREAKDOWN_FIELDS] = {
    "mem_kv_user_data",
    "mem_kv_expiration",
    "mem_kv_hash_metadata",
    "mem_um_kvstore",
    "mem_um_clients_io",
    "mem_sys_aof_buffer",
    "mem_sys_repl_buffer",
    "mem_sys_repl_backlog",
    "mem_sys_repl_pending",
    "mem_sys_slot_import",
    "mem_sys_slot_export",
};

/* The breakdown's names, then the waterfall's. */
const char *memprofCategoryName(int i) {
    return i < MEMPROF_BREAKDOWN_FIELDS ? memprofBreakdownNames[i]
                                        : memprofWaterfallFields[i - MEMPROF_BREAKDOWN_FIELDS].name;
}

/* The breakdown then the waterfall of the published profile, as INFO
 * rdb_stats shows them. */
void memprofCategoryValues(const memprofPublished *pub, long long out[MEMPROF_CATEGORIES]) {
    const memprofFigures *f = &pub->last->f;
    long long breakdown[MEMPROF_BREAKDOWN_FIELDS] = {
        (long long)memprofUserData(f),
        (long long)f->kv_expire,
        (long long)f->kv_hash_meta,
        (long long)f->um_kvstore,
        (long long)f->um_clients,
        (long long)f->sys_aof_buf,
        (long long)f->sys_repl_buf,
        (long long)f->sys_repl_backlog,
        (long long)f->sys_repl_pending,
        (long long)f->sys_slot_import,
        (long long)f->sys_slot_export,
    };
    memcpy(out, breakdown, sizeof(breakdown));
    memprofWaterfall w;
    memprofGetWaterfall(pub, &w);
    for (int i = 0; i < MEMPROF_WATERFALL_FIELDS; i++) {
        out[MEMPROF_BREAKDOWN_FIELDS + i] = MEMPROF_WATERFALL_VALUE(&w, i);
    }
}

int memprofCategoryIndex(const char *name) {
    for (int i = 0; i < MEMPROF_CATEGORIES; i++) {
        if (!strcmp(name, memprofCategoryName(i))) return i;
    }
    return -1;
}

sds memprofCatBytes(sds s, unsigned long long n) {
    char buf[64];
    bytesToHuman(buf, sizeof(buf), n);
    return sdscat(s, buf);
}

/* A signed byte count, human readable, with its sign. */
sds memprofCatDelta(sds s, long long delta) {
    s = sdscat(s, delta < 0 ? "-" : "+");
    return memprofCatBytes(s, (unsigned long long)(delta < 0 ? -delta : delta));
}
