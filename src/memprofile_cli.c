/*
 * Copyright (c) Valkey Contributors
 * All rights reserved.
 * SPDX-License-Identifier: BSD-3-Clause
 */

/* valkey-cli --memprofile, and what --cluster memprofile shares with it.
 *
 * The server does the work: MEMORY PROFILE START (or BGSAVE STAT_MEMORY)
 * forks a child that walks every key; INFO rdb_stats shows its progress
 * (rdb_stats_in_progress, rdb_stats_progress_keys) and, once it is
 * published, its status; MEMORY PROFILE REPORT returns it. Here we start
 * it, draw a progress bar on stderr while it runs (only when stderr is a
 * terminal), read the report and print it as a summary in the style of
 * --bigkeys, or as JSON (memprofile_cli_output.c). In a cluster the same
 * runs on a node of each shard and the reports merge
 * (memprofile_cli_cluster.c).
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

#include "zmalloc.h"
#include "memprofile_cli.h"
#include "memprofile_cli_internal.h"

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
 * Small helpers: time, sizes, INFO fields, reply fields, sorting
 * --------------------------------------------------------------------- */

/* valkey-cli.c's mstime() is static to it. */
long long mpMstime(void) {
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (long long)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* The value of 'name' in an INFO reply, or NULL; copied into buf. Not
 * valkey-cli.c's getInfoField(): static, and it matches 'name' anywhere. */
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
            if (k && (!eol || k < eol)) total = mpAdd(total, strtoll(k + 6, NULL, 10));
        }
        p = strchr(p, '\n');
        if (p) p++;
    }
    return total;
}

static int mpIsString(const valkeyReply *r) {
    return r && (r->type == VALKEY_REPLY_STRING || r->type == VALKEY_REPLY_STATUS || r->type == VALKEY_REPLY_VERB);
}

/* The value under 'name' of a map (RESP3) or of a flat array of alternating
 * names and values (RESP2). */
static valkeyReply *mpField(const valkeyReply *r, const char *name) {
    if (!r || (r->type != VALKEY_REPLY_MAP && r->type != VALKEY_REPLY_ARRAY)) return NULL;
    size_t nlen = strlen(name);
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        const valkeyReply *k = r->element[i];
        if (mpIsString(k) && k->len == nlen && !memcmp(k->str, name, nlen)) return r->element[i + 1];
    }
    return NULL;
}

static long long mpReplyLL(const valkeyReply *v) {
    if (!v) return 0;
    if (v->type == VALKEY_REPLY_INTEGER) return v->integer;
    /* Inside the range of long long (NaN and infinities as 0), so that the
     * conversion is defined. */
    if (v->type == VALKEY_REPLY_DOUBLE) return v->dval > -9.2e18 && v->dval < 9.2e18 ? (long long)v->dval : 0;
    if (mpIsString(v)) return strtoll(v->str, NULL, 10);
    return 0;
}

static long long mpLL(const valkeyReply *r, const char *name) {
    return mpReplyLL(mpField(r, name));
}

static sds mpStr(const valkeyReply *r, const char *name) {
    const valkeyReply *v = mpField(r, name);
    return mpIsString(v) ? sdsnewlen(v->str, v->len) : sdsempty();
}

/* Pairs of a map or flat array: the number of name/value pairs. */
static size_t mpPairs(const valkeyReply *r) {
    if (!r || (r->type != VALKEY_REPLY_MAP && r->type != VALKEY_REPLY_ARRAY)) return 0;
    return r->elements / 2;
}

/* A command's reply, or NULL with *err set (connection error or error reply). */
static valkeyReply *mpCommand(valkeyContext *c, sds *err, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    valkeyReply *r = valkeyvCommand(c, fmt, ap);
    va_end(ap);
    if (!r) {
        *err = sdscatprintf(sdsempty(), "no reply (%s)", c->errstr[0] ? c->errstr : "connection lost");
        return NULL;
    }
    if (r->type == VALKEY_REPLY_ERROR) {
        *err = sdsnewlen(r->str, r->len);
        freeReplyObject(r);
        return NULL;
    }
    return r;
}

/* ------------------------------------------------------------------------
 * The report
 * --------------------------------------------------------------------- */

mpCount *mpCountsGet(mpCounts *c, const char *name, size_t len) {
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

void mpReportFree(mpReport *r) {
    sdsfree(r->status);
    sdsfree(r->source);
    mpCountsFree(&r->types);
    mpCountsFree(&r->encodings);
    mpCountsFree(&r->dbs);
    mpCountsFree(&r->groups);
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

void mpReportInit(mpReport *r) {
    memset(r, 0, sizeof(*r));
    r->status = sdsempty();
    r->source = sdsempty();
}

/* A map of {name: {keys, bytes}} (types, encodings, dbs, groups, ttl). */
static void mpParseCounts(const valkeyReply *m, mpCounts *out) {
    for (size_t i = 0; i < mpPairs(m); i++) {
        const valkeyReply *k = m->element[2 * i], *v = m->element[2 * i + 1];
        if (!mpIsString(k)) continue;
        mpCount *c = mpCountsGet(out, k->str, k->len);
        c->keys = mpAdd(c->keys, mpLL(v, "keys"));
        c->bytes = mpAdd(c->bytes, mpLL(v, "bytes"));
    }
}

/* Parse a REPORT reply. Returns 0 when it does not look like one. */
static int mpParseReport(const valkeyReply *r, mpReport *out) {
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
    mpParseCounts(mpField(r, "groups"), &out->groups); /* Absent from servers before key groups. */
    mpParseCounts(mpField(r, "ttl"), &out->ttl);

    const valkeyReply *h = mpField(r, "histograms");
    for (size_t i = 0; i < mpPairs(h); i++) {
        const valkeyReply *t = h->element[2 * i], *rows = h->element[2 * i + 1];
        if (!mpIsString(t) || rows->type != VALKEY_REPLY_ARRAY) continue;
        for (size_t j = 0; j < rows->elements; j++) {
            mpHistRow row = {sdsnewlen(t->str, t->len), mpLL(rows->element[j], "le"), mpLL(rows->element[j], "keys"),
                             mpLL(rows->element[j], "bytes")};
            MP_PUSH(out->hist, out->nhist, row);
        }
    }

    const valkeyReply *tk = mpField(r, "topkeys");
    for (size_t i = 0; tk && tk->type == VALKEY_REPLY_ARRAY && i < tk->elements; i++) {
        const valkeyReply *e = tk->element[i];
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

    const valkeyReply *px = mpField(r, "prefixes");
    for (size_t i = 0; px && px->type == VALKEY_REPLY_ARRAY && i < px->elements; i++) {
        const valkeyReply *e = px->element[i];
        mpPrefix p = {mpStr(e, "prefix"), mpLL(e, "depth"), mpLL(e, "keys"), mpLL(e, "bytes"),
                      mpLL(e, "error_bytes"), 0};
        MP_PUSH(out->prefixes, out->nprefixes, p);
    }

    const valkeyReply *sl = mpField(r, "slots");
    out->has_slots = sl != NULL;
    for (size_t i = 0; sl && sl->type == VALKEY_REPLY_ARRAY && i < sl->elements; i++) {
        const valkeyReply *e = sl->element[i];
        mpSlot s = {mpLL(e, "slot"), mpLL(e, "keys"), mpLL(e, "bytes")};
        if (s.slot < 0 || s.slot >= MP_SLOTS) continue;
        MP_PUSH(out->slots, out->nslots, s);
    }

    const valkeyReply *b = mpField(r, "breakdown");
    for (size_t i = 0; i < mpPairs(b); i++) {
        const valkeyReply *k = b->element[2 * i];
        if (!mpIsString(k)) continue;
        mpCount *c = mpCountsGet(&out->breakdown, k->str, k->len);
        c->bytes = mpAdd(c->bytes, mpReplyLL(b->element[2 * i + 1]));
    }
    return 1;
}

/* ------------------------------------------------------------------------
 * Talking to one node: start, poll, read
 * --------------------------------------------------------------------- */

int mpReadState(valkeyContext *c, mpNodeState *st, sds *err) {
    valkeyReply *r = mpCommand(c, err, "INFO rdb_stats keyspace");
    if (!r) return 0;
    if (!mpIsString(r)) {
        freeReplyObject(r);
        *err = sdsnew("unexpected reply to INFO");
        return 0;
    }
    long long requested = st->requested;
    memset(st, 0, sizeof(*st));
    st->requested = requested;
    st->supported = mpInfoField(r->str, "rdb_stats_status", st->status, sizeof(st->status)) != NULL;
    st->in_progress = (int)mpInfoLL(r->str, "rdb_stats_in_progress");
    st->last_time = mpInfoLL(r->str, "rdb_stats_last_time");
    st->progress_keys = mpInfoLL(r->str, "rdb_stats_progress_keys");
    st->total_keys = mpInfoTotalKeys(r->str);
    freeReplyObject(r);
    return 1;
}

/* The server's clock, in seconds, or 'fallback' when TIME fails. */
static long long mpServerTimeOr(valkeyContext *c, long long fallback) {
    sds err = NULL;
    valkeyReply *r = mpCommand(c, &err, "TIME");
    long long t = fallback;
    if (r && r->type == VALKEY_REPLY_ARRAY && r->elements == 2) t = mpReplyLL(r->element[0]);
    if (r) freeReplyObject(r);
    sdsfree(err);
    return t;
}

static long long mpServerTime(valkeyContext *c) {
    return mpServerTimeOr(c, (long long)time(NULL));
}

/* A replica whose link to its primary is up (not loading a full sync). */
int mpReplicaInSync(valkeyContext *c) {
    sds err = NULL;
    char buf[16];
    valkeyReply *r = mpCommand(c, &err, "INFO replication");
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
int mpStart(valkeyContext *c, mpNodeState *st, int *reused, int *started, sds *err) {
    *reused = 0;
    *started = 0;
    st->requested = 0;
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
    if (mpInterrupted) return 1;   /* Ctrl-C before START: nothing to cancel. */
    const char *cmd = memprofCli.save ? "BGSAVE STAT_MEMORY" : "MEMORY PROFILE START";
    /* The profile we read must be forked after this (mpFresh()); without
     * the server's clock there is nothing to compare with. */
    st->requested = mpServerTimeOr(c, 0);
    valkeyReply *r = mpCommand(c, err, cmd);
    if (!r) {
        *err = mpExplainError(*err, cmd);
        return 0;
    }
    freeReplyObject(r);
    st->in_progress = 1;
    *started = 1;
    return 1;
}

/* Ctrl-C while profiles start or run: the profile-only children we started
 * are cancelled (a BGSAVE STAT_MEMORY is left to finish its save). The
 * handler is installed before START is sent, and only sets a flag: sending
 * CANCEL from it could cut into the command in flight, so the CANCEL goes
 * out at the next safe point, at the latest as soon as START has answered
 * (the client library resumes a read or write the signal interrupted). A second Ctrl-C
 * ends valkey-cli at once (SA_RESETHAND), should the server not answer. */
volatile sig_atomic_t mpInterrupted = 0;

static void mpOnSigint(int sig) {
    (void)sig;
    mpInterrupted = 1;
}

void mpCatchSigint(int on) {
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on ? mpOnSigint : SIG_DFL;
    sa.sa_flags = on ? SA_RESETHAND : 0;
    sigaction(SIGINT, &sa, NULL);
}

void mpCancel(valkeyContext *c, const char *label) {
    if (memprofCli.save) {
        fprintf(stderr, "%s%sinterrupted: the BGSAVE STAT_MEMORY goes on on the server\n", label ? label : "",
                label ? ": " : "");
        return;
    }
    sds err = NULL;
    valkeyReply *r = mpCommand(c, &err, "MEMORY PROFILE CANCEL");
    fprintf(stderr, "%s%sinterrupted: %s\n", label ? label : "", label ? ": " : "",
            r ? "the profile was cancelled (MEMORY PROFILE CANCEL)" : err);
    if (r) freeReplyObject(r);
    sdsfree(err);
}

/* After the child ends: 0 with *err set when it published nothing. */
int mpFinished(const mpNodeState *st, sds *err) {
    if (strcmp(st->status, "ok")) {
        *err = sdscatprintf(sdsempty(),
                            "the profile failed or was cancelled (rdb_stats_status:%s): a save, a rewrite, a full "
                            "sync, MEMORY PROFILE CANCEL or a failure stopped it; the server's log says which",
                            st->status);
        return 0;
    }
    return 1;
}

int mpFresh(const mpNodeState *st, const mpReport *rep, sds *err) {
    if (!st->requested || rep->time >= st->requested) return 1;
    *err = sdscatprintf(sdsempty(),
                        "the server published no new profile: the last one was forked at %lld, before the request "
                        "at %lld (server time); %s did not profile, the server's log says why",
                        rep->time, st->requested, memprofCli.save ? "BGSAVE STAT_MEMORY" : "MEMORY PROFILE START");
    return 0;
}

int mpReadReport(valkeyContext *c, long count, mpReport *rep, sds *err) {
    valkeyReply *r = mpCommand(c, err, "MEMORY PROFILE REPORT COUNT %ld", count);
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

void mpProgress(long long done, long long total, long long start_ms, const char *what) {
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

void mpProgressClear(void) {
    if (!mpProgressShown) return;
    fprintf(stderr, "\r\033[K");
    fflush(stderr);
    mpProgressShown = 0;
}

/* ------------------------------------------------------------------------
 * valkey-cli --memprofile
 * --------------------------------------------------------------------- */

static void mpFail(const char *where, sds err) {
    mpProgressClear();
    fprintf(stderr, "%s%s%s\n", where ? where : "", where ? ": " : "", err);
    sdsfree(err);
}

int memprofCliRun(valkeyContext *c, const char *addr, int output) {
    mpNodeState st;
    sds err = NULL;
    int reused, started;
    long long start = mpMstime();
    mpCatchSigint(1);
    int ok = mpStart(c, &st, &reused, &started, &err);
    if (mpInterrupted) {
        sdsfree(err);
        if (started) mpCancel(c, NULL);
        return 130;
    }
    if (!ok) {
        mpFail(NULL, err);
        return 1;
    }
    long long total = st.total_keys;
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
    if (!mpFresh(&st, &rep, &err)) {
        mpReportFree(&rep);
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
            valkeyReply *r = mpCommand(c, &err, "MEMORY PROFILE REPORT COUNT 1 TYPE %s", rep.types.v[t].name);
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
