/*
 * Copyright (c) Valkey Contributors
 * All rights reserved.
 * SPDX-License-Identifier: BSD-3-Clause
 */

/* What the files of valkey-cli --memprofile share among themselves
 * (memprofile_cli.h is what valkey-cli.c sees). Each calls only files above
 * it in this list, so that there is no cycle:
 *
 *   memprofile_cli_output.c   sizes and shares as text, sorting; the report
 *                             as JSON and as text
 *   memprofile_cli.c          options, parsing the report, talking to one
 *                             node, the progress bar, --memprofile
 *   memprofile_cli_cluster.c  --cluster memprofile: merge, skew, moves
 */

#ifndef __MEMPROFILE_CLI_INTERNAL_H
#define __MEMPROFILE_CLI_INTERNAL_H

#include <stddef.h>
#include <limits.h>
#include <signal.h>

#include "zmalloc.h"
#include "memprofile_cli.h"

#define MP_SLOTS 16384
#define MP_POLL_US 100000 /* INFO polling period while profiles run. */

/* ------------------------------------------------------------------------
 * The report
 * --------------------------------------------------------------------- */

typedef struct mpCount {
    sds name;
    long long keys, bytes;
} mpCount;

typedef struct mpCounts {
    mpCount *v;
    size_t n;
} mpCounts;

typedef struct mpHistRow {
    sds type;
    long long le, keys, bytes;
} mpHistRow;

typedef struct mpTopKey {
    sds key;
    long long key_len; /* The whole name's length (the name may be cut). */
    long long db;
    sds type, encoding;
    long long bytes, elements, ttl_ms;
    int node; /* Index of the node it came from (cluster). */
} mpTopKey;

typedef struct mpPrefix {
    sds prefix;
    long long depth, keys, bytes, error_bytes;
    long long floor; /* Merging: the sum of the floors of the nodes holding the row. */
} mpPrefix;

#define MP_MAX_DEPTH 64 /* memory-profile-prefix-depth is at most 8. */

typedef struct mpSlot {
    long long slot, keys, bytes;
} mpSlot;

typedef struct mpReport {
    sds status, source;
    long long time, duration_ms, used_memory, keys, bytes;
    mpCounts types, encodings, dbs, groups, ttl, breakdown; /* breakdown: the value is in bytes. */
    mpHistRow *hist;
    size_t nhist;
    mpTopKey *topkeys;
    size_t ntopkeys;
    mpPrefix *prefixes;
    size_t nprefixes;
    int has_slots;
    mpSlot *slots;
    size_t nslots;
    long long floor_total[MP_MAX_DEPTH + 1]; /* Merging: per depth, the floors of all nodes. */
} mpReport;

#define MP_PUSH(arr, n, item)                                \
    do {                                                     \
        (arr) = zrealloc((arr), sizeof(*(arr)) * ((n) + 1)); \
        (arr)[(n)++] = (item);                               \
    } while (0)

/* a + b and a - b saturated at the bounds of long long: the figures come
 * from servers, and their sums (a report's, a merge's, a plan's) must not
 * overflow, which would be undefined behaviour. */
static inline long long mpAdd(long long a, long long b) {
    long long r;
    return __builtin_add_overflow(a, b, &r) ? (b > 0 ? LLONG_MAX : LLONG_MIN) : r;
}
static inline long long mpSub(long long a, long long b) {
    long long r;
    return __builtin_sub_overflow(a, b, &r) ? (b < 0 ? LLONG_MAX : LLONG_MIN) : r;
}

/* What the node is doing, from INFO rdb_stats and keyspace. */
typedef struct mpNodeState {
    int supported; /* INFO has the rdb_stats section of this fork. */
    char status[16];
    int in_progress;
    long long last_time, progress_keys, total_keys;
    long long requested; /* Server time (s) we asked for a profile at; 0 when we did not. */
} mpNodeState;

/* ------------------------------------------------------------------------
 * memprofile_cli.c
 * --------------------------------------------------------------------- */

/* Small helpers. */
long long mpMstime(void);
const char *mpHuman(long long n, char *buf, size_t len);
double mpPct(long long part, long long whole);
void mpSort(void *base, size_t n, size_t size, int (*cmp)(const void *, const void *));

/* The report. */
mpCount *mpCountsGet(mpCounts *c, const char *name, size_t len);
void mpReportInit(mpReport *r);
void mpReportFree(mpReport *r);

/* Talking to one node. */
int mpReadState(valkeyContext *c, mpNodeState *st, sds *err);
int mpReplicaInSync(valkeyContext *c);
int mpStart(valkeyContext *c, mpNodeState *st, int *reused, int *started, sds *err);
extern volatile sig_atomic_t mpInterrupted;
void mpCatchSigint(int on);
void mpCancel(valkeyContext *c, const char *label);
int mpFinished(const mpNodeState *st, sds *err);
/* After reading the report: 0 with *err set when it is older than our
 * request (the server replied as if it profiled, and did not). */
int mpFresh(const mpNodeState *st, const mpReport *rep, sds *err);
int mpReadReport(valkeyContext *c, long count, mpReport *rep, sds *err);

/* The progress bar. */
void mpProgress(long long done, long long total, long long start_ms, const char *what);
void mpProgressClear(void);

/* ------------------------------------------------------------------------
 * memprofile_cli_output.c
 * --------------------------------------------------------------------- */

sds mpJsonStr(sds s, const char *str, size_t len, int output);
sds mpJsonReport(sds s, const mpReport *r, long count, char **node_names, int output);
const mpTopKey *mpBiggestOfType(const mpReport *r, const mpReport *extra, const char *type);
void mpPrintReport(const mpReport *r, const mpReport *extra, long count, char **node_names);

#endif
