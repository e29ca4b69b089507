/*
 * Copyright (c) Valkey Contributors
 * All rights reserved.
 * SPDX-License-Identifier: BSD-3-Clause
 */

/* The names and small helpers every memory profiling file shares: type,
 * encoding, TTL bucket, status and source names, the totals of a profile's
 * figures, and freeing a decoded profile. It calls no other file of ours,
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
