/*
 * Copyright (c) Valkey Contributors
 * All rights reserved.
 * SPDX-License-Identifier: BSD-3-Clause
 */

/* Fork-based memory profiling: the parent's published state. See
 * memprofile.h for the overview and memprofile_internal.h for the other
 * files.
 *
 * The parent decides which saves profile (the STAT_MEMORY flag, a scheduled
 * request, the config; never replication or the AOF preamble) and which
 * profile-only children memory-profile-interval starts; memprofile_run.c
 * carries each profile from the fork to its end. A profile is published
 * only when the child exited with success and its report arrived and
 * validated. A profile that could not be taken (not mapped, not forked,
 * failed, killed or cancelled) keeps the previous one and sets the status
 * to err, with the reason in the log. */

#include "memprofile_internal.h"
#include "rdb.h"

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

static struct {
    memprofPublished pub;
    list *history;        /* memprofSummary, newest first. */
    memprofProfile *last; /* What pub.last points to. */
    int scheduled;        /* The pending scheduled BGSAVE asked for a profile. */
} mp;

const memprofPublished *memprofGetPublished(void) {
    mp.pub.in_progress = memprofRunInProgress();
    return &mp.pub;
}

const char *memprofSourceName(const memprofPublished *pub) {
    return pub->last ? memprofSourceNames[pub->source] : "none";
}

/* ------------------------------------------------------------------------
 * History: summaries of the last published profiles, newest first.
 * --------------------------------------------------------------------- */

static void memprofSummaryFree(void *ptr) {
    memprofSummary *s = ptr;
    for (size_t i = 0; i < s->nprefixes; i++) sdsfree(s->prefixes[i].prefix);
    zfree(s->prefixes);
    zfree(s->dbs);
    zfree(s);
}

static memprofSummary *memprofSummarize(const memprofPublished *pub) {
    const memprofProfile *p = pub->last;
    memprofSummary *s = zcalloc(sizeof(*s));
    s->source = pub->source;
    s->time = pub->time;
    s->used_memory = pub->used_memory;
    s->rss = pub->mem.rss;
    memcpy(s->enc, p->f.enc, sizeof(s->enc));
    memcpy(s->ttl, p->f.ttl, sizeof(s->ttl));
    s->ndbs = p->ndbs;
    s->dbs = zmalloc(sizeof(memprofIndexed) * (p->ndbs ? p->ndbs : 1));
    memcpy(s->dbs, p->dbs, sizeof(memprofIndexed) * p->ndbs);
    s->prefixes = zmalloc(sizeof(memprofPrefix) * MEMPROF_HISTORY_PREFIXES);
    /* Depth 1 comes first in a profile, largest first. */
    for (size_t i = 0; i < p->nprefixes && p->prefixes[i].depth == 1 && s->nprefixes < MEMPROF_HISTORY_PREFIXES;
         i++) {
        s->prefixes[s->nprefixes] = p->prefixes[i];
        s->prefixes[s->nprefixes].prefix = sdsdup(p->prefixes[i].prefix);
        s->nprefixes++;
    }
    return s;
}

/* Keep at most memory-profile-history summaries (the config may have
 * shrunk since the last profile). */
static void memprofHistoryTrim(void) {
    while (mp.history && listLength(mp.history) > (unsigned long)server.memory_profile_history) {
        listDelNode(mp.history, listLast(mp.history));
    }
}

static void memprofHistoryAdd(const memprofPublished *pub) {
    if (!mp.history) {
        mp.history = listCreate();
        listSetFreeMethod(mp.history, memprofSummaryFree);
    }
    if (server.memory_profile_history > 0) listAddNodeHead(mp.history, memprofSummarize(pub));
    memprofHistoryTrim();
}

size_t memprofHistoryLength(void) {
    memprofHistoryTrim();
    return mp.history ? listLength(mp.history) : 0;
}

const memprofSummary *memprofHistoryGet(size_t i) {
    listNode *ln = mp.history ? listIndex(mp.history, (long)i) : NULL;
    return ln ? listNodeValue(ln) : NULL;
}

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
    /* The child writes its report into a region mapped now, before the
     * fork. Without one, the save goes on without a profile: the status is
     * err and the log says why. */
    sds err = NULL;
    if ((rdbflags & RDBFLAGS_STAT_MEMORY) && memprofRunPrepare(MEMPROF_SOURCE_BGSAVE, &err) != C_OK) {
        serverLog(LL_WARNING, "Background save goes on without a memory profile");
        sdsfree(err);
        rdbflags &= ~RDBFLAGS_STAT_MEMORY;
    }
    return rdbflags;
}

/* memory-profile-interval (serverCron(), after upstream started what it
 * wanted to start): a profile-only child when that long has passed since
 * the last published profile (of any source), and not more often than that
 * after a failed one. Saves and rewrites that come due later kill it
 * (memprofChildGivesWay()). */
void memprofCron(void) {
    memprofStartScheduled();
    if (server.memory_profile_interval <= 0 || hasActiveChildProcess()) return;
    time_t last = mp.pub.last ? mp.pub.time : server.stat_starttime;
    if (memprofRunLastAttempt() > last) last = memprofRunLastAttempt();
    if (server.unixtime - last < server.memory_profile_interval) return;
    sds err = NULL;
    if (memprofStartProfile(&err) != C_OK) {
        serverLog(LL_WARNING, "Scheduled memory profile not started: %s", err);
        sdsfree(err);
    }
}

void memprofNotPublished(const char *why) {
    mp.pub.status = MEMPROF_STATUS_ERR;
    serverLog(LL_WARNING, "RDB memory profile not published: %s", why);
}

void memprofPublish(memprofProfile *p, const memprofForkInstant *at) {
    memprofProfileFree(mp.last);
    mp.last = p;
    mp.pub.last = p;
    mp.pub.status = MEMPROF_STATUS_OK;
    mp.pub.source = at->source;
    mp.pub.time = at->time;
    mp.pub.duration_ms = mstime() - at->mstime;
    mp.pub.used_memory = at->used_memory;
    mp.pub.mem = at->mem;
    memprofHistoryAdd(&mp.pub);
    memprofLogProfile(p);
}
