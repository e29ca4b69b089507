/*
 * Copyright (c) Valkey Contributors
 * All rights reserved.
 * SPDX-License-Identifier: BSD-3-Clause
 */

/* The profile in flight: a profiling save's child or a profile-only child
 * (MEMORY PROFILE START, memory-profile-interval), from the mapping of its
 * report region before the fork to the release of that region.
 *
 * Everything the parent knows of it lives in one struct, 'run', and moves
 * through one lifecycle, each transition in one function:
 *
 *   idle --memprofRunPrepare()--> prepared --memprofRunForked()--> forked
 *   prepared --(the mapping or the fork failed)--> idle
 *   forked --memprofRunEnd()--> idle: the child was reaped and its report
 *       published, or it was killed, or it failed
 *
 * memprofRunRelease() is the only way back to idle: it unmaps the region.
 * So a region cannot outlive its profile (whatever failed), and whatever
 * ends a child, reaping or killing, decides from how it exited: a child
 * that finished before it could be killed is published like any other. */

#include "memprofile_internal.h"

#include <sys/wait.h>

typedef enum {
    MEMPROF_RUN_IDLE,     /* Nothing in flight, nothing mapped. */
    MEMPROF_RUN_PREPARED, /* The region is mapped; the fork comes next. */
    MEMPROF_RUN_FORKED,   /* The child runs; its report is awaited. */
} memprofRunState;

static struct {
    memprofRunState state;
    pid_t pid;
    memprofRegion region;
    memprofForkInstant at;
    size_t announced;      /* Report length the child announced; 0 before. */
    const char *no_report; /* Known at the fork: why no report can arrive. */
    time_t last_attempt;   /* Last profile-only child started, for the interval. */
    int reaping;           /* memprofReapTimer() is scheduled. */
    int scheduled;         /* MEMORY PROFILE START inside MULTI/EXEC waits for serverCron. */
    int save_scheduled;    /* The pending scheduled BGSAVE asked for a profile. */
} run;

/* Any state -> idle. */
static void memprofRunRelease(void) {
    memprofRegionUnmap(&run.region);
    memprofSetInProgress(0);
    run.state = MEMPROF_RUN_IDLE;
    run.pid = -1;
    run.announced = 0;
    run.no_report = NULL;
}

/* Prepared -> idle, without a child: nothing to publish. */
static void memprofRunFail(const char *why) {
    memprofRunRelease();
    memprofNotPublished(why);
}

/* Idle -> prepared. */
int memprofRunPrepare(int source, sds *err) {
    if (run.state != MEMPROF_RUN_IDLE) {
        /* Cannot happen: a profile is prepared only when no child runs,
         * and a prepared one is forked or released at once. */
        serverLog(LL_WARNING, "Memory profile: a profile was still in flight when another was prepared");
        memprofRunRelease();
    }
    sds why = memprofRegionMap(&run.region);
    if (why) {
        memprofRunFail(why);
        *err = why;
        return C_ERR;
    }
    run.state = MEMPROF_RUN_PREPARED;
    run.at.source = source;
    /* The child (a copy of this process) writes its report there. */
    memprofChildUseRegion(&run.region);
    return C_OK;
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
    if (run.state != MEMPROF_RUN_FORKED || server.child_pid == -1 ||
        (server.child_type != CHILD_TYPE_RDB && server.child_type != CHILD_TYPE_MEMPROF)) {
        run.reaping = 0;
        return AE_NOMORE;
    }
    checkChildrenDone();
    return MEMPROF_REAP_MS;
}

/* Prepared -> forked, or -> idle when the fork failed (childpid -1, errno
 * set by the fork). */
static void memprofRunForked(pid_t childpid) {
    if (childpid == -1) {
        sds why = sdscatprintf(sdsempty(), "the fork failed: %s", strerror(errno));
        memprofRunFail(why);
        sdsfree(why);
        return;
    }
    run.state = MEMPROF_RUN_FORKED;
    memprofSetInProgress(1);
    run.pid = childpid;
    run.announced = 0;
    /* openChildInfoPipe() failed: the child has nothing to announce on. */
    run.no_report = server.child_info_pipe[0] == -1 ? "there is no childinfo pipe to announce its report" : NULL;
    if (run.at.source == MEMPROF_SOURCE_PROFILE && server.memory_profile_walk_floor)
        run.no_report = "memory-profile-walk-floor is set: the child walked the keys without profiling them";
    run.at.mstime = mstime();
    run.at.time = (time_t)(run.at.mstime / 1000);
    run.at.used_memory = zmalloc_used_memory();
    memprofTakeMemoryView(&run.at.mem);
    if (!run.reaping && aeCreateTimeEvent(server.el, MEMPROF_REAP_MS, memprofReapTimer, NULL, NULL) != AE_ERR)
        run.reaping = 1;
}

/* Forked -> idle. 'killed' says why we killed the child, NULL when it
 * ended on its own. Only a child that exited with success, whose report
 * arrived and validated, is published. */
static void memprofRunEnd(int exitcode, int bysignal, const char *killed) {
    if (run.state != MEMPROF_RUN_FORKED) {
        memprofRunRelease();
        return;
    }
    memprofProfile *p = NULL;
    const char *why = NULL;
    sds reason = NULL;
    if (killed)
        why = reason = sdscatprintf(sdsempty(), "the child was killed: %s", killed);
    else if (bysignal)
        why = "the child was terminated by a signal";
    else if (exitcode != 0)
        why = "the child failed";
    else if (!run.announced)
        why = run.no_report ? run.no_report : "the child's report did not arrive";
    else {
        if (server.memory_profile_report_fault == MEMPROF_FAULT_KEEP) memprofTransportKeep(&run.region, run.announced);
        p = memprofTransportRead(&run.region, run.announced, &why);
    }
    memprofForkInstant at = run.at;
    memprofRunRelease();
    if (p) {
        memprofPublish(p, &at);
        memprofLogProfile(p);
        memprofBudgetsEvaluate();
    } else
        memprofNotPublished(why ? why : "the child's report is malformed");
    sdsfree(reason);
}

/* ------------------------------------------------------------------------
 * The hooks of the save path (rdb.c, childinfo.c, server.c)
 * --------------------------------------------------------------------- */

int memprofFork(int purpose) {
    if (server.memory_profile_report_fault == MEMPROF_FAULT_FORK && run.state == MEMPROF_RUN_PREPARED) {
        errno = EAGAIN;
        return -1;
    }
    return serverFork(purpose);
}

void memprofSaveForked(pid_t childpid) {
    if (run.state != MEMPROF_RUN_PREPARED) return;
    int fork_errno = errno;
    memprofRunForked(childpid);
    errno = fork_errno; /* For upstream's log line of a failed fork. */
}

void memprofReportAnnounced(size_t len) {
    /* Zero would read as "nothing announced": no valid report is empty. */
    if (run.state == MEMPROF_RUN_FORKED) run.announced = len ? len : 1;
}

void memprofSaveDone(int exitcode, int bysignal) {
    memprofRunEnd(exitcode, bysignal, NULL);
}

/* ------------------------------------------------------------------------
 * Which saves profile, and when the interval starts a profile-only child
 * --------------------------------------------------------------------- */

int memprofIsStatMemoryArg(const char *arg) {
    return !strcasecmp(arg, "stat_memory");
}

void memprofScheduleRequest(int rdbflags) {
    /* One schedule serves every BGSAVE sent while it is pending: it profiles
     * when any of them asked. A schedule that is no longer pending (it ran,
     * or was cancelled) carries nothing over to the next one. */
    run.save_scheduled = (rdbflags & RDBFLAGS_STAT_MEMORY) || (run.save_scheduled && server.rdb_bgsave_scheduled);
}

int memprofSaveFlags(int rdbflags) {
    if (rdbflags & (RDBFLAGS_REPLICATION | RDBFLAGS_AOF_PREAMBLE)) return rdbflags & ~RDBFLAGS_STAT_MEMORY;
    /* The request is honoured while upstream's schedule is pending: a save
     * whose fork failed leaves it pending, and the retry profiles. */
    if (server.rdb_save_stat_memory || (run.save_scheduled && server.rdb_bgsave_scheduled)) {
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
    const memprofPublished *pub = memprofGetPublished();
    time_t last = pub->last ? pub->time : server.stat_starttime;
    if (run.last_attempt > last) last = run.last_attempt;
    if (server.unixtime - last < server.memory_profile_interval) return;
    sds err = NULL;
    if (memprofStartProfile(&err) != C_OK) {
        serverLog(LL_WARNING, "Scheduled memory profile not started: %s", err);
        sdsfree(err);
    }
}

/* ------------------------------------------------------------------------
 * Profile-only children: MEMORY PROFILE START and memory-profile-interval
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
    run.last_attempt = time(NULL);
    sds why = NULL;
    if (memprofRunPrepare(MEMPROF_SOURCE_PROFILE, &why) != C_OK) {
        *err = sdscatprintf(sdsempty(), "Can't start a memory profile: %s", why);
        sdsfree(why);
        return C_ERR;
    }
    pid_t childpid = memprofFork(CHILD_TYPE_MEMPROF);
    if (childpid == 0) {
        /* Child */
        serverSetProcTitle("valkey-memprof");
        serverSetCpuAffinity(server.bgsave_cpulist);
        exitFromChild(memprofProfileChildMain());
    }
    int fork_errno = errno;
    memprofRunForked(childpid);
    if (childpid == -1) {
        *err = sdscatprintf(sdsempty(), "Can't start a memory profile: fork: %s", strerror(fork_errno));
        return C_ERR;
    }
    serverLog(LL_NOTICE, "Memory profiling started by pid %ld", (long)childpid);
    /* A scheduled START is answered by any profile-only child. */
    run.scheduled = 0;
    return C_OK;
}

/* MEMORY PROFILE START inside MULTI/EXEC does not fork in the middle of the
 * transaction (as BGSAVE): it is scheduled, and serverCron starts it as soon
 * as no child runs. */
void memprofScheduleProfile(void) {
    run.scheduled = 1;
    serverLog(LL_NOTICE, "Memory profiling scheduled to run after transaction execution");
}

int memprofUnscheduleProfile(void) {
    if (!run.scheduled) return 0;
    run.scheduled = 0;
    serverLog(LL_NOTICE, "Scheduled memory profiling cancelled due to user request");
    return 1;
}

void memprofStartScheduled(void) {
    if (!run.scheduled || hasActiveChildProcess()) return;
    run.scheduled = 0;
    sds err = NULL;
    if (memprofStartProfile(&err) != C_OK) {
        serverLog(LL_WARNING, "Scheduled memory profile not started: %s", err);
        sdsfree(err);
    }
}

int memprofChildGivesWay(void) {
    return server.child_type == CHILD_TYPE_MEMPROF && !scriptingEngineDebuggerPendingChildren();
}

/* Kill the profile-only child and reap it now, so that the caller can fork
 * at once. SIGKILL, not the SIGUSR1 an RDB child gets: the child writes no
 * file, so it has nothing to clean up, and a stopped child (SIGSTOP, a
 * debugger) would leave SIGUSR1 pending and this waitpid() blocking the
 * server until someone continued it; SIGKILL ends a stopped process too. */
void memprofKillChild(const char *why) {
    if (server.child_type != CHILD_TYPE_MEMPROF) return;
    pid_t pid = server.child_pid;
    int statloc = 0, exitcode = 1, bysignal = 0;
    kill(pid, SIGKILL);
    pid_t reaped;
    while ((reaped = waitpid(pid, &statloc, 0)) == -1 && errno == EINTR)
        ;
    if (reaped == pid) {
        if (WIFEXITED(statloc)) exitcode = WEXITSTATUS(statloc);
        if (WIFSIGNALED(statloc)) bysignal = WTERMSIG(statloc);
        /* A child that caught an earlier SIGUSR1 exits with this code (as
         * checkChildrenDone() reads it). */
        if (exitcode == SERVER_CHILD_NOERROR_RETVAL) {
            bysignal = SIGUSR1;
            exitcode = 1;
        }
    }
    if (reaped == pid && exitcode == 0 && !bysignal) {
        /* It finished before the signal: its profile is whole. */
        serverLog(LL_NOTICE, "Memory profiling child %ld had finished when %s: its profile is published", (long)pid,
                  why);
        receiveChildInfo();
        memprofRunEnd(0, 0, NULL);
    } else if (reaped != pid || bysignal == SIGKILL || bysignal == SIGUSR1) {
        serverLog(LL_WARNING, "Memory profiling child %ld killed: %s", (long)pid, why);
        memprofRunEnd(exitcode, bysignal, why);
    } else {
        memprofRunEnd(exitcode, bysignal, NULL);
    }
    resetChildState();
}
