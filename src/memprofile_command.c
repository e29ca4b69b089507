/*
 * Copyright (c) Valkey Contributors
 * All rights reserved.
 * SPDX-License-Identifier: BSD-3-Clause
 */

/* MEMORY PROFILE: the command surface of the deep profile.
 *
 *   MEMORY PROFILE REPORT [COUNT n] [TYPE type]
 *
 * REPORT replies with the last published profile. Under RESP3 it is a map;
 * under RESP2 addReplyMapLen() makes every map a flat array of alternating
 * names and values, nested the same way. Before the first profile the
 * reply has the same shape with status and source 'none', zero figures and
 * empty lists. Key names and prefixes are sent as binary-safe bulk strings. */

#include "memprofile_internal.h"

#define MEMPROF_REPORT_DEFAULT_COUNT 10

/* The options of REPORT. */
typedef struct memprofReportArgs {
    size_t count; /* Cap of each list; SIZE_MAX for all. */
    int type;     /* MEMPROF_TYPE_* the top keys are filtered to, -1 for all. */
} memprofReportArgs;

/* Parse REPORT's options (argv[3] on), in any order, each at most once.
 * Returns C_ERR after replying with an error. */
static int memprofParseReportArgs(client *c, memprofReportArgs *args, long count, int allow_type) {
    int seen_count = 0, seen_type = 0;

    args->type = -1;
    for (int j = 3; j < c->argc; j++) {
        const char *opt = objectGetVal(c->argv[j]);
        int more = j + 1 < c->argc;
        if (!strcasecmp(opt, "count") && more && !seen_count) {
            if (getRangeLongFromObjectOrReply(c, c->argv[++j], 0, LONG_MAX, &count, NULL) != C_OK) return C_ERR;
            seen_count = 1;
        } else if (!strcasecmp(opt, "type") && more && !seen_type && allow_type) {
            const char *name = objectGetVal(c->argv[++j]);
            for (int t = 0; t < MEMPROF_TYPE_COUNT; t++) {
                if (!strcasecmp(name, memprofTypeNames[t])) args->type = t;
            }
            if (args->type == -1) {
                addReplyErrorFormat(c,
                                    "unknown type '%.128s': TYPE must be one of string, list, set, zset, hash, "
                                    "stream, module",
                                    name);
                return C_ERR;
            }
            seen_type = 1;
        } else {
            addReplyErrorObject(c, shared.syntaxerr);
            return C_ERR;
        }
    }
    args->count = count == 0 ? SIZE_MAX : (size_t)count;
    return C_OK;
}

/* {keys, bytes} */
static void memprofReplyCount(client *c, unsigned long long keys, unsigned long long bytes) {
    addReplyMapLen(c, 2);
    addReplyBulkCString(c, "keys");
    addReplyLongLong(c, (long long)keys);
    addReplyBulkCString(c, "bytes");
    addReplyLongLong(c, (long long)bytes);
}

/* A name (bulk string) followed by a number. */
static void memprofReplyField(client *c, const char *name, long long value) {
    addReplyBulkCString(c, name);
    addReplyLongLong(c, value);
}

/* types: every type, with or without keys. */
static void memprofReplyTypes(client *c, const memprofFigures *f) {
    memprofCount types[MEMPROF_TYPE_COUNT];
    memprofTypeTotals(f, types);
    addReplyMapLen(c, MEMPROF_TYPE_COUNT);
    for (int t = 0; t < MEMPROF_TYPE_COUNT; t++) {
        addReplyBulkCString(c, memprofTypeNames[t]);
        memprofReplyCount(c, types[t].keys, types[t].bytes);
    }
}

/* encodings: the 13 INFO names (module types have no encoding of their own:
 * they are in 'types'). */
static void memprofReplyEncodings(client *c, const memprofFigures *f) {
    addReplyMapLen(c, MEMPROF_ENC_MODULE);
    for (int e = 0; e < MEMPROF_ENC_MODULE; e++) {
        addReplyBulkCString(c, memprofEncodings[e].name);
        memprofReplyCount(c, f->enc[e].keys, f->enc[e].bytes);
    }
}

/* dbs: the dbs with keys, "db<N>". */
static void memprofReplyDbs(client *c, const memprofProfile *p) {
    size_t n = p ? p->ndbs : 0;
    addReplyMapLen(c, (long)n);
    for (size_t i = 0; i < n; i++) {
        char name[32];
        snprintf(name, sizeof(name), "db%d", p->dbs[i].index);
        addReplyBulkCString(c, name);
        memprofReplyCount(c, p->dbs[i].keys, p->dbs[i].bytes);
    }
}

/* groups: every key group the profile counted, in the config's order. */
static void memprofReplyGroups(client *c, const memprofGroupCount *groups, size_t n) {
    addReplyMapLen(c, (long)n);
    for (size_t i = 0; i < n; i++) {
        addReplyBulkCBuffer(c, groups[i].name, sdslen(groups[i].name));
        memprofReplyCount(c, groups[i].keys, groups[i].bytes);
    }
}

/* ttl: every bucket. */
static void memprofReplyTtl(client *c, const memprofFigures *f) {
    addReplyMapLen(c, MEMPROF_TTL_BUCKETS);
    for (int b = 0; b < MEMPROF_TTL_BUCKETS; b++) {
        addReplyBulkCString(c, memprofTtlNames[b]);
        memprofReplyCount(c, f->ttl[b].keys, f->ttl[b].bytes);
    }
}

/* Number of non-empty buckets of type t's histogram. */
static int memprofHistogramBuckets(const memprofFigures *f, int t) {
    int n = 0;
    for (int i = 0; i < MEMPROF_HIST_BUCKETS; i++) n += f->hist[t][i].keys != 0;
    return n;
}

/* histograms: the types with keys, each its non-empty buckets in ascending
 * order as {le, keys, bytes}; 'le' is 2^i (bucket 63, beyond any heap,
 * would say LLONG_MAX). Not capped by COUNT. */
static void memprofReplyHistograms(client *c, const memprofFigures *f) {
    int ntypes = 0;
    for (int t = 0; t < MEMPROF_TYPE_COUNT; t++) ntypes += memprofHistogramBuckets(f, t) != 0;
    addReplyMapLen(c, ntypes);
    for (int t = 0; t < MEMPROF_TYPE_COUNT; t++) {
        int nbuckets = memprofHistogramBuckets(f, t);
        if (nbuckets == 0) continue;
        addReplyBulkCString(c, memprofTypeNames[t]);
        addReplyArrayLen(c, nbuckets);
        for (int i = 0; i < MEMPROF_HIST_BUCKETS; i++) {
            const memprofCount *b = &f->hist[t][i];
            if (b->keys == 0) continue;
            addReplyMapLen(c, 3);
            memprofReplyField(c, "le", i < 63 ? (long long)(1ULL << i) : LLONG_MAX);
            memprofReplyField(c, "keys", (long long)b->keys);
            memprofReplyField(c, "bytes", (long long)b->bytes);
        }
    }
}

/* The MEMPROF_TYPE_* type of a top key, -1 when its encoding is out of range. */
static int memprofTopKeyType(const memprofTopKey *k) {
    if (k->encoding < 0 || k->encoding >= MEMPROF_ENC_COUNT) return -1;
    return memprofEncodings[k->encoding].type;
}

static int memprofTopKeyMatches(const memprofTopKey *k, int type) {
    int t = memprofTopKeyType(k);
    return t != -1 && (type == -1 || t == type);
}

/* topkeys: largest first, of one type with TYPE, at most 'count'. A key
 * whose name was cut carries key_len, the whole name's length. */
static void memprofReplyTopKeys(client *c, const memprofProfile *p, const memprofReportArgs *args) {
    size_t n = 0, total = p ? p->ntopkeys : 0;
    for (size_t i = 0; i < total && n < args->count; i++) n += memprofTopKeyMatches(&p->topkeys[i], args->type);
    addReplyArrayLen(c, (long)n);
    for (size_t i = 0, sent = 0; i < total && sent < n; i++) {
        const memprofTopKey *k = &p->topkeys[i];
        if (!memprofTopKeyMatches(k, args->type)) continue;
        int cut = k->name_len > sdslen(k->name);
        addReplyMapLen(c, 7 + cut);
        addReplyBulkCString(c, "key");
        addReplyBulkCBuffer(c, k->name, sdslen(k->name));
        if (cut) memprofReplyField(c, "key_len", (long long)k->name_len);
        memprofReplyField(c, "db", k->db);
        addReplyBulkCString(c, "type");
        addReplyBulkCString(c, memprofTypeNames[memprofTopKeyType(k)]);
        addReplyBulkCString(c, "encoding");
        addReplyBulkCString(c, memprofEncodings[k->encoding].encoding);
        memprofReplyField(c, "bytes", (long long)k->bytes);
        memprofReplyField(c, "elements", (long long)k->elements);
        memprofReplyField(c, "ttl_ms", k->ttl_ms);
        sent++;
    }
}

/* prefixes: depth ascending, largest first within a depth (as published),
 * at most 'count' rows of each depth. */
static void memprofReplyPrefixes(client *c, const memprofProfile *p, size_t count) {
    size_t total = p ? p->nprefixes : 0, n = 0, in_depth = 0;
    for (size_t i = 0; i < total; i++) {
        if (i == 0 || p->prefixes[i].depth != p->prefixes[i - 1].depth) in_depth = 0;
        if (in_depth++ < count) n++;
    }
    addReplyArrayLen(c, (long)n);
    for (size_t i = 0; i < total; i++) {
        const memprofPrefix *r = &p->prefixes[i];
        if (i == 0 || r->depth != p->prefixes[i - 1].depth) in_depth = 0;
        if (in_depth++ >= count) continue;
        addReplyMapLen(c, 5);
        addReplyBulkCString(c, "prefix");
        addReplyBulkCBuffer(c, r->prefix, sdslen(r->prefix));
        memprofReplyField(c, "depth", r->depth);
        memprofReplyField(c, "keys", (long long)r->keys);
        memprofReplyField(c, "bytes", (long long)r->bytes);
        memprofReplyField(c, "error_bytes", (long long)r->error_bytes);
    }
}

/* slots (cluster mode): largest first, at most 'count'. */
static void memprofReplySlots(client *c, const memprofProfile *p, size_t count) {
    size_t n = p ? p->nslots : 0;
    if (n > count) n = count;
    addReplyArrayLen(c, (long)n);
    for (size_t i = 0; i < n; i++) {
        addReplyMapLen(c, 3);
        memprofReplyField(c, "slot", p->slots[i].index);
        memprofReplyField(c, "keys", (long long)p->slots[i].keys);
        memprofReplyField(c, "bytes", (long long)p->slots[i].bytes);
    }
}

/* breakdown: the eleven mem_* figures of INFO rdb_stats. */
static void memprofReplyBreakdown(client *c, const memprofFigures *f, unsigned long long user) {
    memprofWaterfall w;
    memprofGetWaterfall(memprofGetPublished(), &w);
    addReplyMapLen(c, 11 + MEMPROF_WATERFALL_FIELDS);
    memprofReplyField(c, "mem_kv_user_data", (long long)user);
    memprofReplyField(c, "mem_kv_expiration", (long long)f->kv_expire);
    memprofReplyField(c, "mem_kv_hash_metadata", (long long)f->kv_hash_meta);
    memprofReplyField(c, "mem_um_kvstore", (long long)f->um_kvstore);
    memprofReplyField(c, "mem_um_clients_io", (long long)f->um_clients);
    memprofReplyField(c, "mem_sys_aof_buffer", (long long)f->sys_aof_buf);
    memprofReplyField(c, "mem_sys_repl_buffer", (long long)f->sys_repl_buf);
    memprofReplyField(c, "mem_sys_repl_backlog", (long long)f->sys_repl_backlog);
    memprofReplyField(c, "mem_sys_repl_pending", (long long)f->sys_repl_pending);
    memprofReplyField(c, "mem_sys_slot_import", (long long)f->sys_slot_import);
    memprofReplyField(c, "mem_sys_slot_export", (long long)f->sys_slot_export);
    /* The RSS waterfall's figures. */
    for (int i = 0; i < MEMPROF_WATERFALL_FIELDS; i++) {
        memprofReplyField(c, memprofWaterfallFields[i].name, MEMPROF_WATERFALL_VALUE(&w, i));
    }
}

/* MEMORY PROFILE REPORT [COUNT n] [TYPE type] */
static void memprofReportCommand(client *c) {
    static const memprofFigures zero;
    memprofReportArgs args;
    if (memprofParseReportArgs(c, &args, MEMPROF_REPORT_DEFAULT_COUNT, 1) != C_OK) return;

    const memprofPublished *pub = memprofGetPublished();
    const memprofProfile *p = pub->last;
    const memprofFigures *f = p ? &p->f : &zero;
    unsigned long long keys, bytes;
    memprofTotals(f, &keys, &bytes);

    addReplyMapLen(c, 16 + (server.cluster_enabled ? 1 : 0));
    addReplyBulkCString(c, "status");
    addReplyBulkCString(c, memprofStatusNames[pub->status]);
    addReplyBulkCString(c, "source");
    addReplyBulkCString(c, memprofSourceName(pub));
    memprofReplyField(c, "time", p ? (long long)pub->time : 0);
    memprofReplyField(c, "duration_ms", p ? pub->duration_ms : 0);
    memprofReplyField(c, "used_memory", p ? (long long)pub->used_memory : 0);
    memprofReplyField(c, "keys", (long long)keys);
    memprofReplyField(c, "bytes", (long long)bytes);
    addReplyBulkCString(c, "types");
    memprofReplyTypes(c, f);
    addReplyBulkCString(c, "encodings");
    memprofReplyEncodings(c, f);
    addReplyBulkCString(c, "dbs");
    memprofReplyDbs(c, p);
    addReplyBulkCString(c, "groups");
    memprofReplyGroups(c, p ? p->groups : NULL, p ? p->ngroups : 0);
    addReplyBulkCString(c, "ttl");
    memprofReplyTtl(c, f);
    addReplyBulkCString(c, "histograms");
    memprofReplyHistograms(c, f);
    addReplyBulkCString(c, "topkeys");
    memprofReplyTopKeys(c, p, &args);
    addReplyBulkCString(c, "prefixes");
    memprofReplyPrefixes(c, p, args.count);
    if (server.cluster_enabled) {
        addReplyBulkCString(c, "slots");
        memprofReplySlots(c, p, args.count);
    }
    addReplyBulkCString(c, "breakdown");
    memprofReplyBreakdown(c, f, memprofUserData(f));
}

/* One summary of the history. */
static void memprofReplySummary(client *c, const memprofSummary *s) {
    memprofFigures f = {0};
    memcpy(f.enc, s->enc, sizeof(f.enc));
    memcpy(f.ttl, s->ttl, sizeof(f.ttl));
    unsigned long long keys, bytes;
    memprofTotals(&f, &keys, &bytes);
    addReplyMapLen(c, 13);
    memprofReplyField(c, "time", (long long)s->time);
    memprofReplyField(c, "time_ms", s->mstime);
    addReplyBulkCString(c, "source");
    addReplyBulkCString(c, memprofSourceNames[s->source]);
    memprofReplyField(c, "used_memory", (long long)s->used_memory);
    memprofReplyField(c, "rss", (long long)s->rss);
    memprofReplyField(c, "keys", (long long)keys);
    memprofReplyField(c, "bytes", (long long)bytes);
    addReplyBulkCString(c, "types");
    memprofReplyTypes(c, &f);
    addReplyBulkCString(c, "encodings");
    memprofReplyEncodings(c, &f);
    addReplyBulkCString(c, "dbs");
    memprofProfile dbs = {.dbs = s->dbs, .ndbs = s->ndbs};
    memprofReplyDbs(c, &dbs);
    addReplyBulkCString(c, "groups");
    memprofReplyGroups(c, s->groups, s->ngroups);
    addReplyBulkCString(c, "ttl");
    memprofReplyTtl(c, &f);
    addReplyBulkCString(c, "prefixes");
    memprofProfile prefixes = {.prefixes = s->prefixes, .nprefixes = s->nprefixes};
    memprofReplyPrefixes(c, &prefixes, SIZE_MAX);
}

/* MEMORY PROFILE HISTORY [COUNT n]: newest first, all kept by default. */
static void memprofHistoryCommand(client *c) {
    memprofReportArgs args;
    if (memprofParseReportArgs(c, &args, 0, 0) != C_OK) return;
    size_t n = memprofHistoryLength();
    if (args.count < n) n = args.count;
    addReplyArrayLen(c, (long)n);
    for (size_t i = 0; i < n; i++) memprofReplySummary(c, memprofHistoryGet(i));
}

/* MEMORY PROFILE START. As bgsaveCommand() does, inside MULTI/EXEC it
 * schedules the profile instead of forking in the middle of the transaction
 * (scripts cannot call it: the subcommand is NOSCRIPT, as BGSAVE is). */
static void memprofStartCommand(client *c) {
    if (server.in_exec && server.child_type != CHILD_TYPE_MEMPROF) {
        memprofScheduleProfile();
        addReplyStatus(c, "Memory profiling scheduled");
        return;
    }
    sds err = NULL;
    if (memprofStartProfile(&err) == C_OK) {
        addReplyStatus(c, "Memory profiling started");
    } else {
        addReplyErrorSds(c, err);
    }
}

void memprofProfileCommand(client *c) {
    const char *verb = objectGetVal(c->argv[2]);
    if (!strcasecmp(verb, "report")) {
        memprofReportCommand(c);
    } else if (!strcasecmp(verb, "history")) {
        memprofHistoryCommand(c);
    } else if (!strcasecmp(verb, "start") && c->argc == 3) {
        memprofStartCommand(c);
    } else if (!strcasecmp(verb, "cancel") && c->argc == 3) {
        if (server.child_type == CHILD_TYPE_MEMPROF) {
            memprofKillChild("MEMORY PROFILE CANCEL");
            addReplyStatus(c, "Memory profiling cancelled");
        } else if (memprofUnscheduleProfile()) {
            addReplyStatus(c, "Scheduled memory profiling cancelled");
        } else {
            addReplyError(c, "No memory profile is in progress");
        }
    } else if (!strcasecmp(verb, "start") || !strcasecmp(verb, "cancel")) {
        addReplyErrorObject(c, shared.syntaxerr);
    } else {
        addReplySubcommandSyntaxError(c);
    }
}
