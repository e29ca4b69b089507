/*
 * Copyright (c) Valkey Contributors
 * All rights reserved.
 * SPDX-License-Identifier: BSD-3-Clause
 */

/* valkey-cli --memprofile and valkey-cli --cluster memprofile.
 *
 * The server does the work: MEMORY PROFILE START (or BGSAVE STAT_MEMORY)
 * forks a child that walks every key; INFO rdb_stats shows its progress
 * (rdb_stats_in_progress, rdb_stats_progress_keys) and, once it is
 * published, its status; MEMORY PROFILE REPORT returns it. Here we start
 * it, draw a progress bar on stderr while it runs (only when stderr is a
 * terminal), read the report and print it as a summary in the style of
 * --bigkeys, or as JSON.
 *
 * In a cluster the same runs on every primary, or on one replica of each
 * shard, and the reports merge: counters, histograms and per-slot figures
 * add, the top keys are the largest of all nodes, and the Space-Saving
 * prefix summaries add their rows and their error bounds. From the per-slot
 * bytes we compute the skew between primaries and propose slot moves that
 * would bring every primary within 5% of the mean; nothing is moved.
 *
 * The reply of REPORT is a map under RESP3 and a flat array of alternating
 * names and values under RESP2: mpField() reads both. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <errno.h>
#include <stdarg.h>
#include <time.h>
#include <signal.h>
#include <sys/time.h>
#include <hiredis.h>
#include <sdscompat.h>
#include <sds.h>

#include "zmalloc.h"
#include "memprofile_cli.h"

#define MP_SLOTS 16384
#define MP_POLL_US 100000         /* INFO polling period while profiles run. */
#define MP_REPLY_TIMEOUT_SEC 30   /* A node that does not answer a command in this long has failed. */
#define MP_BALANCE_THRESHOLD 0.05 /* Every primary within 5% of the mean. */

memprofCliConfig memprofCli = {.enabled = 0, .count = 10, .save = 0, .max_age = -1, .from_replicas = 0};

/* ------------------------------------------------------------------------
 * Options
 * --------------------------------------------------------------------- */

static long long mpParseNumber(const char *opt, const char *value) {
    char *end = NULL;
    errno = 0;
    if (!value) {
        fprintf(stderr, "Option %s needs a value\n", opt);
        exit(1);
    }
    long long v = strtoll(value, &end, 10);
    if (*value == '\0' || *end != '\0' || errno || v < 0) {
        fprintf(stderr, "Invalid value for %s: '%s' (a non-negative integer is expected)\n", opt, value);
        exit(1);
    }
    return v;
}

int memprofCliParseOption(int argc, char **argv, int *i) {
    const char *opt = argv[*i];
    const char *value = *i + 1 < argc ? argv[*i + 1] : NULL;
    if (!strcmp(opt, "--memprofile")) {
        memprofCli.enabled = 1;
    } else if (!strcmp(opt, "--memprofile-save")) {
        memprofCli.save = 1;
    } else if (!strcmp(opt, "--cluster-from-replicas")) {
        memprofCli.from_replicas = 1;
    } else if (!strcmp(opt, "--memprofile-count")) {
        long long v = mpParseNumber(opt, value);
        if (v > 1000000) {
            fprintf(stderr, "Invalid value for %s: '%s' (at most 1000000; 0 lists everything)\n", opt, value);
            exit(1);
        }
        memprofCli.count = (long)v;
        (*i)++;
    } else if (!strcmp(opt, "--memprofile-max-age")) {
        memprofCli.max_age = mpParseNumber(opt, value);
        (*i)++;
    } else {
        return 0;
    }
    return 1;
}

const char *memprofCliUsage(void) {
    return "  --memprofile       Profile the memory of every key in a forked child of the server\n"
           "                     (MEMORY PROFILE START) and print a summary by type, encoding,\n"
           "                     biggest keys, prefixes and TTL. With --json, print it as JSON.\n"
           "  --memprofile-count <n> Length of each list of --memprofile (default: 10, 0: all).\n"
           "  --memprofile-save  With --memprofile, profile with BGSAVE STAT_MEMORY (writes the RDB).\n"
           "  --memprofile-max-age <sec> With --memprofile, reuse a profile younger than <sec>\n"
           "                     seconds instead of forking.\n";
}

/* ------------------------------------------------------------------------
 * Small helpers: time, sizes, INFO fields, reply fields
 * --------------------------------------------------------------------- */

static long long mpMstime(void) {
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (long long)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* 1234567 -> "1.18M"; exact figures are printed next to it. */
static const char *mpHuman(long long n, char *buf, size_t len) {
    const char *units = "BKMGTP";
    double d = (double)n;
    int u = 0;
    while (d >= 1024 && u < 5) {
        d /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(buf, len, "%lldB", n);
    else
        snprintf(buf, len, "%.2f%c", d, units[u]);
    return buf;
}

static double mpPct(long long part, long long whole) {
    return whole ? 100.0 * (double)part / (double)whole : 0.0;
}

/* The value of 'name' in an INFO reply, or NULL; copied into buf. */
static const char *mpInfoField(const char *info, const char *name, char *buf, size_t len) {
    size_t nlen = strlen(name);
    const char *p = info;
    while (p && *p) {
        if (!strncmp(p, name, nlen) && p[nlen] == ':') {
            const char *v = p + nlen + 1;
            size_t vlen = strcspn(v, "\r\n");
            if (vlen >= len) vlen = len - 1;
            memcpy(buf, v, vlen);
            buf[vlen] = '\0';
            return buf;
        }
        p = strchr(p, '\n');
        if (p) p++;
    }
    return NULL;
}

static long long mpInfoLL(const char *info, const char *name) {
    char buf[64];
    return mpInfoField(info, name, buf, sizeof(buf)) ? strtoll(buf, NULL, 10) : 0;
}

/* Keys of all dbs, from the Keyspace section (dbN:keys=X,...). */
static long long mpInfoTotalKeys(const char *info) {
    long long total = 0;
    const char *p = info;
    while (p && *p) {
        if (!strncmp(p, "db", 2) && p[2] >= '0' && p[2] <= '9') {
            const char *k = strstr(p, ":keys=");
            const char *eol = strchr(p, '\n');
            if (k && (!eol || k < eol)) total += strtoll(k + 6, NULL, 10);
        }
        p = strchr(p, '\n');
        if (p) p++;
    }
    return total;
}

static int mpIsString(const redisReply *r) {
    return r && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS || r->type == REDIS_REPLY_VERB);
}

/* The value under 'name' of a map (RESP3) or of a flat array of alternating
 * names and values (RESP2). */
static redisReply *mpField(const redisReply *r, const char *name) {
    if (!r || (r->type != REDIS_REPLY_MAP && r->type != REDIS_REPLY_ARRAY)) return NULL;
    size_t nlen = strlen(name);
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        const redisReply *k = r->element[i];
        if (mpIsString(k) && k->len == nlen && !memcmp(k->str, name, nlen)) return r->element[i + 1];
    }
    return NULL;
}

static long long mpReplyLL(const redisReply *v) {
    if (!v) return 0;
    if (v->type == REDIS_REPLY_INTEGER) return v->integer;
    if (v->type == REDIS_REPLY_DOUBLE) return (long long)v->dval;
    if (mpIsString(v)) return strtoll(v->str, NULL, 10);
    return 0;
}

static long long mpLL(const redisReply *r, const char *name) {
    return mpReplyLL(mpField(r, name));
}

static sds mpStr(const redisReply *r, const char *name) {
    const redisReply *v = mpField(r, name);
    return mpIsString(v) ? sdsnewlen(v->str, v->len) : sdsempty();
}

/* Pairs of a map or flat array: the number of name/value pairs. */
static size_t mpPairs(const redisReply *r) {
    if (!r || (r->type != REDIS_REPLY_MAP && r->type != REDIS_REPLY_ARRAY)) return 0;
    return r->elements / 2;
}

/* A command's reply, or NULL with *err set (connection error or error reply). */
static redisReply *mpCommand(redisContext *c, sds *err, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    if (!r) {
        *err = sdscatprintf(sdsempty(), "no reply (%s)", c->errstr[0] ? c->errstr : "connection lost");
        return NULL;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        *err = sdsnewlen(r->str, r->len);
        freeReplyObject(r);
        return NULL;
    }
    return r;
}

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
    mpCounts types, encodings, dbs, ttl, breakdown; /* breakdown: the value is in bytes. */
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

static mpCount *mpCountsGet(mpCounts *c, const char *name, size_t len) {
    for (size_t i = 0; i < c->n; i++) {
        if (sdslen(c->v[i].name) == len && !memcmp(c->v[i].name, name, len)) return &c->v[i];
    }
    mpCount item = {sdsnewlen(name, len), 0, 0};
    MP_PUSH(c->v, c->n, item);
    return &c->v[c->n - 1];
}

static void mpCountsFree(mpCounts *c) {
    for (size_t i = 0; i < c->n; i++) sdsfree(c->v[i].name);
    zfree(c->v);
    c->v = NULL;
    c->n = 0;
}

static void mpReportFree(mpReport *r) {
    sdsfree(r->status);
    sdsfree(r->source);
    mpCountsFree(&r->types);
    mpCountsFree(&r->encodings);
    mpCountsFree(&r->dbs);
    mpCountsFree(&r->ttl);
    mpCountsFree(&r->breakdown);
    for (size_t i = 0; i < r->nhist; i++) sdsfree(r->hist[i].type);
    zfree(r->hist);
    for (size_t i = 0; i < r->ntopkeys; i++) {
        sdsfree(r->topkeys[i].key);
        sdsfree(r->topkeys[i].type);
        sdsfree(r->topkeys[i].encoding);
    }
    zfree(r->topkeys);
    for (size_t i = 0; i < r->nprefixes; i++) sdsfree(r->prefixes[i].prefix);
    zfree(r->prefixes);
    zfree(r->slots);
    memset(r, 0, sizeof(*r));
}

static void mpReportInit(mpReport *r) {
    memset(r, 0, sizeof(*r));
    r->status = sdsempty();
    r->source = sdsempty();
}

/* A map of {name: {keys, bytes}} (types, encodings, dbs, ttl). */
static void mpParseCounts(const redisReply *m, mpCounts *out) {
    for (size_t i = 0; i < mpPairs(m); i++) {
        const redisReply *k = m->element[2 * i], *v = m->element[2 * i + 1];
        if (!mpIsString(k)) continue;
        mpCount *c = mpCountsGet(out, k->str, k->len);
        c->keys += mpLL(v, "keys");
        c->bytes += mpLL(v, "bytes");
    }
}

/* Parse a REPORT reply. Returns 0 when it does not look like one. */
static int mpParseReport(const redisReply *r, mpReport *out) {
    mpReportInit(out);
    if (!mpField(r, "status") || !mpField(r, "keys")) return 0;
    sdsfree(out->status);
    sdsfree(out->source);
    out->status = mpStr(r, "status");
    out->source = mpStr(r, "source");
    out->time = mpLL(r, "time");
    out->duration_ms = mpLL(r, "duration_ms");
    out->used_memory = mpLL(r, "used_memory");
    out->keys = mpLL(r, "keys");
    out->bytes = mpLL(r, "bytes");
    mpParseCounts(mpField(r, "types"), &out->types);
    mpParseCounts(mpField(r, "encodings"), &out->encodings);
    mpParseCounts(mpField(r, "dbs"), &out->dbs);
    mpParseCounts(mpField(r, "ttl"), &out->ttl);

    const redisReply *h = mpField(r, "histograms");
    for (size_t i = 0; i < mpPairs(h); i++) {
        const redisReply *t = h->element[2 * i], *rows = h->element[2 * i + 1];
        if (!mpIsString(t) || rows->type != REDIS_REPLY_ARRAY) continue;
        for (size_t j = 0; j < rows->elements; j++) {
            mpHistRow row = {sdsnewlen(t->str, t->len), mpLL(rows->element[j], "le"), mpLL(rows->element[j], "keys"),
                             mpLL(rows->element[j], "bytes")};
            MP_PUSH(out->hist, out->nhist, row);
        }
    }

    const redisReply *tk = mpField(r, "topkeys");
    for (size_t i = 0; tk && tk->type == REDIS_REPLY_ARRAY && i < tk->elements; i++) {
        const redisReply *e = tk->element[i];
        mpTopKey k = {.key = mpStr(e, "key"),
                      .db = mpLL(e, "db"),
                      .type = mpStr(e, "type"),
                      .encoding = mpStr(e, "encoding"),
                      .bytes = mpLL(e, "bytes"),
                      .elements = mpLL(e, "elements"),
                      .ttl_ms = mpLL(e, "ttl_ms"),
                      .node = 0};
        k.key_len = mpField(e, "key_len") ? mpLL(e, "key_len") : (long long)sdslen(k.key);
        MP_PUSH(out->topkeys, out->ntopkeys, k);
    }

    const redisReply *px = mpField(r, "prefixes");
    for (size_t i = 0; px && px->type == REDIS_REPLY_ARRAY && i < px->elements; i++) {
        const redisReply *e = px->element[i];
        mpPrefix p = {mpStr(e, "prefix"), mpLL(e, "depth"), mpLL(e, "keys"), mpLL(e, "bytes"),
                      mpLL(e, "error_bytes"), 0};
        MP_PUSH(out->prefixes, out->nprefixes, p);
    }

    const redisReply *sl = mpField(r, "slots");
    out->has_slots = sl != NULL;
    for (size_t i = 0; sl && sl->type == REDIS_REPLY_ARRAY && i < sl->elements; i++) {
        const redisReply *e = sl->element[i];
        mpSlot s = {mpLL(e, "slot"), mpLL(e, "keys"), mpLL(e, "bytes")};
        if (s.slot < 0 || s.slot >= MP_SLOTS) continue;
        MP_PUSH(out->slots, out->nslots, s);
    }

    const redisReply *b = mpField(r, "breakdown");
    for (size_t i = 0; i < mpPairs(b); i++) {
        const redisReply *k = b->element[2 * i];
        if (!mpIsString(k)) continue;
        mpCountsGet(&out->breakdown, k->str, k->len)->bytes += mpReplyLL(b->element[2 * i + 1]);
    }
    return 1;
}

/* ------------------------------------------------------------------------
 * Talking to one node: start, poll, read
 * --------------------------------------------------------------------- */

/* What the node is doing, from INFO rdb_stats and keyspace. */
typedef struct mpNodeState {
    int supported; /* INFO has the rdb_stats section of this fork. */
    char status[16];
    int in_progress;
    long long last_time, progress_keys, total_keys;
} mpNodeState;

static int mpReadState(redisContext *c, mpNodeState *st, sds *err) {
    redisReply *r = mpCommand(c, err, "INFO rdb_stats keyspace");
    if (!r) return 0;
    if (!mpIsString(r)) {
        freeReplyObject(r);
        *err = sdsnew("unexpected reply to INFO");
        return 0;
    }
    memset(st, 0, sizeof(*st));
    st->supported = mpInfoField(r->str, "rdb_stats_status", st->status, sizeof(st->status)) != NULL;
    st->in_progress = (int)mpInfoLL(r->str, "rdb_stats_in_progress");
    st->last_time = mpInfoLL(r->str, "rdb_stats_last_time");
    st->progress_keys = mpInfoLL(r->str, "rdb_stats_progress_keys");
    st->total_keys = mpInfoTotalKeys(r->str);
    freeReplyObject(r);
    return 1;
}

/* The server's clock, in seconds. */
static long long mpServerTime(redisContext *c) {
    sds err = NULL;
    redisReply *r = mpCommand(c, &err, "TIME");
    long long t = (long long)time(NULL);
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2) t = mpReplyLL(r->element[0]);
    if (r) freeReplyObject(r);
    sdsfree(err);
    return t;
}

/* A replica whose link to its primary is up (not loading a full sync). */
static int mpReplicaInSync(redisContext *c) {
    sds err = NULL;
    char buf[16];
    redisReply *r = mpCommand(c, &err, "INFO replication");
    int ok = r && mpIsString(r) && mpInfoField(r->str, "master_link_status", buf, sizeof(buf)) && !strcmp(buf, "up");
    if (r) freeReplyObject(r);
    sdsfree(err);
    return ok;
}

static const char *mpUnsupported(void) {
    return "the server does not support memory profiles (no MEMORY PROFILE, no INFO rdb_stats): "
           "it needs Valkey with fork-based memory profiling";
}

/* Turn a server error into a message that says what to do. */
static sds mpExplainError(sds err, const char *cmd) {
    sds msg;
    if (strstr(err, "unknown subcommand") || strstr(err, "unknown command") ||
        (memprofCli.save && strstr(err, "syntax error"))) {
        msg = sdscatprintf(sdsempty(), "%s (%s: %s)", mpUnsupported(), cmd, err);
    } else if (!strncmp(err, "NOPERM", 6)) {
        msg = sdscatprintf(sdsempty(),
                           "permission denied: --memprofile needs INFO and MEMORY PROFILE, an @admin command; "
                           "this user may not run %s (%s)",
                           cmd, err);
    } else if (strstr(err, "in progress") || strstr(err, "child process")) {
        msg = sdscatprintf(sdsempty(), "another child process is running on the server, retry when it ends (%s: %s)",
                           cmd, err);
    } else {
        msg = sdscatprintf(sdsempty(), "%s failed: %s", cmd, err);
    }
    sdsfree(err);
    return msg;
}

/* Start a profile, or decide to reuse a fresh one (*reused) or to wait for
 * one already running. Returns 0 with *err set on failure. */
static int mpStart(redisContext *c, mpNodeState *st, int *reused, int *started, sds *err) {
    *reused = 0;
    *started = 0;
    if (!mpReadState(c, st, err)) {
        if (!strncmp(*err, "NOPERM", 6)) *err = mpExplainError(*err, "INFO rdb_stats");
        return 0;
    }
    if (!st->supported) {
        *err = sdsnew(mpUnsupported());
        return 0;
    }
    if (memprofCli.max_age >= 0 && !st->in_progress && !strcmp(st->status, "ok") &&
        mpServerTime(c) - st->last_time <= memprofCli.max_age) {
        *reused = 1;
        return 1;
    }
    if (st->in_progress) return 1; /* One is running already: wait for it. */
    const char *cmd = memprofCli.save ? "BGSAVE STAT_MEMORY" : "MEMORY PROFILE START";
    redisReply *r = mpCommand(c, err, cmd);
    if (!r) {
        *err = mpExplainError(*err, cmd);
        return 0;
    }
    freeReplyObject(r);
    st->in_progress = 1;
    *started = 1;
    return 1;
}

/* Ctrl-C while profiles run: the profile-only children we started are
 * cancelled (a BGSAVE STAT_MEMORY is left to finish its save). */
static volatile sig_atomic_t mpInterrupted = 0;

static void mpOnSigint(int sig) {
    (void)sig;
    mpInterrupted = 1;
}

static void mpCatchSigint(int on) {
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on ? mpOnSigint : SIG_DFL;
    sigaction(SIGINT, &sa, NULL);
}

static void mpCancel(redisContext *c, const char *label) {
    if (memprofCli.save) {
        fprintf(stderr, "%s%sinterrupted: the BGSAVE STAT_MEMORY goes on on the server\n", label ? label : "",
                label ? ": " : "");
        return;
    }
    sds err = NULL;
    redisReply *r = mpCommand(c, &err, "MEMORY PROFILE CANCEL");
    fprintf(stderr, "%s%sinterrupted: %s\n", label ? label : "", label ? ": " : "",
            r ? "the profile was cancelled (MEMORY PROFILE CANCEL)" : err);
    if (r) freeReplyObject(r);
    sdsfree(err);
}

/* After the child ends: 0 with *err set when it published nothing. */
static int mpFinished(const mpNodeState *st, sds *err) {
    if (strcmp(st->status, "ok")) {
        *err = sdscatprintf(sdsempty(),
                            "the profile failed or was cancelled (rdb_stats_status:%s): a save, a rewrite, a full "
                            "sync, MEMORY PROFILE CANCEL or a failure stopped it; the server's log says which",
                            st->status);
        return 0;
    }
    return 1;
}

static int mpReadReport(redisContext *c, long count, mpReport *rep, sds *err) {
    redisReply *r = mpCommand(c, err, "MEMORY PROFILE REPORT COUNT %ld", count);
    if (!r) {
        *err = mpExplainError(*err, "MEMORY PROFILE REPORT");
        return 0;
    }
    int ok = mpParseReport(r, rep);
    freeReplyObject(r);
    if (!ok) *err = sdsnew("unexpected reply to MEMORY PROFILE REPORT");
    return ok;
}

/* ------------------------------------------------------------------------
 * Progress bar (stderr, only on a terminal)
 * --------------------------------------------------------------------- */

static int mpProgressShown = 0;

static void mpProgress(long long done, long long total, long long start_ms, const char *what) {
    if (!isatty(STDERR_FILENO)) return;
    char bar[31];
    double frac = total > 0 ? (double)done / (double)total : 0;
    if (frac > 1) frac = 1;
    int fill = (int)(frac * 30);
    for (int i = 0; i < 30; i++) bar[i] = i < fill ? '#' : '-';
    bar[30] = '\0';
    fprintf(stderr, "\r\033[K[%s] %5.1f%% %lld/%lld keys %.1fs %s", bar, frac * 100, done, total,
            (double)(mpMstime() - start_ms) / 1000, what);
    fflush(stderr);
    mpProgressShown = 1;
}

static void mpProgressClear(void) {
    if (!mpProgressShown) return;
    fprintf(stderr, "\r\033[K");
    fflush(stderr);
    mpProgressShown = 0;
}

/* ------------------------------------------------------------------------
 * Output: JSON
 * --------------------------------------------------------------------- */

/* Length of a valid UTF-8 sequence at p (at most len bytes), 0 if invalid. */
static size_t mpUtf8Len(const unsigned char *p, size_t len) {
    size_t n;
    unsigned int cp;
    if (p[0] < 0x80) return 1;
    if ((p[0] & 0xE0) == 0xC0)
        n = 2, cp = p[0] & 0x1F;
    else if ((p[0] & 0xF0) == 0xE0)
        n = 3, cp = p[0] & 0x0F;
    else if ((p[0] & 0xF8) == 0xF0)
        n = 4, cp = p[0] & 0x07;
    else
        return 0;
    if (n > len) return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (p[i] & 0x3F);
    }
    if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return n;
}

/* A JSON string of any bytes. Control characters, quotes and backslashes
 * are escaped. With --json, valid UTF-8 passes through and any other byte
 * is written as \u00XX; with --quoted-json every byte from 0x80 up is
 * written as \u00XX, so the output is ASCII and decoding each code point as
 * one byte (Latin-1) gives back the exact name. */
static sds mpJsonStr(sds s, const char *str, size_t len, int output) {
    const unsigned char *p = (const unsigned char *)str;
    s = sdscatlen(s, "\"", 1);
    for (size_t i = 0; i < len;) {
        unsigned char ch = p[i];
        size_t n = 1;
        if (ch == '"' || ch == '\\') {
            s = sdscatprintf(s, "\\%c", ch);
        } else if (ch == '\n') {
            s = sdscatlen(s, "\\n", 2);
        } else if (ch == '\r') {
            s = sdscatlen(s, "\\r", 2);
        } else if (ch == '\t') {
            s = sdscatlen(s, "\\t", 2);
        } else if (ch < 0x20 || ch == 0x7f) {
            s = sdscatprintf(s, "\\u%04x", ch);
        } else if (ch < 0x80) {
            s = sdscatlen(s, (const char *)p + i, 1);
        } else if (output == MEMPROF_CLI_JSON && (n = mpUtf8Len(p + i, len - i)) > 0) {
            s = sdscatlen(s, (const char *)p + i, n);
        } else {
            n = 1;
            s = sdscatprintf(s, "\\u%04x", ch);
        }
        i += n;
    }
    return sdscatlen(s, "\"", 1);
}

static sds mpJsonCounts(sds s, const char *name, const mpCounts *c, int value_only, int output) {
    s = mpJsonStr(s, name, strlen(name), output);
    s = sdscat(s, ": {");
    for (size_t i = 0; i < c->n; i++) {
        if (i) s = sdscat(s, ", ");
        s = mpJsonStr(s, c->v[i].name, sdslen(c->v[i].name), output);
        if (value_only)
            s = sdscatprintf(s, ": %lld", c->v[i].bytes);
        else
            s = sdscatprintf(s, ": {\"keys\": %lld, \"bytes\": %lld}", c->v[i].keys, c->v[i].bytes);
    }
    return sdscat(s, "}");
}

/* The report's fields, without the enclosing braces. node_names is given
 * for a merged cluster report (top keys name their node). */
static sds mpJsonReport(sds s, const mpReport *r, long count, char **node_names, int output) {
    s = sdscat(s, "\"status\": ");
    s = mpJsonStr(s, r->status, sdslen(r->status), output);
    s = sdscat(s, ", \"source\": ");
    s = mpJsonStr(s, r->source, sdslen(r->source), output);
    s = sdscatprintf(s, ", \"time\": %lld, \"duration_ms\": %lld, \"used_memory\": %lld, \"keys\": %lld, "
                        "\"bytes\": %lld,\n ",
                     r->time, r->duration_ms, r->used_memory, r->keys, r->bytes);
    s = mpJsonCounts(s, "types", &r->types, 0, output);
    s = sdscat(s, ",\n ");
    s = mpJsonCounts(s, "encodings", &r->encodings, 0, output);
    s = sdscat(s, ",\n ");
    s = mpJsonCounts(s, "dbs", &r->dbs, 0, output);
    s = sdscat(s, ",\n ");
    s = mpJsonCounts(s, "ttl", &r->ttl, 0, output);
    s = sdscat(s, ",\n \"histograms\": {");
    for (size_t i = 0; i < r->nhist; i++) {
        const mpHistRow *h = &r->hist[i];
        int first = i == 0 || strcmp(h->type, r->hist[i - 1].type);
        if (first) {
            if (i) s = sdscat(s, "], ");
            s = mpJsonStr(s, h->type, sdslen(h->type), output);
            s = sdscat(s, ": [");
        } else {
            s = sdscat(s, ", ");
        }
        s = sdscatprintf(s, "{\"le\": %lld, \"keys\": %lld, \"bytes\": %lld}", h->le, h->keys, h->bytes);
    }
    s = sdscat(s, r->nhist ? "]}" : "}");
    s = sdscat(s, ",\n \"topkeys\": [");
    for (size_t i = 0; i < r->ntopkeys && (count == 0 || (long)i < count); i++) {
        const mpTopKey *k = &r->topkeys[i];
        s = sdscat(s, i ? ",\n  {\"key\": " : "\n  {\"key\": ");
        s = mpJsonStr(s, k->key, sdslen(k->key), output);
        if (k->key_len != (long long)sdslen(k->key)) s = sdscatprintf(s, ", \"key_len\": %lld", k->key_len);
        s = sdscatprintf(s, ", \"db\": %lld, \"type\": ", k->db);
        s = mpJsonStr(s, k->type, sdslen(k->type), output);
        s = sdscat(s, ", \"encoding\": ");
        s = mpJsonStr(s, k->encoding, sdslen(k->encoding), output);
        s = sdscatprintf(s, ", \"bytes\": %lld, \"elements\": %lld, \"ttl_ms\": %lld", k->bytes, k->elements,
                         k->ttl_ms);
        if (node_names) {
            s = sdscat(s, ", \"node\": ");
            s = mpJsonStr(s, node_names[k->node], strlen(node_names[k->node]), output);
        }
        s = sdscat(s, "}");
    }
    s = sdscat(s, "],\n \"prefixes\": [");
    long in_depth = 0;
    int first = 1;
    for (size_t i = 0; i < r->nprefixes; i++) {
        const mpPrefix *p = &r->prefixes[i];
        if (i == 0 || p->depth != r->prefixes[i - 1].depth) in_depth = 0;
        if (count && in_depth++ >= count) continue;
        s = sdscat(s, first ? "\n  {\"prefix\": " : ",\n  {\"prefix\": ");
        first = 0;
        s = mpJsonStr(s, p->prefix, sdslen(p->prefix), output);
        s = sdscatprintf(s, ", \"depth\": %lld, \"keys\": %lld, \"bytes\": %lld, \"error_bytes\": %lld}", p->depth,
                         p->keys, p->bytes, p->error_bytes);
    }
    s = sdscat(s, "]");
    if (r->has_slots) {
        s = sdscat(s, ",\n \"slots\": [");
        for (size_t i = 0; i < r->nslots && (count == 0 || (long)i < count); i++) {
            s = sdscatprintf(s, "%s{\"slot\": %lld, \"keys\": %lld, \"bytes\": %lld}", i ? ", " : "",
                             r->slots[i].slot, r->slots[i].keys, r->slots[i].bytes);
        }
        s = sdscat(s, "]");
    }
    s = sdscat(s, ",\n ");
    s = mpJsonCounts(s, "breakdown", &r->breakdown, 1, output);
    return s;
}

/* ------------------------------------------------------------------------
 * Output: text, in the style of --bigkeys
 * --------------------------------------------------------------------- */

static void mpPrintKeyName(const char *name, size_t len, long long whole) {
    sds q = sdscatrepr(sdsempty(), name, len);
    printf("%s", q);
    if (whole != (long long)len) printf(" (cut, %lld bytes long)", whole);
    sdsfree(q);
}

static const char *mpTtlText(long long ttl_ms, char *buf, size_t len) {
    if (ttl_ms < 0)
        snprintf(buf, len, "no ttl");
    else if (ttl_ms == 0)
        snprintf(buf, len, "expired");
    else if (ttl_ms < 3600000)
        snprintf(buf, len, "ttl %llds", ttl_ms / 1000);
    else if (ttl_ms < 86400000)
        snprintf(buf, len, "ttl %.1fh", ttl_ms / 3600000.0);
    else
        snprintf(buf, len, "ttl %.1fd", ttl_ms / 86400000.0);
    return buf;
}

/* "hash" -> "hashes", as people write it (--bigkeys writes "hashs"). */
static const char *mpPlural(const char *type) {
    static char buf[64];
    int es = !strcmp(type, "hash");
    snprintf(buf, sizeof(buf), "%s%s", type, es ? "es" : "s");
    return buf;
}

/* qsort() of a list that may be empty (and NULL). */
static void mpSort(void *base, size_t n, size_t size, int (*cmp)(const void *, const void *)) {
    if (n > 1) qsort(base, n, size, cmp);
}

static int mpCmpCountBytes(const void *a, const void *b) {
    const mpCount *x = a, *y = b;
    return (y->bytes > x->bytes) - (y->bytes < x->bytes);
}

/* The largest key of a type: in r's top keys, or else in extra's. */
static const mpTopKey *mpBiggestOfType(const mpReport *r, const mpReport *extra, const char *type) {
    for (size_t i = 0; i < r->ntopkeys; i++)
        if (!strcmp(r->topkeys[i].type, type)) return &r->topkeys[i];
    for (size_t i = 0; extra && i < extra->ntopkeys; i++)
        if (!strcmp(extra->topkeys[i].type, type)) return &extra->topkeys[i];
    return NULL;
}

/* extra, when given, holds the largest key of types missing from r's top
 * keys (cut by --memprofile-count). */
static void mpPrintReport(const mpReport *r, const mpReport *extra, long count, char **node_names) {
    char h1[32], h2[32], tb[32];
    printf("\n-------- summary -------\n\n");
    printf("Profiled %lld keys in the keyspace, holding %lld bytes (%s) of user data\n", r->keys, r->bytes,
           mpHuman(r->bytes, h1, sizeof(h1)));
    printf("used_memory at the fork: %lld (%s)%s; %swalk took %lld ms\n\n", r->used_memory,
           mpHuman(r->used_memory, h2, sizeof(h2)), node_names ? ", all nodes" : "",
           node_names ? "the longest " : "", r->duration_ms);

    /* Biggest key of each type, as --bigkeys. Top keys are largest first. */
    for (size_t t = 0; t < r->types.n; t++) {
        const mpTopKey *k = mpBiggestOfType(r, extra, r->types.v[t].name);
        if (!k) continue;
        printf("Biggest %6s found ", k->type);
        mpPrintKeyName(k->key, sdslen(k->key), k->key_len);
        printf(" has %lld bytes\n", k->bytes);
    }
    printf("\n");
    for (size_t t = 0; t < r->types.n; t++) {
        const mpCount *c = &r->types.v[t];
        if (!c->keys) continue;
        printf("%lld %s with %lld bytes (%05.2f%% of keys, %05.2f%% of bytes, avg size %.2f)\n", c->keys, mpPlural(c->name),
               c->bytes, mpPct(c->keys, r->keys), mpPct(c->bytes, r->bytes), (double)c->bytes / (double)c->keys);
    }

    printf("\n-------- by encoding -------\n\n");
    mpCount *enc = zmalloc(sizeof(mpCount) * (r->encodings.n + 1));
    if (r->encodings.n) memcpy(enc, r->encodings.v, sizeof(mpCount) * r->encodings.n);
    mpSort(enc, r->encodings.n, sizeof(mpCount), mpCmpCountBytes);
    for (size_t i = 0; i < r->encodings.n; i++) {
        if (!enc[i].keys) continue;
        printf("%-16s %10lld keys %14lld bytes %6.2f%%\n", enc[i].name, enc[i].keys, enc[i].bytes,
               mpPct(enc[i].bytes, r->bytes));
    }
    zfree(enc);

    printf("\n-------- biggest keys -------\n\n");
    for (size_t i = 0; i < r->ntopkeys && (count == 0 || (long)i < count); i++) {
        const mpTopKey *k = &r->topkeys[i];
        printf("%3zu. ", i + 1);
        mpPrintKeyName(k->key, sdslen(k->key), k->key_len);
        printf(" %s %s, %lld bytes (%s), %s %lld, db %lld, %s", k->type, k->encoding, k->bytes,
               mpHuman(k->bytes, h1, sizeof(h1)), strcmp(k->type, "string") ? "elements" : "length", k->elements,
               k->db, mpTtlText(k->ttl_ms, tb, sizeof(tb)));
        if (node_names) printf(", %s", node_names[k->node]);
        printf("\n");
    }
    if (!r->ntopkeys) printf("(none)\n");

    printf("\n-------- biggest prefixes -------\n");
    long in_depth = 0;
    for (size_t i = 0; i < r->nprefixes; i++) {
        const mpPrefix *p = &r->prefixes[i];
        if (i == 0 || p->depth != r->prefixes[i - 1].depth) {
            in_depth = 0;
            printf("\ndepth %lld:\n", p->depth);
        }
        if (count && in_depth++ >= count) continue;
        printf("  ");
        mpPrintKeyName(p->prefix, sdslen(p->prefix), (long long)sdslen(p->prefix));
        printf(" %lld keys, %lld bytes (%s, %05.2f%%)", p->keys, p->bytes, mpHuman(p->bytes, h1, sizeof(h1)),
               mpPct(p->bytes, r->bytes));
        if (p->error_bytes) printf(", overestimated by at most %lld bytes", p->error_bytes);
        printf("\n");
    }
    if (!r->nprefixes) printf("\n(none: memory-profile-prefix-depth is 0 or no keys)\n");

    printf("\n-------- TTL horizon -------\n\n");
    for (size_t i = 0; i < r->ttl.n; i++) {
        const mpCount *c = &r->ttl.v[i];
        const char *label = c->name;
        if (!strcmp(label, "none"))
            label = "no TTL";
        else if (!strcmp(label, "expired"))
            label = "expired, not reclaimed";
        else if (!strcmp(label, "1h"))
            label = "within 1 hour";
        else if (!strcmp(label, "1d"))
            label = "1 hour to 1 day";
        else if (!strcmp(label, "7d"))
            label = "1 to 7 days";
        else if (!strcmp(label, "later"))
            label = "after 7 days";
        printf("%-24s %10lld keys %14lld bytes %6.2f%%\n", label, c->keys, c->bytes, mpPct(c->bytes, r->bytes));
    }

    printf("\n-------- largest memory categories -------\n\n");
    mpCount *cat = zmalloc(sizeof(mpCount) * (r->breakdown.n + 1));
    size_t ncat = 0;
    for (size_t i = 0; i < r->breakdown.n; i++) {
        /* The waterfall's lines, which add up to RSS: not RSS itself, nor
         * the allocator's retained bytes (address space, not resident). */
        const char *n = r->breakdown.v[i].name;
        if (!strcmp(n, "mem_rss") || !strcmp(n, "mem_allocator_retained")) continue;
        cat[ncat++] = r->breakdown.v[i];
    }
    mpSort(cat, ncat, sizeof(mpCount), mpCmpCountBytes);
    long long rss = 0;
    for (size_t i = 0; i < r->breakdown.n; i++)
        if (!strcmp(r->breakdown.v[i].name, "mem_rss")) rss = r->breakdown.v[i].bytes;
    for (size_t i = 0; i < ncat; i++) {
        if (!cat[i].bytes) break;
        printf("%-24s %14lld bytes (%s)", cat[i].name, cat[i].bytes, mpHuman(cat[i].bytes, h1, sizeof(h1)));
        if (rss) printf(" %6.2f%% of RSS", mpPct(cat[i].bytes, rss));
        printf("\n");
    }
    zfree(cat);
}

/* ------------------------------------------------------------------------
 * valkey-cli --memprofile
 * --------------------------------------------------------------------- */

static void mpFail(const char *where, sds err) {
    mpProgressClear();
    fprintf(stderr, "%s%s%s\n", where ? where : "", where ? ": " : "", err);
    sdsfree(err);
}

int memprofCliRun(redisContext *c, const char *addr, int output) {
    mpNodeState st;
    sds err = NULL;
    int reused, started;
    long long start = mpMstime();
    if (!mpStart(c, &st, &reused, &started, &err)) {
        mpFail(NULL, err);
        return 1;
    }
    long long total = st.total_keys;
    mpCatchSigint(1);
    while (!reused && st.in_progress) {
        mpProgress(st.progress_keys, total, start, memprofCli.save ? "BGSAVE STAT_MEMORY" : "profiling");
        usleep(MP_POLL_US);
        if (mpInterrupted) {
            mpProgressClear();
            if (started) mpCancel(c, NULL);
            return 130;
        }
        if (!mpReadState(c, &st, &err)) {
            mpFail(NULL, err);
            return 1;
        }
    }
    mpCatchSigint(0);
    mpProgressClear();
    if (!reused && !mpFinished(&st, &err)) {
        mpFail(NULL, err);
        return 1;
    }
    mpReport rep;
    if (!mpReadReport(c, memprofCli.count, &rep, &err)) {
        mpFail(NULL, err);
        return 1;
    }
    if (output != MEMPROF_CLI_TEXT) {
        sds s = sdsnew("{");
        s = mpJsonReport(s, &rep, 0, NULL, output);
        s = sdscat(s, "}\n");
        fwrite(s, 1, sdslen(s), stdout);
        sdsfree(s);
    } else {
        char when[64];
        time_t t = (time_t)rep.time;
        strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", gmtime(&t));
        printf("# Memory profile of %s: %s, source %s, forked at %s%s\n", addr, rep.status, rep.source, when,
               reused ? " (reused: younger than --memprofile-max-age)" : "");
        /* The largest key of each type the top keys left out. */
        mpReport extra;
        mpReportInit(&extra);
        for (size_t t = 0; t < rep.types.n; t++) {
            if (!rep.types.v[t].keys || mpBiggestOfType(&rep, NULL, rep.types.v[t].name)) continue;
            redisReply *r = mpCommand(c, &err, "MEMORY PROFILE REPORT COUNT 1 TYPE %s", rep.types.v[t].name);
            mpReport one;
            if (r && mpParseReport(r, &one) && one.time == rep.time && one.ntopkeys) {
                mpTopKey k = one.topkeys[0];
                k.key = sdsdup(k.key);
                k.type = sdsdup(k.type);
                k.encoding = sdsdup(k.encoding);
                MP_PUSH(extra.topkeys, extra.ntopkeys, k);
            }
            if (r) {
                mpReportFree(&one);
                freeReplyObject(r);
            }
            sdsfree(err);
            err = NULL;
        }
        mpPrintReport(&rep, &extra, memprofCli.count, NULL);
        mpReportFree(&extra);
    }
    mpReportFree(&rep);
    return 0;
}

/* ------------------------------------------------------------------------
 * valkey-cli --cluster memprofile
 * --------------------------------------------------------------------- */

typedef struct mpRun {
    memprofCliNode *node;
    char *label; /* ip:port */
    int shard;   /* Index of the shard (primary) it stands for. */
    int state;   /* MP_RUN_* */
    int reused, started;
    sds error;
    mpNodeState st;
    mpReport report;
} mpRun;

#define MP_RUN_RUNNING 0
#define MP_RUN_DONE 1
#define MP_RUN_FAILED 2

typedef struct mpShard {
    memprofCliNode *primary;
    char *label;
    int run; /* Index in runs, -1 when not covered. */
    sds why; /* Why not covered. */
    long long bytes, keys;
} mpShard;

static int mpCmpShard(const void *a, const void *b) {
    const mpShard *x = a, *y = b;
    int c = strcmp(x->primary->ip, y->primary->ip);
    return c ? c : (x->primary->port > y->primary->port) - (x->primary->port < y->primary->port);
}

static int mpCmpTopKey(const void *a, const void *b) {
    const mpTopKey *x = a, *y = b;
    return (y->bytes > x->bytes) - (y->bytes < x->bytes);
}

static int mpCmpPrefix(const void *a, const void *b) {
    const mpPrefix *x = a, *y = b;
    if (x->depth != y->depth) return x->depth < y->depth ? -1 : 1;
    return (y->bytes > x->bytes) - (y->bytes < x->bytes);
}

static int mpCmpSlot(const void *a, const void *b) {
    const mpSlot *x = a, *y = b;
    if (x->bytes != y->bytes) return (y->bytes > x->bytes) - (y->bytes < x->bytes);
    return (x->slot > y->slot) - (x->slot < y->slot);
}

static int mpCmpHist(const void *a, const void *b) {
    const mpHistRow *x = a, *y = b;
    int c = strcmp(x->type, y->type);
    if (c) return c;
    return (x->le > y->le) - (x->le < y->le);
}

/* Add one node's report into the merged one. Prefix summaries merge by
 * adding rows; where a node's summary at a depth is saturated (some row
 * has error_bytes > 0) a prefix missing from it may still hold up to that
 * node's smallest row there, which goes to both bytes and error_bytes. */
static void mpMerge(mpReport *m, const mpReport *r, int node, long long *slot_keys, long long *slot_bytes) {
    if (!m->time || (r->time && r->time < m->time)) m->time = r->time;
    if (r->duration_ms > m->duration_ms) m->duration_ms = r->duration_ms;
    m->used_memory += r->used_memory;
    m->keys += r->keys;
    m->bytes += r->bytes;
    const mpCounts *from[] = {&r->types, &r->encodings, &r->dbs, &r->ttl, &r->breakdown};
    mpCounts *to[] = {&m->types, &m->encodings, &m->dbs, &m->ttl, &m->breakdown};
    for (int j = 0; j < 5; j++) {
        for (size_t i = 0; i < from[j]->n; i++) {
            mpCount *c = mpCountsGet(to[j], from[j]->v[i].name, sdslen(from[j]->v[i].name));
            c->keys += from[j]->v[i].keys;
            c->bytes += from[j]->v[i].bytes;
        }
    }
    for (size_t i = 0; i < r->nhist; i++) {
        size_t j;
        for (j = 0; j < m->nhist; j++)
            if (m->hist[j].le == r->hist[i].le && !strcmp(m->hist[j].type, r->hist[i].type)) break;
        if (j == m->nhist) {
            mpHistRow row = {sdsdup(r->hist[i].type), r->hist[i].le, 0, 0};
            MP_PUSH(m->hist, m->nhist, row);
        }
        m->hist[j].keys += r->hist[i].keys;
        m->hist[j].bytes += r->hist[i].bytes;
    }
    for (size_t i = 0; i < r->ntopkeys; i++) {
        mpTopKey k = r->topkeys[i];
        k.key = sdsdup(k.key);
        k.type = sdsdup(k.type);
        k.encoding = sdsdup(k.encoding);
        k.node = node;
        MP_PUSH(m->topkeys, m->ntopkeys, k);
    }

    /* Prefixes: rows are gathered here and coalesced by mpMergeFinish().
     * Each row carries its node's floor at its depth (0 when the node's
     * summary there is exact), and the floors of all nodes add up per depth. */
    long long floor[MP_MAX_DEPTH + 1] = {0};
    int saturated[MP_MAX_DEPTH + 1] = {0};
    for (size_t i = 0; i < r->nprefixes; i++) {
        const mpPrefix *p = &r->prefixes[i];
        if (p->depth < 1 || p->depth > MP_MAX_DEPTH) continue;
        if (p->error_bytes) saturated[p->depth] = 1;
        if (!floor[p->depth] || p->bytes < floor[p->depth]) floor[p->depth] = p->bytes;
    }
    for (int d = 1; d <= MP_MAX_DEPTH; d++) {
        if (!saturated[d]) floor[d] = 0;
        m->floor_total[d] += floor[d];
    }
    for (size_t i = 0; i < r->nprefixes; i++) {
        mpPrefix p = r->prefixes[i];
        if (p.depth < 1 || p.depth > MP_MAX_DEPTH) continue;
        p.prefix = sdsdup(p.prefix);
        p.floor = floor[p.depth];
        MP_PUSH(m->prefixes, m->nprefixes, p);
    }

    if (r->has_slots) m->has_slots = 1;
    for (size_t i = 0; i < r->nslots; i++) {
        slot_keys[r->slots[i].slot] += r->slots[i].keys;
        slot_bytes[r->slots[i].slot] += r->slots[i].bytes;
    }
}

static int mpCmpPrefixName(const void *a, const void *b) {
    const mpPrefix *x = a, *y = b;
    if (x->depth != y->depth) return x->depth < y->depth ? -1 : 1;
    return sdscmp(x->prefix, y->prefix);
}

/* Coalesce the gathered prefix rows: rows of the same prefix and depth add
 * their keys, bytes and error bounds. A node whose summary at that depth
 * is saturated (some row has error_bytes > 0) and lacks the prefix may
 * still hold up to its smallest row there: the floors of such nodes go to
 * both bytes and error_bytes, so that the truth stays in
 * [bytes - error_bytes, bytes]. */
static void mpMergePrefixes(mpReport *m) {
    mpSort(m->prefixes, m->nprefixes, sizeof(mpPrefix), mpCmpPrefixName);
    size_t out = 0;
    for (size_t i = 0; i < m->nprefixes; i++) {
        mpPrefix *p = &m->prefixes[i];
        if (out && m->prefixes[out - 1].depth == p->depth && !sdscmp(m->prefixes[out - 1].prefix, p->prefix)) {
            mpPrefix *q = &m->prefixes[out - 1];
            q->keys += p->keys;
            q->bytes += p->bytes;
            q->error_bytes += p->error_bytes;
            q->floor += p->floor;
            sdsfree(p->prefix);
        } else {
            m->prefixes[out++] = *p;
        }
    }
    m->nprefixes = out;
    for (size_t i = 0; i < out; i++) {
        mpPrefix *p = &m->prefixes[i];
        long long missing = m->floor_total[p->depth] - p->floor;
        p->bytes += missing;
        p->error_bytes += missing;
        p->floor = 0;
    }
    mpSort(m->prefixes, m->nprefixes, sizeof(mpPrefix), mpCmpPrefix);
}

/* Sort the merged lists as a single node's report is sorted. */
static void mpMergeFinish(mpReport *m, const long long *slot_keys, const long long *slot_bytes) {
    mpSort(m->topkeys, m->ntopkeys, sizeof(mpTopKey), mpCmpTopKey);
    mpMergePrefixes(m);
    mpSort(m->hist, m->nhist, sizeof(mpHistRow), mpCmpHist);
    for (int s = 0; s < MP_SLOTS; s++) {
        if (!slot_keys[s] && !slot_bytes[s]) continue;
        mpSlot sl = {s, slot_keys[s], slot_bytes[s]};
        MP_PUSH(m->slots, m->nslots, sl);
    }
    mpSort(m->slots, m->nslots, sizeof(mpSlot), mpCmpSlot);
}

typedef struct mpMove {
    int slot, from, to;
    long long keys, bytes;
} mpMove;

/* Greedy plan: while a shard is more than 5% from the mean, move a slot
 * from the heaviest shard to the lightest: the largest slot that leaves
 * both within 5% of the mean on the side they came from (few moves, and no
 * more bytes than the excess), or else the slot whose bytes come closest to
 * what would bring one of them to the mean. Only slots smaller than their
 * difference qualify, so that every move strictly lowers the sum of squared
 * deviations, and the loop ends. */
static mpMove *mpPlan(int nshards, const int *owner_in, const long long *slot_keys, const long long *slot_bytes, size_t *nmoves) {
    mpMove *moves = NULL;
    *nmoves = 0;
    long long *b = zmalloc(sizeof(long long) * nshards);
    int *owner = zmalloc(sizeof(int) * MP_SLOTS);
    memcpy(owner, owner_in, sizeof(int) * MP_SLOTS);
    long long sum = 0;
    for (int i = 0; i < nshards; i++) b[i] = 0;
    for (int s = 0; s < MP_SLOTS; s++)
        if (owner[s] >= 0) b[owner[s]] += slot_bytes[s];
    for (int i = 0; i < nshards; i++) sum += b[i];
    double mean = nshards ? (double)sum / nshards : 0, tol = mean * MP_BALANCE_THRESHOLD;
    for (int iter = 0; iter < MP_SLOTS && nshards > 1; iter++) {
        int h = 0, l = 0;
        for (int i = 1; i < nshards; i++) {
            if (b[i] > b[h]) h = i;
            if (b[i] < b[l]) l = i;
        }
        if ((double)b[h] - mean <= tol && mean - (double)b[l] <= tol) break;
        double want = (double)b[h] - mean < mean - (double)b[l] ? (double)b[h] - mean : mean - (double)b[l];
        double fit = (double)b[h] - mean + tol < mean + tol - (double)b[l] ? (double)b[h] - mean + tol
                                                                           : mean + tol - (double)b[l];
        int best = -1, largest = -1;
        double bestdist = 0;
        for (int s = 0; s < MP_SLOTS; s++) {
            if (owner[s] != h || slot_bytes[s] <= 0 || slot_bytes[s] >= b[h] - b[l]) continue;
            if ((double)slot_bytes[s] <= fit && (largest == -1 || slot_bytes[s] > slot_bytes[largest])) largest = s;
            double dist = (double)slot_bytes[s] - want;
            if (dist < 0) dist = -dist;
            if (best == -1 || dist < bestdist) best = s, bestdist = dist;
        }
        if (largest != -1) best = largest;
        if (best == -1) break;
        owner[best] = l;
        b[h] -= slot_bytes[best];
        b[l] += slot_bytes[best];
        mpMove mv = {best, h, l, slot_keys[best], slot_bytes[best]};
        MP_PUSH(moves, *nmoves, mv);
    }
    zfree(b);
    zfree(owner);
    return moves;
}

static double mpSkew(const long long *b, int n, double *mean_out) {
    long long sum = 0, max = 0;
    for (int i = 0; i < n; i++) {
        sum += b[i];
        if (b[i] > max) max = b[i];
    }
    double mean = n ? (double)sum / n : 0;
    if (mean_out) *mean_out = mean;
    return mean > 0 ? (double)max / mean : 1.0;
}

int memprofCliCluster(memprofCliNode *nodes, int count, int output) {
    mpShard *shards = NULL;
    int nshards = 0;
    mpRun *runs = zcalloc(sizeof(mpRun) * (count + 1));
    int nruns = 0;
    int *owner = zmalloc(sizeof(int) * MP_SLOTS);
    for (int s = 0; s < MP_SLOTS; s++) owner[s] = -1;

    /* Shards: primaries that own slots. */
    for (int i = 0; i < count; i++) {
        memprofCliNode *n = &nodes[i];
        if (n->primary) continue;
        int owns = 0;
        for (int s = 0; s < MP_SLOTS; s++) {
            if (n->slots[s]) {
                owner[s] = nshards;
                owns = 1;
            }
        }
        if (!owns) continue;
        mpShard sh = {n, NULL, -1, NULL, 0, 0};
        sh.label = zmalloc(strlen(n->ip) + 16);
        sprintf(sh.label, "%s:%d", n->ip, n->port);
        MP_PUSH(shards, nshards, sh);
    }

    mpSort(shards, nshards, sizeof(mpShard), mpCmpShard);
    for (int s = 0; s < MP_SLOTS; s++) owner[s] = -1;
    for (int i = 0; i < nshards; i++)
        for (int s = 0; s < MP_SLOTS; s++)
            if (shards[i].primary->slots[s]) owner[s] = i;

    /* One node per shard: the primary, or its first healthy replica. */
    for (int i = 0; i < nshards; i++) {
        memprofCliNode *pick = NULL;
        if (!memprofCli.from_replicas) {
            pick = shards[i].primary;
        } else {
            int replicas = 0;
            for (int j = 0; j < count && !pick; j++) {
                memprofCliNode *n = &nodes[j];
                if (!n->primary || strcmp(n->primary, shards[i].primary->name)) continue;
                replicas++;
                if (!n->failed && n->context && mpReplicaInSync(n->context)) pick = n;
            }
            if (!pick) {
                shards[i].why = sdscatprintf(sdsempty(),
                                             "%s (with --cluster-from-replicas its primary is not profiled)",
                                             replicas ? "no reachable replica in sync with it" : "no reachable replica");
                continue;
            }
        }
        mpRun *r = &runs[nruns];
        r->node = pick;
        r->label = zmalloc(strlen(pick->ip) + 16);
        sprintf(r->label, "%s:%d", pick->ip, pick->port);
        r->shard = i;
        shards[i].run = nruns++;
    }

    /* Start every profile, then wait for all with one progress bar. */
    long long start = mpMstime();
    for (int i = 0; i < nruns; i++) {
        mpRun *r = &runs[i];
        r->state = MP_RUN_RUNNING;
        if (!r->node->context) {
            r->state = MP_RUN_FAILED;
            r->error = sdsnew("not connected");
            continue;
        }
        struct timeval tv = {MP_REPLY_TIMEOUT_SEC, 0};
        redisSetTimeout(r->node->context, tv);
        if (!mpStart(r->node->context, &r->st, &r->reused, &r->started, &r->error))
            r->state = MP_RUN_FAILED;
        else if (r->reused || !r->st.in_progress)
            r->state = MP_RUN_DONE;
    }
    mpCatchSigint(1);
    for (;;) {
        long long done = 0, total = 0;
        int running = 0;
        if (mpInterrupted) {
            mpProgressClear();
            for (int i = 0; i < nruns; i++)
                if (runs[i].state == MP_RUN_RUNNING && runs[i].started) mpCancel(runs[i].node->context, runs[i].label);
            exit(130);
        }
        for (int i = 0; i < nruns; i++) {
            mpRun *r = &runs[i];
            if (r->state == MP_RUN_FAILED) continue;
            if (r->state == MP_RUN_RUNNING) {
                if (!mpReadState(r->node->context, &r->st, &r->error)) {
                    r->state = MP_RUN_FAILED;
                    continue;
                }
                if (!r->st.in_progress) r->state = MP_RUN_DONE;
            }
            total += r->st.total_keys;
            done += r->state == MP_RUN_DONE ? r->st.total_keys : r->st.progress_keys;
            running += r->state == MP_RUN_RUNNING;
        }
        if (!running) break;
        char what[64];
        snprintf(what, sizeof(what), "%d of %d nodes running", running, nruns);
        mpProgress(done, total, start, what);
        usleep(MP_POLL_US);
    }
    mpCatchSigint(0);
    mpProgressClear();

    /* Read the reports (all lists: COUNT 0) and merge. */
    mpReport merged;
    mpReportInit(&merged);
    sdsfree(merged.status);
    sdsfree(merged.source);
    merged.status = sdsnew("ok");
    merged.source = sdsnew(memprofCli.save ? "bgsave" : "profile");
    long long *slot_keys = zcalloc(sizeof(long long) * MP_SLOTS);
    long long *slot_bytes = zcalloc(sizeof(long long) * MP_SLOTS);
    char **names = zmalloc(sizeof(char *) * (nruns + 1));
    int covered = 0;
    for (int i = 0; i < nruns; i++) {
        mpRun *r = &runs[i];
        names[i] = r->label;
        if (r->state == MP_RUN_DONE && !r->reused && !mpFinished(&r->st, &r->error)) r->state = MP_RUN_FAILED;
        if (r->state == MP_RUN_DONE && !mpReadReport(r->node->context, 0, &r->report, &r->error))
            r->state = MP_RUN_FAILED;
        if (r->state != MP_RUN_DONE) {
            shards[r->shard].run = -1;
            shards[r->shard].why = sdscatprintf(sdsempty(), "%s failed: %s", r->label, r->error);
            continue;
        }
        mpMerge(&merged, &r->report, i, slot_keys, slot_bytes);
        shards[r->shard].bytes = r->report.bytes;
        shards[r->shard].keys = r->report.keys;
        covered++;
    }
    mpMergeFinish(&merged, slot_keys, slot_bytes);
    if (covered < nshards) {
        sdsfree(merged.status);
        merged.status = sdsnew(covered ? "partial" : "err");
    }

    /* Skew between the covered primaries, and the plan when all are. */
    long long *sb = zmalloc(sizeof(long long) * (nshards + 1));
    int nsb = 0;
    for (int i = 0; i < nshards; i++)
        if (shards[i].run >= 0) sb[nsb++] = shards[i].bytes;
    double mean = 0, skew = mpSkew(sb, nsb, &mean);
    size_t nmoves = 0;
    mpMove *moves = NULL;
    if (covered == nshards && nshards > 1) moves = mpPlan(nshards, owner, slot_keys, slot_bytes, &nmoves);
    long long *after = zcalloc(sizeof(long long) * (nshards + 1));
    for (int s = 0; s < MP_SLOTS; s++)
        if (owner[s] >= 0) after[owner[s]] += slot_bytes[s];
    for (size_t i = 0; i < nmoves; i++) {
        after[moves[i].from] -= moves[i].bytes;
        after[moves[i].to] += moves[i].bytes;
    }
    double skew_after = mpSkew(after, nshards, NULL);

    if (output != MEMPROF_CLI_TEXT) {
        sds s = sdsnew("{");
        s = mpJsonReport(s, &merged, memprofCli.count, names, output);
        s = sdscat(s, ",\n \"nodes\": [");
        for (int i = 0; i < nshards; i++) {
            mpShard *sh = &shards[i];
            mpRun *r = sh->run >= 0 ? &runs[sh->run] : NULL;
            s = sdscat(s, i ? ",\n  {\"shard\": " : "\n  {\"shard\": ");
            s = mpJsonStr(s, sh->label, strlen(sh->label), output);
            s = sdscat(s, ", \"primary_id\": ");
            s = mpJsonStr(s, sh->primary->name, strlen(sh->primary->name), output);
            if (r) {
                s = sdscat(s, ", \"node\": ");
                s = mpJsonStr(s, r->label, strlen(r->label), output);
                s = sdscatprintf(s, ", \"role\": \"%s\", \"status\": \"ok\", \"reused\": %s, \"time\": %lld, "
                                    "\"keys\": %lld, \"bytes\": %lld, \"used_memory\": %lld}",
                                 r->node->primary ? "replica" : "primary", r->reused ? "true" : "false",
                                 r->report.time, r->report.keys, r->report.bytes, r->report.used_memory);
            } else {
                s = sdscat(s, ", \"status\": \"err\", \"error\": ");
                s = mpJsonStr(s, sh->why, sdslen(sh->why), output);
                s = sdscat(s, "}");
            }
        }
        s = sdscatprintf(s, "],\n \"covered_shards\": %d, \"shards\": %d, \"skew\": %.4f, \"mean_bytes\": %.0f, "
                            "\"skew_after_moves\": %.4f,\n \"moves\": [",
                         covered, nshards, skew, mean, skew_after);
        for (size_t i = 0; i < nmoves; i++) {
            const mpMove *mv = &moves[i];
            s = sdscatprintf(s, "%s{\"slot\": %d, \"keys\": %lld, \"bytes\": %lld, \"from\": \"%s\", \"to\": \"%s\", "
                                "\"from_id\": \"%s\", \"to_id\": \"%s\"}",
                             i ? ",\n  " : "\n  ", mv->slot, mv->keys, mv->bytes, shards[mv->from].label,
                             shards[mv->to].label, shards[mv->from].primary->name, shards[mv->to].primary->name);
        }
        s = sdscat(s, "]}\n");
        fwrite(s, 1, sdslen(s), stdout);
        sdsfree(s);
    } else {
        char h1[32], h2[32];
        printf(">>> Memory profile of %d shard%s (%s): %d covered\n", nshards, nshards == 1 ? "" : "s",
               memprofCli.from_replicas ? "one replica each" : "primaries", covered);
        for (int i = 0; i < nshards; i++) {
            mpShard *sh = &shards[i];
            if (sh->run < 0) {
                printf("  %s (%.8s): NOT COVERED: %s\n", sh->label, sh->primary->name, sh->why);
                continue;
            }
            mpRun *r = &runs[sh->run];
            printf("  %s (%.8s): %lld keys, %lld bytes (%s) of user data, used_memory %s; profiled on %s%s%s\n",
                   sh->label, sh->primary->name, r->report.keys, r->report.bytes, mpHuman(r->report.bytes, h1, 32),
                   mpHuman(r->report.used_memory, h2, 32), r->label, r->node->primary ? " (replica)" : "",
                   r->reused ? ", reused" : "");
        }
        if (covered < nshards)
            printf("The figures below cover %d of %d shards: the shards marked NOT COVERED are missing.\n", covered,
                   nshards);
        mpPrintReport(&merged, NULL, memprofCli.count, names);

        printf("\n-------- memory by slot -------\n\n");
        printf("%zu slots hold keys", merged.nslots);
        if (merged.nslots)
            printf("; the largest:\n");
        else
            printf("\n");
        for (size_t i = 0; i < merged.nslots && (memprofCli.count == 0 || (long)i < memprofCli.count); i++)
            printf("  slot %5lld: %lld keys, %lld bytes (%s)\n", merged.slots[i].slot, merged.slots[i].keys,
                   merged.slots[i].bytes, mpHuman(merged.slots[i].bytes, h1, 32));

        printf("\n-------- balance between primaries -------\n\n");
        printf("Skew (max/mean of user data): %.3f, mean %.0f bytes", skew, mean);
        if (covered < nshards) printf(" (over the %d covered shards only)", covered);
        printf("\n");
        if (covered < nshards) {
            printf("No slot moves proposed: not every shard was profiled.\n");
        } else if (nmoves == 0) {
            printf("No slot moves needed: every primary is within %.0f%% of the mean, or no move helps.\n",
                   MP_BALANCE_THRESHOLD * 100);
        } else {
            long long moved = 0;
            for (size_t i = 0; i < nmoves; i++) moved += moves[i].bytes;
            printf("Proposed: %zu slot moves, %lld bytes, skew after them %.3f. Nothing was moved.\n", nmoves, moved,
                   skew_after);
            for (int f = 0; f < nshards; f++) {
                for (int t = 0; t < nshards; t++) {
                    int n = 0;
                    long long bytes = 0;
                    for (size_t i = 0; i < nmoves; i++)
                        if (moves[i].from == f && moves[i].to == t) n++, bytes += moves[i].bytes;
                    if (n)
                        printf("  %s -> %s: %d slots, %lld bytes (%s)\n", shards[f].label, shards[t].label, n, bytes,
                               mpHuman(bytes, h1, 32));
                }
            }
            printf("\nTo apply them, review and run this in a POSIX shell (add -a/--user/--tls options to CLI\n"
                   "as needed; each slot: IMPORTING, MIGRATING, MIGRATE of each key, SETSLOT NODE; key names\n"
                   "holding a newline need another tool):\n\n");
            printf("CLI=valkey-cli\n"
                   "move_slot() { # slot src_host src_port src_id dst_host dst_port dst_id\n"
                   "  $CLI -e -h \"$5\" -p \"$6\" CLUSTER SETSLOT \"$1\" IMPORTING \"$4\" >/dev/null &&\n"
                   "  $CLI -e -h \"$2\" -p \"$3\" CLUSTER SETSLOT \"$1\" MIGRATING \"$7\" >/dev/null &&\n"
                   "  while [ \"$($CLI -e -h \"$2\" -p \"$3\" CLUSTER COUNTKEYSINSLOT \"$1\")\" != 0 ]; do\n"
                   "    $CLI -e -h \"$2\" -p \"$3\" CLUSTER GETKEYSINSLOT \"$1\" 100 | while IFS= read -r key; do\n"
                   "      $CLI -e -h \"$2\" -p \"$3\" MIGRATE \"$5\" \"$6\" \"$key\" 0 60000 >/dev/null || exit 1\n"
                   "    done || return 1\n"
                   "  done &&\n"
                   "  $CLI -e -h \"$5\" -p \"$6\" CLUSTER SETSLOT \"$1\" NODE \"$7\" >/dev/null &&\n"
                   "  $CLI -e -h \"$2\" -p \"$3\" CLUSTER SETSLOT \"$1\" NODE \"$7\" >/dev/null &&\n"
                   "  echo \"slot $1 moved\"\n"
                   "}\n");
            for (size_t i = 0; i < nmoves; i++) {
                const mpMove *mv = &moves[i];
                memprofCliNode *f = shards[mv->from].primary, *t = shards[mv->to].primary;
                printf("move_slot %d %s %d %s %s %d %s  # %lld keys, %lld bytes\n", mv->slot, f->ip, f->port, f->name,
                       t->ip, t->port, t->name, mv->keys, mv->bytes);
            }
        }
    }

    for (int i = 0; i < nruns; i++) {
        mpReportFree(&runs[i].report);
        sdsfree(runs[i].error);
        zfree(runs[i].label);
    }
    for (int i = 0; i < nshards; i++) {
        sdsfree(shards[i].why);
        zfree(shards[i].label);
    }
    mpReportFree(&merged);
    zfree(runs);
    zfree(shards);
    zfree(owner);
    zfree(slot_keys);
    zfree(slot_bytes);
    zfree(names);
    zfree(sb);
    zfree(after);
    zfree(moves);
    return covered == nshards && nshards > 0;
}
