/*
 * Copyright (c) Valkey Contributors
 * All rights reserved.
 * SPDX-License-Identifier: BSD-3-Clause
 */

/* What a published profile shows: the two log lines, INFO rdb_stats and the
 * composition part of MEMORY DOCTOR. None of them names a key or a prefix:
 * those go only to MEMORY PROFILE REPORT (memprofile_command.c), an admin
 * command. */

#include "memprofile_internal.h"

/* ------------------------------------------------------------------------
 * The two log lines (their format never changes: log parsers read them)
 * --------------------------------------------------------------------- */

void memprofLogProfile(const memprofProfile *p) {
    const memprofFigures *f = &p->f;
    unsigned long long keys, bytes;
    memprofCount types[MEMPROF_TYPE_COUNT];
    memprofTotals(f, &keys, &bytes);
    memprofTypeTotals(f, types);

    sds line = sdscatprintf(sdsempty(), "RDB object stats: total keys=%llu mem_bytes=%llu |", keys, bytes);
    for (int t = 0; t < MEMPROF_TYPE_COUNT; t++) {
        if (types[t].keys) line = sdscatprintf(line, " %s=%llu/%lluB", memprofTypeNames[t], types[t].keys, types[t].bytes);
    }
    serverLog(LL_NOTICE, "%s", line);
    sdsfree(line);
    serverLog(LL_NOTICE,
              "RDB memory breakdown: kv[user=%lluB expire=%lluB hash_meta=%lluB] "
              "user_meta[kvstore=%lluB clients=%lluB] "
              "sys[aof_buf=%lluB repl_buf=%lluB repl_backlog=%lluB]",
              memprofUserData(f), f->kv_expire, f->kv_hash_meta, f->um_kvstore, f->um_clients, f->sys_aof_buf,
              f->sys_repl_buf, f->sys_repl_backlog);
}

/* ------------------------------------------------------------------------
 * INFO rdb_stats
 * --------------------------------------------------------------------- */

static const memprofFigures memprofNoFigures;

sds memprofInfoString(sds info) {
    const memprofPublished *pub = memprofGetPublished();
    const memprofFigures *f = pub->last ? &pub->last->f : &memprofNoFigures;
    unsigned long long keys, bytes;
    memprofCount types[MEMPROF_TYPE_COUNT];
    memprofTotals(f, &keys, &bytes);
    memprofTypeTotals(f, types);

    info = sdscatprintf(info,
                        "# Rdb_stats\r\n"
                        "rdb_stats_status:%s\r\n"
                        "rdb_stats_source:%s\r\n"
                        "rdb_stats_in_progress:%d\r\n"
                        "rdb_stats_progress_keys:%zu\r\n"
                        "rdb_stats_last_time:%lld\r\n"
                        "rdb_stats_duration_ms:%lld\r\n"
                        "rdb_stats_used_memory:%zu\r\n"
                        "rdb_stats_keys:%llu\r\n"
                        "rdb_stats_bytes:%llu\r\n"
                        "rdb_stats_importing_keys:%llu\r\n"
                        "rdb_stats_importing_bytes:%llu\r\n",
                        memprofStatusNames[pub->status], memprofSourceName(pub),
                        pub->in_progress, pub->in_progress ? server.stat_current_save_keys_processed : 0,
                        (long long)pub->time, pub->duration_ms, pub->used_memory, keys, bytes, f->importing.keys,
                        f->importing.bytes);
    for (int t = 0; t < MEMPROF_TYPE_COUNT; t++) {
        info = sdscatprintf(info, "rdb_stats_%s_keys:%llu\r\nrdb_stats_%s_bytes:%llu\r\n", memprofTypeNames[t],
                            types[t].keys, memprofTypeNames[t], types[t].bytes);
    }
    for (int s = 0; s < MEMPROF_ENC_COUNT; s++) {
        if (s == MEMPROF_ENC_MODULE) continue; /* Already listed as a type. */
        info = sdscatprintf(info, "rdb_stats_%s_keys:%llu\r\nrdb_stats_%s_bytes:%llu\r\n", memprofEncodings[s].name,
                            f->enc[s].keys, memprofEncodings[s].name, f->enc[s].bytes);
    }
    long long cat[MEMPROF_CATEGORIES] = {0};
    if (pub->last) memprofCategoryValues(pub, cat);
    for (int i = 0; i < MEMPROF_BREAKDOWN_FIELDS; i++) {
        info = sdscatprintf(info, "%s:%lld\r\n", memprofCategoryName(i), cat[i]);
    }
    for (int i = 0; i < MEMPROF_TTL_BUCKETS; i++) {
        info = sdscatprintf(info, "rdb_stats_ttl_%s_keys:%llu\r\nrdb_stats_ttl_%s_bytes:%llu\r\n", memprofTtlNames[i],
                            f->ttl[i].keys, memprofTtlNames[i], f->ttl[i].bytes);
    }
    for (int i = MEMPROF_BREAKDOWN_FIELDS; i < MEMPROF_CATEGORIES; i++) {
        info = sdscatprintf(info, "%s:%lld\r\n", memprofCategoryName(i), cat[i]);
    }
    for (size_t i = 0; pub->last && i < pub->last->ndbs; i++) {
        const memprofIndexed *db = &pub->last->dbs[i];
        info = sdscatprintf(info, "rdb_stats_db%d_keys:%llu\r\nrdb_stats_db%d_bytes:%llu\r\n", db->index, db->keys,
                            db->index, db->bytes);
    }
    /* Key groups by their names ([a-z0-9_]): never their prefixes, which
     * are key bytes. */
    for (size_t i = 0; pub->last && i < pub->last->ngroups; i++) {
        const memprofGroupCount *g = &pub->last->groups[i];
        info = sdscatprintf(info, "rdb_stats_group_%s_keys:%llu\r\nrdb_stats_group_%s_bytes:%llu\r\n", g->name,
                            g->keys, g->name, g->bytes);
    }
    info = memprofForecastInfo(info);
    return memprofBudgetsInfo(info);
}

/* ------------------------------------------------------------------------
 * MEMORY DOCTOR: the composition part.
 * --------------------------------------------------------------------- */

/* Share of 'part' in 'whole', in percent. */
static double memprofPct(unsigned long long part, unsigned long long whole) {
    return whole ? (double)part * 100 / whole : 0;
}

/* Advice on a collection type whose non-compact encoding holds most of the
 * user data: the settings that decide the compact encoding, with their
 * current values. */
static sds memprofEncodingAdvice(sds s, const memprofFigures *f, unsigned long long user) {
    static const struct {
        int slot;
        const char *what;
    } big[] = {
        {MEMPROF_ENC_HASH_HASHTABLE, "hashes"},
        {MEMPROF_ENC_SET_HASHTABLE, "sets"},
        {MEMPROF_ENC_ZSET_SKIPLIST, "sorted sets"},
        {MEMPROF_ENC_LIST_QUICKLIST, "lists"},
    };
    for (size_t i = 0; i < sizeof(big) / sizeof(big[0]); i++) {
        int slot = big[i].slot;
        if (!f->enc[slot].keys || memprofPct(f->enc[slot].bytes, user) < 50) continue;
        s = sdscatprintf(s, " * %.1f%% of the user data is %s in their %s encoding (%llu keys, ",
                         memprofPct(f->enc[slot].bytes, user), big[i].what, strchr(memprofEncodings[slot].name, '_') + 1,
                         f->enc[slot].keys);
        s = memprofCatBytes(s, f->enc[slot].bytes / f->enc[slot].keys);
        s = sdscat(s, " per key on average). ");
        switch (slot) {
        case MEMPROF_ENC_HASH_HASHTABLE:
            s = sdscatprintf(s, "Hashes stay compact listpacks up to hash-max-listpack-entries (now %zu) fields "
                                "of at most hash-max-listpack-value (now %zu) bytes",
                             server.hash_max_listpack_entries, server.hash_max_listpack_value);
            break;
        case MEMPROF_ENC_SET_HASHTABLE:
            s = sdscatprintf(s, "Sets stay compact up to set-max-intset-entries (now %zu) integers, or "
                                "set-max-listpack-entries (now %zu) members of at most set-max-listpack-value "
                                "(now %zu) bytes",
                             server.set_max_intset_entries, server.set_max_listpack_entries,
                             server.set_max_listpack_value);
            break;
        case MEMPROF_ENC_ZSET_SKIPLIST:
            s = sdscatprintf(s, "Sorted sets stay compact listpacks up to zset-max-listpack-entries (now %zu) "
                                "members of at most zset-max-listpack-value (now %zu) bytes",
                             server.zset_max_listpack_entries, server.zset_max_listpack_value);
            break;
        case MEMPROF_ENC_LIST_QUICKLIST:
            s = sdscatprintf(s, "Lists are sized by list-max-listpack-size (now %d)", server.list_max_listpack_size);
            if (server.list_compress_depth == 0) s = sdscat(s, "; list-compress-depth is 0, so no node is compressed");
            break;
        }
        s = sdscat(s, ": if most keys are only a little over these limits, raising them saves memory "
                      "(at some CPU cost on large collections).\n");
    }
    return s;
}

/* Advice on overhead that is large next to the user data: above 1 MB and
 * above a share of the user data. */
static sds memprofOverheadAdvice(sds s, const memprofFigures *f, unsigned long long user) {
    const struct {
        unsigned long long bytes;
        double min_pct;
        const char *what;   /* The subject of the sentence. */
        const char *advice; /* What to do about it. */
    } checks[] = {
        {f->sys_repl_backlog, 10, "The replication backlog is",
         "a smaller repl-backlog-size is enough if replicas reconnect quickly."},
        {f->sys_repl_buf, 10, "Replication buffers are",
         "a replica is slow or far behind. See INFO replication and client-output-buffer-limit replica."},
        {f->um_clients, 10, "Client buffers are",
         "CLIENT LIST shows the clients with large qbuf or omem; client-output-buffer-limit and "
         "maxmemory-clients bound them."},
        {f->sys_aof_buf, 10, "The AOF buffer is", "the disk does not keep up with the writes."},
        {f->kv_expire, 20, "The expires tables are",
         "many small keys carry a TTL. Grouping small values into hashes, or fewer TTLs, reduces this."},
        {f->um_kvstore, 25, "The keyspace tables are",
         "the keys are many and small. Grouping small values into hashes reduces the per-key overhead."},
    };
    for (size_t i = 0; i < sizeof(checks) / sizeof(checks[0]); i++) {
        double pct = memprofPct(checks[i].bytes, user);
        if (checks[i].bytes <= 1024 * 1024 || pct < checks[i].min_pct) continue;
        s = sdscatprintf(s, " * %s %.1f%% of the user data: %s\n", checks[i].what, pct, checks[i].advice);
    }
    return s;
}

/* What the deep profile says, without naming any key or prefix (MEMORY
 * DOCTOR is not an admin command; MEMORY PROFILE REPORT is). */
static sds memprofDeepAdvice(sds s, const memprofProfile *p, unsigned long long user) {
    if (p->ntopkeys && memprofPct(p->topkeys[0].bytes, user) > 10) {
        s = sdscatprintf(s, " * One key holds %.1f%% of the user data (a %s of ", memprofPct(p->topkeys[0].bytes, user),
                         memprofTypeNames[memprofEncodings[p->topkeys[0].encoding].type]);
        s = memprofCatBytes(s, p->topkeys[0].bytes);
        s = sdscat(s, "): a big key is slow to delete, migrate and replicate; UNLINK frees it in the background.\n");
    }
    for (size_t i = 0; i < p->nprefixes; i++) {
        const memprofPrefix *x = &p->prefixes[i];
        if (x->depth != 1) continue;
        /* The first row of depth 1 is its largest. */
        if (memprofPct(x->bytes - x->error_bytes, user) > 50) {
            s = sdscatprintf(s, " * %s holds %.1f%% of the user data (%llu keys).\n",
                             sdslen(x->prefix) ? "One first-level key prefix" : "Keys without a delimiter",
                             memprofPct(x->bytes - x->error_bytes, user), x->keys);
        }
        break;
    }
    const memprofCount *ttl = p->f.ttl;
    unsigned long long day = ttl[MEMPROF_TTL_EXPIRED].bytes + ttl[MEMPROF_TTL_1H].bytes + ttl[MEMPROF_TTL_1D].bytes;
    unsigned long long day_keys = ttl[MEMPROF_TTL_EXPIRED].keys + ttl[MEMPROF_TTL_1H].keys + ttl[MEMPROF_TTL_1D].keys;
    if (day_keys) {
        s = sdscat(s, " * ");
        s = memprofCatBytes(s, day);
        s = sdscatprintf(s, " (%.1f%% of the user data, %llu keys) expires within a day of the profile", memprofPct(day, user),
                         day_keys);
        if (ttl[MEMPROF_TTL_EXPIRED].keys) {
            s = sdscat(s, "; ");
            s = memprofCatBytes(s, ttl[MEMPROF_TTL_EXPIRED].bytes);
            s = sdscatprintf(s, " (%llu keys) had expired already and waited for reclaim",
                             ttl[MEMPROF_TTL_EXPIRED].keys);
        }
        s = sdscat(s, ".\n");
    }
    return s;
}

/* RSS, line by line, at the fork: what holds each byte of the process's
 * resident memory. The lines add up to RSS exactly. */
static sds memprofWaterfallReport(sds s, const memprofPublished *pub, const memprofWaterfall *w) {
    const memprofFigures *f = &pub->last->f;
    memprofCount types[MEMPROF_TYPE_COUNT];
    memprofTypeTotals(f, types);
    struct {
        const char *what;
        long long bytes;
    } lines[MEMPROF_TYPE_COUNT + 20];
    int n = 0;
    for (int t = 0; t < MEMPROF_TYPE_COUNT; t++) {
        if (types[t].bytes) lines[n++] = (typeof(lines[0])){memprofTypeNames[t], (long long)types[t].bytes};
    }
    int ntypes = n; /* The user data lines (with the hashes' volatile sets). */
#if MEMPROF_BASE_9
    /* The rest of the hash field TTL metadata: the dbs' indexes of keys with
     * volatile fields. */
    lines[n++] = (typeof(lines[0])){"hash field TTL index", (long long)(f->kv_hash_meta - f->kv_hash_vsets)};
#endif
    lines[n++] = (typeof(lines[0])){"expires tables", (long long)f->kv_expire};
    lines[n++] = (typeof(lines[0])){"keyspace tables", (long long)f->um_kvstore};
    lines[n++] = (typeof(lines[0])){"client buffers", (long long)f->um_clients};
    lines[n++] = (typeof(lines[0])){"AOF buffer", (long long)f->sys_aof_buf};
    lines[n++] = (typeof(lines[0])){"replication buffers", (long long)f->sys_repl_buf};
    lines[n++] = (typeof(lines[0])){"replication backlog", (long long)f->sys_repl_backlog};
#if MEMPROF_BASE_9
    lines[n++] = (typeof(lines[0])){"pending replication data", (long long)f->sys_repl_pending};
    lines[n++] = (typeof(lines[0])){"slot import clients", (long long)f->sys_slot_import};
    lines[n++] = (typeof(lines[0])){"slot export clients", (long long)f->sys_slot_export};
#endif
    lines[n++] = (typeof(lines[0])){"other allocations", w->other};
    lines[n++] = (typeof(lines[0])){"startup memory", w->startup};
    lines[n++] = (typeof(lines[0])){"allocator fragmentation", w->frag};
    lines[n++] = (typeof(lines[0])){"allocator dirty pages", w->dirty};
    lines[n++] = (typeof(lines[0])){"allocator muzzy pages", w->muzzy};
    lines[n++] = (typeof(lines[0])){"RSS outside the allocator", w->rss_other};

    s = sdscat(s, "\nRSS at the fork, line by line (bytes, share of RSS):\n");
    long long sum = 0;
    for (int i = 0; i < n; i++) {
        sum += lines[i].bytes;
        s = sdscatprintf(s, " * %-26s %14lld %6.1f%%%s\n", lines[i].what, lines[i].bytes,
                         w->rss ? (double)lines[i].bytes * 100 / w->rss : 0, i < ntypes ? " (user data)" : "");
    }
    s = sdscatprintf(s, " * %-26s %14lld (RSS %lld)\n", "total", sum, w->rss);
    if (w->rss > 0) {
        s = sdscatprintf(s, " * Every line but \"other allocations\" names %.1f%% of RSS.\n",
                         100 - (double)(w->other > 0 ? w->other : 0) * 100 / w->rss);
    }
    return s;
}

/* Advice from the waterfall: where RSS goes beyond the data. */
static sds memprofWaterfallAdvice(sds s, const memprofWaterfall *w) {
    if (w->rss <= 0) return s;
    double pages = (double)(w->dirty + w->muzzy) * 100 / w->rss, frag = (double)w->frag * 100 / w->rss;
    double other = (double)w->other * 100 / w->rss;
    if (pages >= 10 && w->dirty + w->muzzy > 16 * 1024 * 1024) {
        s = sdscatprintf(s, " * The allocator holds %.1f%% of RSS in freed (dirty or muzzy) pages: MEMORY PURGE "
                            "returns them now; the allocator's decay settings return them sooner.\n",
                         pages);
    }
    if (frag >= 10 && w->frag > 16 * 1024 * 1024) {
        s = sdscatprintf(s, " * Fragmentation inside the allocator's pages is %.1f%% of RSS: activedefrag yes "
                            "moves values to pack them.\n",
                         frag);
    }
    if (other >= 5 && w->other > 16 * 1024 * 1024) {
        s = sdscatprintf(s, " * Allocations outside the profile are %.1f%% of RSS (Lua, functions, modules, "
                            "cluster links, memory allocated since the fork's data): MEMORY STATS splits them.\n",
                         other);
    }
    return s;
}

static unsigned long long memprofSummaryBytes(const memprofSummary *s) {
    unsigned long long bytes = 0;
    for (int i = 0; i < MEMPROF_ENC_COUNT; i++) bytes += s->enc[i].bytes;
    return bytes;
}

/* What changed from 'old' to 'new': the user data in bytes and per hour,
 * the type, encoding and first-level prefix that changed most, and RSS
 * against the data. Prefixes are named by their rank in the newer profile
 * only (MEMORY PROFILE HISTORY, an admin command, names them). */
static sds memprofGrowth(sds s, const char *since, const memprofSummary *new, const memprofSummary *old) {
    long long secs = (long long)(new->time - old->time);
    long long user = (long long)memprofSummaryBytes(new) - (long long)memprofSummaryBytes(old);
    long long rss = (long long)new->rss - (long long)old->rss;
    s = sdscatprintf(s, " * Since %s (%lld s earlier): user data ", since, secs);
    s = memprofCatDelta(s, user);
    if (secs > 0) {
        s = sdscat(s, " (");
        s = memprofCatDelta(s, (long long)((double)user * 3600 / secs));
        s = sdscat(s, " per hour)");
    }
    s = sdscat(s, ", RSS ");
    s = memprofCatDelta(s, rss);
    s = sdscat(s, ".\n");

    memprofCount tn[MEMPROF_TYPE_COUNT], to[MEMPROF_TYPE_COUNT];
    memprofFigures fn = {0}, fo = {0};
    memcpy(fn.enc, new->enc, sizeof(fn.enc));
    memcpy(fo.enc, old->enc, sizeof(fo.enc));
    memprofTypeTotals(&fn, tn);
    memprofTypeTotals(&fo, to);
    int bt = 0, be = 0;
    for (int t = 1; t < MEMPROF_TYPE_COUNT; t++) {
        if (llabs((long long)(tn[t].bytes - to[t].bytes)) > llabs((long long)(tn[bt].bytes - to[bt].bytes))) bt = t;
    }
    for (int e = 1; e < MEMPROF_ENC_COUNT; e++) {
        if (llabs((long long)(new->enc[e].bytes - old->enc[e].bytes)) >
            llabs((long long)(new->enc[be].bytes - old->enc[be].bytes)))
            be = e;
    }
    s = sdscatprintf(s, "   Most of it: type %s ", memprofTypeNames[bt]);
    s = memprofCatDelta(s, (long long)(tn[bt].bytes - to[bt].bytes));
    s = sdscatprintf(s, ", encoding %s ", memprofEncodings[be].name);
    s = memprofCatDelta(s, (long long)(new->enc[be].bytes - old->enc[be].bytes));
    /* The first-level prefix that changed most: one of the newer profile's
     * (by its rank there), or one the newer profile no longer lists (by its
     * rank in the older one). */
    long long best = 0;
    size_t rank = 0;
    int gone = 0;
    for (size_t i = 0; i < new->nprefixes; i++) {
        long long before = 0;
        for (size_t j = 0; j < old->nprefixes; j++) {
            if (!sdscmp(new->prefixes[i].prefix, old->prefixes[j].prefix)) before = (long long)old->prefixes[j].bytes;
        }
        long long d = (long long)new->prefixes[i].bytes - before;
        if (llabs(d) > llabs(best)) best = d, rank = i + 1, gone = 0;
    }
    for (size_t j = 0; j < old->nprefixes; j++) {
        int listed = 0;
        for (size_t i = 0; i < new->nprefixes && !listed; i++) {
            listed = !sdscmp(new->prefixes[i].prefix, old->prefixes[j].prefix);
        }
        long long d = -(long long)old->prefixes[j].bytes;
        if (!listed && llabs(d) > llabs(best)) best = d, rank = j + 1, gone = 1;
    }
    if (rank && !gone) {
        s = sdscatprintf(s, ", the first-level prefix ranked %zu ", rank);
        s = memprofCatDelta(s, best);
    } else if (rank) {
        s = sdscatprintf(s, ", the first-level prefix ranked %zu before and no longer listed ", rank);
        s = memprofCatDelta(s, best);
    }
    s = sdscat(s, ".\n");
    /* used_memory is everything allocated: RSS growing well past it is the
     * allocator keeping pages, not data. */
    long long used = (long long)new->used_memory - (long long)old->used_memory;
    if (rss > 0 && rss > used + (long long)(new->rss / 20)) {
        s = sdscat(s, "   RSS changed by ");
        s = memprofCatDelta(s, rss);
        s = sdscat(s, " while used_memory changed by ");
        s = memprofCatDelta(s, used);
        s = sdscat(s, ": the allocator holds the difference (see the waterfall above), not the data.\n");
    }
    return s;
}

/* DOCTOR: user data by type, largest share first. */
static sds memprofDoctorTypes(sds report, const memprofFigures *f, unsigned long long user) {
    memprofCount types[MEMPROF_TYPE_COUNT];
    memprofTypeTotals(f, types);
    int order[MEMPROF_TYPE_COUNT];
    for (int t = 0; t < MEMPROF_TYPE_COUNT; t++) order[t] = t;
    for (int i = 1; i < MEMPROF_TYPE_COUNT; i++) {
        for (int j = i; j > 0 && types[order[j]].bytes > types[order[j - 1]].bytes; j--) {
            int tmp = order[j];
            order[j] = order[j - 1];
            order[j - 1] = tmp;
        }
    }
    report = sdscat(report, " * User data by type:");
    for (int i = 0; i < MEMPROF_TYPE_COUNT; i++) {
        int t = order[i];
        if (!types[t].keys) continue;
        report = sdscatprintf(report, " %s %.1f%% (%llu keys)", memprofTypeNames[t], memprofPct(types[t].bytes, user),
                              types[t].keys);
    }
    return sdscat(report, "\n");
}

/* DOCTOR: the breakdown's three largest categories, and how much of
 * used_memory beyond the startup memory the profile explains. Sets
 * *explained and *net for the advice. */
static sds memprofDoctorCategories(sds report,
                                   const memprofPublished *pub,
                                   unsigned long long user,
                                   unsigned long long *explained,
                                   size_t *net) {
    const memprofFigures *f = &pub->last->f;
    struct {
        const char *name;
        unsigned long long bytes;
    } cat[] = {
        {"user data", user},
        {"hash field TTL metadata", f->kv_hash_meta},
        {"expires tables", f->kv_expire},
        {"keyspace tables", f->um_kvstore},
        {"client buffers", f->um_clients},
        {"AOF buffer", f->sys_aof_buf},
        {"replication buffers", f->sys_repl_buf},
        {"replication backlog", f->sys_repl_backlog},
        {"pending replication data", f->sys_repl_pending},
        {"slot migration clients", f->sys_slot_import + f->sys_slot_export},
    };
    int ncat = sizeof(cat) / sizeof(cat[0]);
    *explained = 0;
    for (int i = 0; i < ncat; i++) *explained += cat[i].bytes;
    report = sdscat(report, " * Largest categories:");
    for (int shown = 0; shown < 3; shown++) {
        int best = -1;
        for (int i = 0; i < ncat; i++) {
            if (cat[i].bytes && (best == -1 || cat[i].bytes > cat[best].bytes)) best = i;
        }
        if (best == -1) break;
        report = sdscatprintf(report, "%s %s ", shown ? "," : "", cat[best].name);
        report = memprofCatBytes(report, cat[best].bytes);
        cat[best].bytes = 0;
    }
    report = sdscat(report, "\n");

    size_t startup = server.initial_memory_usage;
    *net = pub->used_memory > startup ? pub->used_memory - startup : 0;
    report = sdscatprintf(report,
                          " * The profile explains %.1f%% of used_memory at the fork beyond the startup "
                          "memory (",
                          memprofPct(*explained, *net));
    report = memprofCatBytes(report, *explained);
    report = sdscat(report, " of ");
    report = memprofCatBytes(report, *net);
    return sdscat(report, ").\n");
}

/* DOCTOR: growth against the previous and the oldest profile kept. */
static sds memprofDoctorGrowth(sds report) {
    size_t history = memprofHistoryLength();
    if (history < 2) return report;
    report = sdscatprintf(report, "\nGrowth (%zu profiles kept, MEMORY PROFILE HISTORY lists them):\n", history);
    report = memprofGrowth(report, "the previous profile", memprofHistoryGet(0), memprofHistoryGet(1));
    if (history > 2) {
        report = memprofGrowth(report, "the oldest profile kept", memprofHistoryGet(0), memprofHistoryGet(history - 1));
    }
    return report;
}

/* DOCTOR: every piece of advice, or a line saying there is none. */
static sds memprofDoctorAdvice(sds report,
                               const memprofPublished *pub,
                               const memprofWaterfall *w,
                               unsigned long long user,
                               unsigned long long explained,
                               size_t net,
                               long long age) {
    const memprofFigures *f = &pub->last->f;
    sds advice = memprofDeepAdvice(sdsempty(), pub->last, user);
    advice = memprofWaterfallAdvice(advice, w);
    advice = memprofEncodingAdvice(advice, f, user);
    advice = memprofOverheadAdvice(advice, f, user);
    if (net && memprofPct(explained, net) < 90) {
        advice = sdscat(advice, " * More than 10% of used_memory is outside the profile: Lua and function "
                                "caches, module allocations, cluster links or memory freed since the fork. "
                                "MEMORY STATS shows the first ones.\n");
    }
    if (age > 3600) {
        advice = sdscatprintf(advice, " * The profile is %lld hours old: MEMORY PROFILE START takes a fresh one.\n",
                              age / 3600);
    }
    if (sdslen(advice)) {
        report = sdscat(report, "\nComposition advice:\n");
        report = sdscatsds(report, advice);
    } else {
        report = sdscat(report, " * Nothing in the composition calls for attention.\n");
    }
    sdsfree(advice);
    return report;
}

/* MEMORY DOCTOR's part: the state, the composition, the waterfall, the
 * growth and the advice. Names no key and no prefix. */
sds memprofDoctorReport(sds report) {
    const memprofPublished *pub = memprofGetPublished();
    report = sdscat(report, "\nMemory composition (memory profile):\n");
    if (pub->status == MEMPROF_STATUS_NONE) {
        return sdscat(report, " * No profile yet. Run BGSAVE STAT_MEMORY (or set rdb-save-stat-memory yes) to "
                              "take one while saving, or MEMORY PROFILE START to take one without writing a file "
                              "(memory-profile-interval takes them on a schedule): a forked child measures every "
                              "key without slowing the server, and the result appears here, in INFO rdb_stats, "
                              "in MEMORY PROFILE REPORT and in the log.\n");
    }
    if (pub->status == MEMPROF_STATUS_ERR) {
        report = sdscat(report, " * The last profile failed or was stopped; ");
        if (!pub->last) return sdscat(report, "there is no earlier profile. Run MEMORY PROFILE START again.\n");
        report = sdscat(report, "the figures below are from the one before it.\n");
    }
    if (pub->in_progress) report = sdscat(report, " * A profiling child is running now.\n");

    unsigned long long keys, user, explained;
    size_t net;
    memprofTotals(&pub->last->f, &keys, &user);
    long long age = (long long)(time(NULL) - pub->time);
    report = sdscatprintf(report, " * Profile taken %lld seconds ago by %s (it took %lld ms): %llu keys, ", age,
                          pub->source == MEMPROF_SOURCE_PROFILE ? "MEMORY PROFILE START" : "BGSAVE STAT_MEMORY",
                          pub->duration_ms, keys);
    report = memprofCatBytes(report, user);
    report = sdscat(report, " of user data.\n");
    report = memprofDoctorTypes(report, &pub->last->f, user);
    if (pub->last->f.importing.keys) {
        report = sdscatprintf(report, " * %llu keys (", pub->last->f.importing.keys);
        report = memprofCatBytes(report, pub->last->f.importing.bytes);
        report = sdscat(report, ") are in slots being imported: a slot migration was in progress at the fork.\n");
    }
    report = memprofDoctorCategories(report, pub, memprofUserData(&pub->last->f), &explained, &net);

    memprofWaterfall w;
    memprofGetWaterfall(pub, &w);
    report = memprofWaterfallReport(report, pub, &w);
    report = memprofDoctorGrowth(report);
    report = memprofForecastDoctor(report);
    report = memprofBudgetsDoctor(report);
    report = memprofDoctorAdvice(report, pub, &w, user, explained, net, age);
    return sdscat(report, " * MEMORY PROFILE REPORT lists this profile's largest keys and prefixes, its TTL horizon, "
                          "dbs and size histograms.\n");
}
