/*
 * Copyright (c) Valkey Contributors
 * All rights reserved.
 * SPDX-License-Identifier: BSD-3-Clause
 */

/* Budgets: limits an operator sets on figures of the profile,
 *
 *   memory-profile-budgets "group:sessions 512mb type:hash 2gb category:mem_allocator_frag 256mb"
 *
 * with a pressure level each: ok below memory-profile-budget-warning
 * percent of the limit, warning from it, over from 100%. A target is
 * group:<name> (a memory-profile-groups group), type:<type>,
 * encoding:<type>_<encoding>, db:<n> or category:<field> (a figure of the
 * breakdown or of the waterfall, by its INFO name). Every figure is the
 * published profile's: budgets are evaluated when a profile is published
 * and when their configs change, never live and never per key. A level
 * change logs one line naming the target (a group's name is a label, never
 * a key). Budgets only report: evicting and refusing writes stay
 * maxmemory's job. */

#include "memprofile_internal.h"

#define MEMPROF_BUDGETS_MAX 64

enum { MEMPROF_BUDGET_GROUP,
       MEMPROF_BUDGET_TYPE,
       MEMPROF_BUDGET_ENCODING,
       MEMPROF_BUDGET_DB,
       MEMPROF_BUDGET_CATEGORY };
enum { MEMPROF_LEVEL_UNKNOWN,
       MEMPROF_LEVEL_OK,
       MEMPROF_LEVEL_WARNING,
       MEMPROF_LEVEL_OVER };
static const char *memprofLevelNames[] = {"unknown", "ok", "warning", "over"};

typedef struct memprofBudget {
    sds target; /* As written: "group:sessions". */
    sds field;  /* For INFO: "group_sessions". */
    int kind;   /* MEMPROF_BUDGET_* */
    int index;  /* The type, encoding, db or category. */
    sds group;  /* The group's name. */
    unsigned long long limit;
    /* The last evaluation. */
    long long bytes; /* -1 when the profile does not have the figure. */
    int level;       /* MEMPROF_LEVEL_* */
} memprofBudget;

static struct {
    sds config;  /* The memory-profile-budgets value parsed. */
    int warning; /* The memory-profile-budget-warning evaluated with. */
    memprofBudget *b;
    int n;
} budgets;

static void memprofBudgetsFree(memprofBudget *b, int n) {
    for (int i = 0; i < n; i++) {
        sdsfree(b[i].target);
        sdsfree(b[i].field);
        sdsfree(b[i].group);
    }
    zfree(b);
}

/* One target, into b (its kind, index, group). 0 with *err set. */
static int memprofBudgetTarget(const char *t, memprofBudget *b, const char **err) {
    const char *colon = strchr(t, ':');
    const char *v = colon ? colon + 1 : "";
    size_t kind_len = colon ? (size_t)(colon - t) : strlen(t);
    b->index = -1;
    if (kind_len == 5 && !strncmp(t, "group", 5)) {
        b->kind = MEMPROF_BUDGET_GROUP;
        if (!memprofGroupNameValid(v, strlen(v))) {
            *err = "a group: budget names a group: 1 to 32 bytes of a-z, 0-9 and _";
            return 0;
        }
        b->group = sdsnew(v);
        return 1;
    }
    if (kind_len == 4 && !strncmp(t, "type", 4)) {
        b->kind = MEMPROF_BUDGET_TYPE;
        for (int i = 0; i < MEMPROF_TYPE_COUNT; i++) {
            if (!strcmp(v, memprofTypeNames[i])) b->index = i;
        }
        if (b->index < 0) *err = "a type: budget names a type: string, list, set, zset, hash, stream or module";
    } else if (kind_len == 8 && !strncmp(t, "encoding", 8)) {
        b->kind = MEMPROF_BUDGET_ENCODING;
        for (int i = 0; i < MEMPROF_ENC_COUNT; i++) {
            if (i != MEMPROF_ENC_MODULE && !strcmp(v, memprofEncodings[i].name)) b->index = i;
        }
        if (b->index < 0) *err = "an encoding: budget names an encoding as INFO rdb_stats does (hash_listpack...)";
    } else if (kind_len == 2 && !strncmp(t, "db", 2)) {
        b->kind = MEMPROF_BUDGET_DB;
        long long db;
        if (string2ll(v, strlen(v), &db) && db >= 0 && db <= INT_MAX && *v != '-' && *v != '+') b->index = (int)db;
        if (b->index < 0) *err = "a db: budget names a database number";
    } else if (kind_len == 8 && !strncmp(t, "category", 8)) {
        b->kind = MEMPROF_BUDGET_CATEGORY;
        b->index = memprofCategoryIndex(v);
        if (b->index < 0) *err = "a category: budget names a field of the breakdown or the waterfall (mem_rss...)";
    } else {
        *err = "a budget's target is group:<name>, type:<type>, encoding:<encoding>, db:<n> or category:<field>";
    }
    return b->index >= 0;
}

/* NULL with *n 0 and *err NULL for no budgets; NULL with *err set for a
 * value the config refuses. */
static memprofBudget *memprofBudgetsParse(const char *value, int *n, const char **err) {
    *err = NULL;
    *n = 0;
    if (value == NULL || *value == '\0') return NULL;
    int argc;
    sds *argv = sdssplitargs(value, &argc);
    if (argv == NULL) {
        *err = "unbalanced quotes";
        return NULL;
    }
    memprofBudget *b = NULL;
    int count = 0;
    if (argc % 2) {
        *err = "expected pairs of a target and a limit";
    } else if (argc / 2 > MEMPROF_BUDGETS_MAX) {
        *err = "at most 64 budgets";
    } else if (argc) {
        b = zcalloc(sizeof(*b) * (argc / 2));
    }
    for (int i = 0; b && i < argc; i += 2, count++) {
        memprofBudget *x = &b[count];
        if (!memprofBudgetTarget(argv[i], x, err)) break;
        int bad = 0;
        x->limit = memtoull(argv[i + 1], &bad);
        if (bad || x->limit == 0) {
            *err = "a budget's limit is a number of bytes with an optional unit (512mb, 2gb), at least 1";
            break;
        }
        for (int j = 0; j < count; j++) {
            if (!strcmp(b[j].target, argv[i])) *err = "a budget's target appears twice";
        }
        if (*err) break;
        x->target = sdsnew(argv[i]);
        x->field = sdsmapchars(sdsdup(x->target), ":", "_", 1);
        x->bytes = -1;
        x->level = MEMPROF_LEVEL_UNKNOWN;
    }
    if (*err) {
        /* The entry that failed may hold its group already. */
        if (b && count < argc / 2) sdsfree(b[count].group), b[count].group = NULL;
        memprofBudgetsFree(b, count);
        b = NULL;
        count = 0;
    }
    sdsfreesplitres(argv, argc);
    *n = count;
    return b;
}

int memprofBudgetsValidate(sds value, const char **err) {
    int n;
    memprofBudget *b = memprofBudgetsParse(value, &n, err);
    memprofBudgetsFree(b, n);
    return *err == NULL;
}

/* The figure a budget watches, in a summary: 0 when it lacks it. */
static int memprofBudgetFigure(const memprofSummary *s, const void *arg, long long *value) {
    const memprofBudget *b = arg;
    *value = 0;
    switch (b->kind) {
    case MEMPROF_BUDGET_GROUP: return memprofGroupOf(s, b->group, value);
    case MEMPROF_BUDGET_TYPE:
        for (int e = 0; e < MEMPROF_ENC_COUNT; e++) {
            if (memprofEncodings[e].type == b->index) *value += (long long)s->enc[e].bytes;
        }
        return 1;
    case MEMPROF_BUDGET_ENCODING: *value = (long long)s->enc[b->index].bytes; return 1;
    case MEMPROF_BUDGET_DB:
        for (size_t i = 0; i < s->ndbs; i++) {
            if (s->dbs[i].index == b->index) *value = (long long)s->dbs[i].bytes;
        }
        return 1; /* A db the profile does not list has no keys. */
    default: *value = s->cat[b->index]; return 1;
    }
}

static int memprofBudgetLevel(long long bytes, unsigned long long limit, int warning) {
    if (bytes < 0) return MEMPROF_LEVEL_OK;
    if ((unsigned long long)bytes >= limit) return MEMPROF_LEVEL_OVER;
    if ((long double)bytes * 100 >= (long double)limit * warning) return MEMPROF_LEVEL_WARNING;
    return MEMPROF_LEVEL_OK;
}

static double memprofBudgetShare(const memprofBudget *b) {
    return b->bytes > 0 ? (double)b->bytes * 100 / (double)b->limit : 0;
}

/* Each budget against the published profile; a level that changed logs
 * one line (a new budget that starts ok logs none). */
static void memprofBudgetsRecompute(void) {
    const memprofSummary *latest = memprofLatestSummary();
    for (int i = 0; latest && i < budgets.n; i++) {
        memprofBudget *b = &budgets.b[i];
        long long bytes;
        int was = b->level;
        if (!memprofBudgetFigure(latest, b, &bytes)) {
            b->bytes = -1;
            b->level = MEMPROF_LEVEL_UNKNOWN;
            continue;
        }
        b->bytes = bytes;
        b->level = memprofBudgetLevel(bytes, b->limit, budgets.warning);
        if (b->level == was || (was == MEMPROF_LEVEL_UNKNOWN && b->level == MEMPROF_LEVEL_OK)) continue;
        char limit[64];
        bytesToHuman(limit, sizeof(limit), b->limit);
        serverLog(b->level == MEMPROF_LEVEL_OVER ? LL_WARNING : LL_NOTICE,
                  "Memory budget %s is %s: %.1f%% of its %s limit (%s%s)", b->target, memprofLevelNames[b->level],
                  memprofBudgetShare(b), limit, was == MEMPROF_LEVEL_UNKNOWN ? "" : "was ",
                  was == MEMPROF_LEVEL_UNKNOWN ? "first evaluated" : memprofLevelNames[was]);
    }
}

/* Parse the configs again when they changed since the last evaluation: a
 * budget whose target stays keeps its level, so that only a real change
 * is logged. Returns 1 when they changed. */
static int memprofBudgetsSync(void) {
    const char *conf = server.memory_profile_budgets ? server.memory_profile_budgets : "";
    if (budgets.config && !strcmp(budgets.config, conf) && budgets.warning == server.memory_profile_budget_warning)
        return 0;
    int n;
    const char *err;
    memprofBudget *b = memprofBudgetsParse(conf, &n, &err);
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < budgets.n; j++) {
            if (!strcmp(b[i].target, budgets.b[j].target)) b[i].level = budgets.b[j].level;
        }
    }
    memprofBudgetsFree(budgets.b, budgets.n);
    budgets.b = b;
    budgets.n = n;
    sdsfree(budgets.config);
    budgets.config = sdsnew(conf);
    budgets.warning = server.memory_profile_budget_warning;
    return 1;
}

void memprofBudgetsEvaluate(void) {
    memprofBudgetsSync();
    memprofBudgetsRecompute();
}

/* The configs' apply function: evaluate against the published profile at
 * once. */
int memprofBudgetsApply(const char **err) {
    UNUSED(err);
    if (memprofBudgetsSync()) memprofBudgetsRecompute();
    return 1;
}

/* INFO rdb_stats: each budget, once a profile was published. */
sds memprofBudgetsInfo(sds info) {
    const memprofSummary *latest = memprofLatestSummary();
    if (!latest) return info;
    if (memprofBudgetsSync()) memprofBudgetsRecompute();
    for (int i = 0; i < budgets.n; i++) {
        const memprofBudget *b = &budgets.b[i];
        memprofTrend t = memprofFitHistory(memprofBudgetFigure, b);
        long long secs = b->bytes < 0 ? -1 : memprofForecastSeconds(b->bytes, (long long)b->limit, &t);
        const char *f = b->field;
        info = sdscatprintf(info,
                            "rdb_stats_budget_%s_limit:%llu\r\n"
                            "rdb_stats_budget_%s_bytes:%lld\r\n"
                            "rdb_stats_budget_%s_level:%s\r\n"
                            "rdb_stats_budget_%s_growth_bytes_per_hour:%lld\r\n"
                            "rdb_stats_budget_%s_forecast_seconds:%lld\r\n",
                            f, b->limit, f, b->bytes, f, memprofLevelNames[b->level], f, t.per_hour, f, secs);
    }
    return info;
}

static int memprofBudgetShareCmp(const void *a, const void *b) {
    double x = memprofBudgetShare(*(memprofBudget *const *)a), y = memprofBudgetShare(*(memprofBudget *const *)b);
    return x < y ? 1 : (x > y ? -1 : 0);
}

/* MEMORY DOCTOR: the budgets in warning or over, largest share first, with
 * the time until the limit of those still under it. */
sds memprofBudgetsDoctor(sds report) {
    if (!memprofLatestSummary()) return report;
    if (memprofBudgetsSync()) memprofBudgetsRecompute();
    if (!budgets.n) return report;
    memprofBudget *pressed[MEMPROF_BUDGETS_MAX];
    int n = 0, unknown = 0;
    for (int i = 0; i < budgets.n; i++) {
        if (budgets.b[i].level >= MEMPROF_LEVEL_WARNING) pressed[n++] = &budgets.b[i];
        if (budgets.b[i].level == MEMPROF_LEVEL_UNKNOWN) unknown++;
    }
    report = sdscatprintf(report, "\nBudgets (%d set, warning from %d%%):\n", budgets.n, budgets.warning);
    if (!n) report = sdscat(report, " * Every budget is under its warning level.\n");
    qsort(pressed, n, sizeof(pressed[0]), memprofBudgetShareCmp);
    for (int i = 0; i < n; i++) {
        const memprofBudget *b = pressed[i];
        report = sdscatprintf(report, " * %s is %s: ", b->target, memprofLevelNames[b->level]);
        report = memprofCatBytes(report, (unsigned long long)b->bytes);
        report = sdscat(report, " of ");
        report = memprofCatBytes(report, b->limit);
        report = sdscatprintf(report, " (%.1f%%)", memprofBudgetShare(b));
        memprofTrend t = memprofFitHistory(memprofBudgetFigure, b);
        if (b->level == MEMPROF_LEVEL_WARNING && t.profiles && t.per_hour > 0) {
            report = sdscat(report, "; ");
            report =
                memprofCatForecast(report, "the limit", &t, memprofForecastSeconds(b->bytes, (long long)b->limit, &t));
        }
        report = sdscat(report, ".\n");
    }
    if (unknown) {
        report = sdscatprintf(report,
                              " * %d budget(s) name a group the last profile did not count "
                              "(memory-profile-groups changed since, or does not define it).\n",
                              unknown);
    }
    if (n) {
        report = sdscat(report, " * Budgets only report: maxmemory evicts or refuses writes, maxmemory-clients "
                                "evicts clients.\n");
    }
    return report;
}
