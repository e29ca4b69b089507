/*
 * Copyright (c) Valkey Contributors
 * All rights reserved.
 * SPDX-License-Identifier: BSD-3-Clause
 */

/* Fork-based memory profiling.
 *
 * A background save started with BGSAVE STAT_MEMORY (or any non-replication
 * background save while rdb-save-stat-memory is yes) makes the forked child
 * add up, for every key it serializes, the exact allocator size of the value
 * by type and encoding, and keeps the deep profile: the largest keys, the
 * heaviest key prefixes, the TTL horizon, per db and per cluster slot
 * figures and size histograms. At the fork instant the child also measures
 * the keyspace tables, client buffers, the AOF buffer and the replication
 * buffers. The report travels to the parent through a shared region and is
 * published, only after a successful save, as two log lines, the rdb_stats
 * INFO section, a part of MEMORY DOCTOR and MEMORY PROFILE REPORT.
 *
 * Everything here is reached through thin hooks in upstream files; with the
 * feature off the only cost is a NULL pointer test per key, and per element
 * of the set, sorted set and hash loops, in the save child. */

#ifndef __MEMPROFILE_H
#define __MEMPROFILE_H

#include <stddef.h>
#include <sys/types.h>

#include "sds.h"

struct serverObject;
struct client;

/* Signature of the per-key callback rdb.c keeps in a file-static pointer,
 * called by rdbSaveDb() after rdbSaveKeyValuePair(), with what the save loop
 * already has: the key's name and expire (-1 for none), its db and the index
 * of the table the iterator is in (the cluster slot in cluster mode). It
 * sizes the value with the walk a profile-only child uses (memprofKeyBytes()). */
typedef void (*rdbKeyMemStatFn)(struct serverObject *o, sds key, long long expire, int dbid, int slot);

/* --- Parent side ------------------------------------------------------- */

/* BGSAVE option parsing: returns 1 when argv[i] is STAT_MEMORY. */
int memprofIsStatMemoryArg(const char *arg);
/* A BGSAVE was scheduled (SCHEDULE, or inside MULTI/EXEC), with or without
 * RDBFLAGS_STAT_MEMORY. Called before upstream sets rdb_bgsave_scheduled:
 * the request lives exactly as long as that schedule. */
void memprofScheduleRequest(int rdbflags);
/* BGSAVE STAT_MEMORY while another child runs. */
#define MEMPROF_ERR_CHILD_ACTIVE                                                                                    \
    "Another child process is active (AOF?): can't BGSAVE STAT_MEMORY right now. SCHEDULE cannot be combined "      \
    "with STAT_MEMORY: retry when the child is done, send BGSAVE STAT_MEMORY inside MULTI/EXEC to run it then, or " \
    "set rdb-save-stat-memory yes and use BGSAVE SCHEDULE."
/* rdbSaveBackground(): the flags a background save really runs with. */
int memprofSaveFlags(int rdbflags);
/* rdbSaveBackground(): serverFork(), except that a test config
 * (memory-profile-report-fault) can make a profiling save's fork fail. */
int memprofFork(int purpose);
/* rdbSaveBackground(), parent, right after the fork, whether it succeeded
 * or failed (childpid -1, errno set): a failed one releases what was
 * prepared for the profile. Keeps errno. */
void memprofSaveForked(pid_t childpid);
/* checkChildrenDone(), after the final childinfo drain, for RDB children. */
void memprofSaveDone(int exitcode, int bysignal);
/* serverCron(), after it started what was due: memory-profile-interval. */
void memprofCron(void);
/* A profile-only child runs, and only it: it does not hold back a save or a
 * rewrite that comes due (serverCron(), the replication cron), which kills
 * it with memprofKillChild() and proceeds. */
int memprofChildGivesWay(void);
/* Kill the profile-only child, if one runs, saying why (BGSAVE,
 * BGREWRITEAOF, a save point, shutdown...): the caller can fork at once. A
 * child that had finished already is published, not killed. */
void memprofKillChild(const char *why);
/* readChildInfo(): the child announced a report of 'len' bytes. */
void memprofReportAnnounced(size_t len);

/* memory-profile-groups: 1 when the value parses, else 0 with *err set. */
int memprofGroupsValidate(sds value, const char **err);
/* A config value quoted for CONFIG REWRITE, quotes and backslashes escaped. */
sds memprofGroupsConfigRepr(sds s, const char *p, size_t len);

/* memory-profile-budgets: validation, and the apply function of it and of
 * memory-profile-budget-warning (evaluates the budgets at once). */
int memprofBudgetsValidate(sds value, const char **err);
int memprofBudgetsApply(const char **err);

/* INFO rdb_stats and MEMORY DOCTOR. */
sds memprofInfoString(sds info);
sds memprofDoctorReport(sds report);
/* MEMORY PROFILE <verb> ... (memoryCommand(), argc >= 3). */
void memprofProfileCommand(struct client *c);

/* --- Child side -------------------------------------------------------- */

/* rdbSaveRio(): measure the fork-instant figures, return the per-key
 * callback (or NULL when the flag is not set). */
rdbKeyMemStatFn memprofChildBegin(int rdbflags);
/* rdbSaveBackground(), child, after a successful save: send the profile. */
void memprofChildSend(void);


#endif
