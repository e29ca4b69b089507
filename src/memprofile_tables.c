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

const char *memprofTypeNames[MPT_TYPES] = {"string", "list", "set", "zset", "hash", "stream", "module"};

const memprofEncodingInfo memprofEncodings[MPE_COUNT] = {
    [MPE_STRING_INT] = {"string_int", "int", MPT_STRING},
    [MPE_STRING_EMBSTR] = {"string_embstr", "embstr", MPT_STRING},
    [MPE_STRING_RAW] = {"string_raw", "raw", MPT_STRING},
    [MPE_LIST_LISTPACK] = {"list_listpack", "listpack", MPT_LIST},
    [MPE_LIST_QUICKLIST] = {"list_quicklist", "quicklist", MPT_LIST},
    [MPE_SET_INTSET] = {"set_intset", "intset", MPT_SET},
    [MPE_SET_LISTPACK] = {"set_listpack", "listpack", MPT_SET},
    [MPE_SET_HASHTABLE] = {"set_hashtable", "hashtable", MPT_SET},
    [MPE_ZSET_LISTPACK] = {"zset_listpack", "listpack", MPT_ZSET},
    [MPE_ZSET_SKIPLIST] = {"zset_skiplist", "skiplist", MPT_ZSET},
    [MPE_HASH_LISTPACK] = {"hash_listpack", "listpack", MPT_HASH},
    [MPE_HASH_HASHTABLE] = {"hash_hashtable", "hashtable", MPT_HASH},
    [MPE_STREAM_STREAM] = {"stream_stream", "stream", MPT_STREAM},
    [MPE_MODULE] = {"module", "raw", MPT_MODULE},
};

const char *memprofTtlNames[MEMPROF_TTL_BUCKETS] = {"none", "expired", "1h", "1d", "7d", "later"};
const char *memprofStatusNames[] = {"none", "ok", "err"};
const char *memprofSourceNames[] = {"bgsave", "profile"};

void memprofTotals(const memprofFigures *f, unsigned long long *keys, unsigned long long *bytes) {
    *keys = *bytes = 0;
    for (int i = 0; i < MPE_COUNT; i++) {
        *keys += f->enc[i].keys;
        *bytes += f->enc[i].bytes;
    }
}

void memprofTypeTotals(const memprofFigures *f, memprofCount types[MPT_TYPES]) {
    memset(types, 0, sizeof(memprofCount) * MPT_TYPES);
    for (int i = 0; i < MPE_COUNT; i++) {
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
    zfree(p->dbs);
    zfree(p->topkeys);
    zfree(p->prefixes);
    zfree(p->slots);
    zfree(p);
}
