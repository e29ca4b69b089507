/*
 * Copyright (c) Valkey Contributors
 * All rights reserved.
 * SPDX-License-Identifier: BSD-3-Clause
 */

/* Fork-based memory profiling: the parent's state. See memprofile.h for
 * the overview and memprofile_internal.h for the other files.
 *
 * The parent decides which saves profile (the STAT_MEMORY flag, a scheduled
 * request, the config; never replication or the AOF preamble), prepares the
 * report region before the fork, records the fork instant, and publishes a
 * profile only when the child exited with success and its report arrived
 * and validated. A failed, killed or cancelled profiling save keeps the
 * previous profile and sets the status to err. */

#include "memprofile_internal.h"
#include "rdb.h"

#include <sys/wait.h>

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
    list *history; /* memprofSummary, newest first. */
    memprofProfile *last; /* What pub.last points to. */
    /* The profile being taken. */
    int scheduled; /* The pending scheduled BGSAVE asked for a profile. */
    int profile_scheduled;   /* MEMORY PROFILE START inside MULTI/EXEC waits for serverCron. */
    int fork_source;         /* MEMPROF_SOURCE_* of the profile being taken. */
    time_t last_attempt;     /* Last profile-only child started, for the interval. */
    time_t fork_time;
    long long fork_mstime;
    size_t fork_used_memory;
    memprofMemoryView fork_mem;
    size_t announced; /* Report length the child announced; 0 before. */
    int reaping;      /* memprofReapTimer() is scheduled. */
} mp;

const memprofPublished *memprofGetPublished(void) {
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
     * fork. Without one, the save goes on without a profile. */
    if ((rdbflags & RDBFLAGS_STAT_MEMORY) && memprofTransportPrepare() != C_OK) rdbflags &= ~RDBFLAGS_STAT_MEMORY;
    return rdbflags;
}

/* The process and its allocator now: a few mallctl reads and one read of
 * /proc, at the fork of a profiling child only. */
static void memprofTakeMemoryView(memprofMemoryView *v) {
    memset(v, 0, sizeof(*v));
    v->used_memory = zmalloc_used_memory();
    v->startup = server.initial_memory_usage;
    v->rss = zmalloc_get_rss();
    zmalloc_get_allocator_info(&v->allocated, &v->active, &v->resident, &v->retained, &v->muzzy);
#if defined(USE_JEMALLOC)
    size_t pdirty, page, sz = sizeof(size_t);
    if (!je_mallctl("stats.arenas." STRINGIFY(MALLCTL_ARENAS_ALL) ".pdirty", &pdirty, &sz, NULL, 0) &&
        !je_mallctl("arenas.page", &page, &sz, NULL, 0)) {
        v->dirty = pdirty * page;
    }
#endif
}

/* serverCron reaps children every 1/hz (100 ms at the default hz 10). While
 * a profiling child runs, the parent also looks for its exit every
 * MEMPROF_REAP_MS, so that a profile is published within a few milliseconds
 * of the child's end: one waitpid() per tick, nothing else. */
#define MEMPROF_REAP_MS 5

static long long memprofReapTimer(struct aeEventLoop *el, long long id, void *data) {
    UNUSED(el);
    UNUSED(id);
    UNUSED(data);
    if (!mp.pub.in_progress || server.child_pid == -1 ||
        (server.child_type != CHILD_TYPE_RDB && server.child_type != CHILD_TYPE_MEMPROF)) {
        mp.reaping = 0;
        return AE_NOMORE;
    }
    checkChildrenDone();
    return MEMPROF_REAP_MS;
}

static void memprofForkStarted(int source) {
    if (!mp.reaping && aeCreateTimeEvent(server.el, MEMPROF_REAP_MS, memprofReapTimer, NULL, NULL) != AE_ERR)
        mp.reaping = 1;
    mp.announced = 0;
    mp.pub.in_progress = 1;
    mp.fork_source = source;
    /* A scheduled START is answered by any profile-only child. */
    if (source == MEMPROF_SOURCE_PROFILE) mp.profile_scheduled = 0;
    mp.fork_time = time(NULL);
    mp.fork_mstime = mstime();
    mp.fork_used_memory = zmalloc_used_memory();
    memprofTakeMemoryView(&mp.fork_mem);
}

void memprofSaveStarted(int rdbflags) {
    if (!(rdbflags & RDBFLAGS_STAT_MEMORY)) {
        mp.announced = 0;
        mp.pub.in_progress = 0;
        memprofTransportRelease();
        return;
    }
    memprofForkStarted(MEMPROF_SOURCE_BGSAVE);
}

/* ------------------------------------------------------------------------
 * Profile-only children: MEMORY PROFILE START and memory-profile-interval.
 * --------------------------------------------------------------------- */

int memprofStartProfile(sds *err) {
    if (hasActiveChildProcess()) {
        if (server.child_type == CHILD_TYPE_MEMPROF)
            *err = sdsnew("A memory profile is already in progress");
        else if (server.child_type == CHILD_TYPE_RDB)
            *err = sdsnew("Background save already in progress: BGSAVE STAT_MEMORY profiles while saving");
        else
            *err = sdsnew("Another child process is active (AOF?): can't start a memory profile right now");
        return C_ERR;
    }
    if (memprofTransportPrepare() != C_OK) {
        *err = sdsnew("Can't map the memory profile's report region: see the server log");
        return C_ERR;
    }
    mp.last_attempt = time(NULL);
    pid_t childpid = serverFork(CHILD_TYPE_MEMPROF);
    if (childpid == 0) {
        /* Child */
        serverSetProcTitle("valkey-memprof");
        serverSetCpuAffinity(server.bgsave_cpulist);
        exitFromChild(memprofProfileChildMain());
    }
    if (childpid == -1) {
        memprofTransportRelease();
        *err = sdscatprintf(sdsempty(), "Can't start a memory profile: fork: %s", strerror(errno));
        return C_ERR;
    }
    serverLog(LL_NOTICE, "Memory profiling started by pid %ld", (long)childpid);
    memprofForkStarted(MEMPROF_SOURCE_PROFILE);
    return C_OK;
}

void memprofScheduleProfile(void) {
    mp.profile_scheduled = 1;
    serverLog(LL_NOTICE, "Memory profiling scheduled to run after transaction execution");
}

int memprofUnscheduleProfile(void) {
    if (!mp.profile_scheduled) return 0;
    mp.profile_scheduled = 0;
    serverLog(LL_NOTICE, "Scheduled memory profiling cancelled due to user request");
    return 1;
}

void memprofKillChild(const char *why) {
    if (server.child_type != CHILD_TYPE_MEMPROF) return;
    int statloc;
    pid_t pid = server.child_pid;
    serverLog(LL_WARNING, "Memory profiling child %ld killed: %s", (long)pid, why);
    kill(pid, SIGUSR1);
    /* Reap it now, so that the caller can fork at once. */
    while (waitpid(pid, &statloc, 0) == -1 && errno == EINTR);
    memprofSaveDone(1, SIGUSR1);
    resetChildState();
}

/* Whether persistence waits for a child (the conditions under which
 * serverCron() and the replication cron start one, see there): then a
 * profile-only child gives way. */
static const char *memprofPersistenceWaits(void) {
    if (server.rdb_bgsave_scheduled) return "a scheduled BGSAVE waits";
    if (server.aof_rewrite_scheduled) return "a scheduled AOF rewrite waits";
    for (int j = 0; j < server.saveparamslen; j++) {
        struct saveparam *sp = server.saveparams + j;
        if (server.dirty >= sp->changes && server.unixtime - server.lastsave > sp->seconds &&
            (server.unixtime - server.lastbgsave_try > CONFIG_BGSAVE_RETRY_DELAY ||
             server.lastbgsave_status == C_OK))
            return "a save point is due";
    }
    if (server.aof_state == AOF_ON && server.aof_rewrite_perc && server.aof_current_size > server.aof_rewrite_min_size) {
        long long base = server.aof_rewrite_base_size ? server.aof_rewrite_base_size : 1;
        if ((server.aof_current_size * 100 / base) - 100 >= server.aof_rewrite_perc) return "an AOF rewrite is due";
    }
    listIter li;
    listNode *ln;
    listRewind(server.replicas, &li);
    while ((ln = listNext(&li))) {
        client *replica = ln->value;
        if (replica->repl_data->repl_state == REPLICA_STATE_WAIT_BGSAVE_START) return "a replica waits for a full sync";
    }
    return NULL;
}

void memprofCron(void) {
    const char *why = memprofPersistenceWaits();
    if (why) {
        memprofKillChild(why);
        return;
    }
    if (mp.profile_scheduled && !hasActiveChildProcess()) {
        sds err = NULL;
        mp.profile_scheduled = 0;
        if (memprofStartProfile(&err) != C_OK) {
            serverLog(LL_WARNING, "Scheduled memory profile not started: %s", err);
            sdsfree(err);
        }
        return;
    }
    /* memory-profile-interval: since the last published profile (of any
     * source), and not more often than that after a failed one. */
    if (server.memory_profile_interval <= 0 || hasActiveChildProcess()) return;
    time_t last = mp.pub.last ? mp.pub.time : server.stat_starttime;
    if (mp.last_attempt > last) last = mp.last_attempt;
    if (server.unixtime - last < server.memory_profile_interval) return;
    sds err = NULL;
    if (memprofStartProfile(&err) != C_OK) {
        serverLog(LL_WARNING, "Scheduled memory profile not started: %s", err);
        sdsfree(err);
        mp.last_attempt = server.unixtime;
    }
}

void memprofReportAnnounced(size_t len) {
    /* Zero would read as "nothing announced": no valid report is empty. */
    mp.announced = len ? len : 1;
}

void memprofSaveDone(int exitcode, int bysignal) {
    if (!mp.pub.in_progress) {
        memprofTransportRelease();
        return;
    }
    mp.pub.in_progress = 0;

    memprofProfile *p = NULL;
    const char *why = NULL;
    if (bysignal)
        why = "the child was terminated by a signal";
    else if (exitcode != 0)
        why = "the child failed";
    else if (!mp.announced)
        why = "the child's report did not arrive";
    else
        p = memprofTransportRead(mp.announced, &why);
    memprofTransportRelease();
    mp.announced = 0;

    if (!p) {
        mp.pub.status = MEMPROF_STATUS_ERR;
        serverLog(LL_WARNING, "RDB memory profile not published: %s", why ? why : "the child's report is malformed");
        return;
    }
    memprofProfileFree(mp.last);
    mp.last = p;
    mp.pub.last = p;
    mp.pub.status = MEMPROF_STATUS_OK;
    mp.pub.source = mp.fork_source;
    mp.pub.time = mp.fork_time;
    mp.pub.duration_ms = mstime() - mp.fork_mstime;
    mp.pub.used_memory = mp.fork_used_memory;
    mp.pub.mem = mp.fork_mem;
    memprofHistoryAdd(&mp.pub);
    memprofLogProfile(p);
}
