/*
 * Copyright (c) Valkey Contributors
 * All rights reserved.
 * SPDX-License-Identifier: BSD-3-Clause
 */

/* The forecast: how fast memory grows, from the history of published
 * profiles, and when it reaches maxmemory at that rate.
 *
 * A figure (used_memory, RSS, a key group, a budget's figure) is fitted
 * with an ordinary least-squares line through the profiles kept in the
 * history whose fork was at most MEMPROF_FORECAST_WINDOW_MS (6 hours)
 * before the newest one's: x is the fork time in hours, y the figure in
 * bytes, the slope is the growth in bytes per hour. It takes at least
 * three profiles spanning ten seconds; with fewer nothing is forecast.
 * A forecast is from the newest profile: (limit - figure) / slope, in
 * seconds, -1 when the figure does not grow.
 *
 * Everything here reads the history only: no cost per key, nothing in the
 * child. */

#include "memprofile_internal.h"

#include <math.h>

memprofTrend memprofFitHistory(memprofFigureFn fn, const void *arg) {
    memprofTrend t = {0, 0, 0};
    size_t n = memprofHistoryLength();
    const memprofSummary *newest = memprofHistoryGet(0);
    if (!newest) return t;
    /* Times relative to the newest profile, in hours: two passes, for the
     * means and then the sums of the centered products. */
    double sx = 0, sy = 0;
    long long oldest = newest->mstime;
    int k = 0;
    for (size_t i = 0; i < n; i++) {
        const memprofSummary *s = memprofHistoryGet(i);
        long long y;
        if (newest->mstime - s->mstime > MEMPROF_FORECAST_WINDOW_MS) break;
        if (!fn(s, arg, &y)) continue;
        sx += (double)(s->mstime - newest->mstime) / 3600000.0;
        sy += (double)y;
        if (s->mstime < oldest) oldest = s->mstime;
        k++;
    }
    if (k < MEMPROF_FORECAST_MIN_PROFILES || newest->mstime - oldest < MEMPROF_FORECAST_MIN_SPAN_MS) return t;
    double mx = sx / k, my = sy / k, sxy = 0, sxx = 0;
    for (size_t i = 0; i < n; i++) {
        const memprofSummary *s = memprofHistoryGet(i);
        long long y;
        if (newest->mstime - s->mstime > MEMPROF_FORECAST_WINDOW_MS) break;
        if (!fn(s, arg, &y)) continue;
        double dx = (double)(s->mstime - newest->mstime) / 3600000.0 - mx;
        sxy += dx * ((double)y - my);
        sxx += dx * dx;
    }
    if (sxx <= 0) return t;
    t.profiles = k;
    t.per_hour = llround(sxy / sxx);
    t.span_ms = newest->mstime - oldest;
    return t;
}

long long memprofForecastSeconds(long long now, long long limit, const memprofTrend *t) {
    if (!t->profiles || t->per_hour <= 0) return -1;
    if (now >= limit) return 0;
    return (long long)((double)(limit - now) * 3600 / (double)t->per_hour);
}

/* Figure functions over a summary. */
static int memprofUsedMemoryOf(const memprofSummary *s, const void *arg, long long *value) {
    UNUSED(arg);
    *value = (long long)s->used_memory;
    return 1;
}

static int memprofRssOf(const memprofSummary *s, const void *arg, long long *value) {
    UNUSED(arg);
    *value = (long long)s->rss;
    return 1;
}

static int memprofCategoryOf(const memprofSummary *s, const void *arg, long long *value) {
    *value = s->cat[*(const int *)arg];
    return 1;
}

/* A key group by its name: summaries taken before it was configured do not
 * have it. */
int memprofGroupOf(const memprofSummary *s, const void *arg, long long *value) {
    for (size_t i = 0; i < s->ngroups; i++) {
        if (!strcmp(s->groups[i].name, arg)) {
            *value = (long long)s->groups[i].bytes;
            return 1;
        }
    }
    return 0;
}

static memprofTrend memprofUsedMemoryTrend(void) {
    return memprofFitHistory(memprofUsedMemoryOf, NULL);
}

/* INFO rdb_stats: the growth of used_memory and RSS (0 when not known:
 * rdb_stats_forecast_profiles says how many profiles the fit used), the
 * time until maxmemory, and each key group's growth. */
sds memprofForecastInfo(sds info) {
    const memprofSummary *latest = memprofLatestSummary();
    if (!latest) return info;
    memprofTrend used = memprofUsedMemoryTrend();
    memprofTrend rss = memprofFitHistory(memprofRssOf, NULL);
    long long to_max =
        server.maxmemory ? memprofForecastSeconds((long long)latest->used_memory, (long long)server.maxmemory, &used)
                         : -1;
    info = sdscatprintf(info,
                        "rdb_stats_forecast_profiles:%d\r\n"
                        "rdb_stats_growth_bytes_per_hour:%lld\r\n"
                        "rdb_stats_growth_rss_bytes_per_hour:%lld\r\n"
                        "rdb_stats_forecast_maxmemory_seconds:%lld\r\n",
                        used.profiles, used.per_hour, rss.per_hour, to_max);
    for (size_t i = 0; i < latest->ngroups; i++) {
        memprofTrend g = memprofFitHistory(memprofGroupOf, latest->groups[i].name);
        info = sdscatprintf(info, "rdb_stats_group_%s_growth_bytes_per_hour:%lld\r\n", latest->groups[i].name,
                            g.per_hour);
    }
    return info;
}

/* A duration for DOCTOR: minutes, hours or days. */
static sds memprofCatDuration(sds s, long long secs) {
    if (secs < 120) return sdscatprintf(s, "%lld second%s", secs, secs == 1 ? "" : "s");
    if (secs < 3600) return sdscatprintf(s, "%lld minutes", (secs + 59) / 60);
    if (secs < 3 * 86400) return sdscatprintf(s, "%.1f h", (double)secs / 3600);
    return sdscatprintf(s, "%.1f days", (double)secs / 86400);
}

/* "at +1.00M/h, <what> is reached in about 7.5 h" (a growing trend). */
sds memprofCatForecast(sds s, const char *what, const memprofTrend *t, long long secs) {
    s = sdscat(s, "at ");
    s = memprofCatDelta(s, t->per_hour);
    s = sdscatprintf(s, "/h, %s is ", what);
    if (secs == 0) return sdscat(s, "already reached");
    s = sdscat(s, "reached in about ");
    return memprofCatDuration(s, secs);
}

/* Fragmentation and dirty pages growing while the user data stays flat:
 * memory the allocator holds, not data (the leak that is not a leak). */
static int memprofHeldOf(const memprofSummary *s, const void *arg, long long *value) {
    UNUSED(arg);
    *value = s->cat[MEMPROF_BREAKDOWN_FIELDS + 3] + s->cat[MEMPROF_BREAKDOWN_FIELDS + 4] +
             s->cat[MEMPROF_BREAKDOWN_FIELDS + 5];
    return 1;
}

static sds memprofHeldPattern(sds report) {
    int user_data = 0;
    memprofTrend held = memprofFitHistory(memprofHeldOf, NULL);
    memprofTrend user = memprofFitHistory(memprofCategoryOf, &user_data);
    if (!held.profiles || held.per_hour <= 0) return report;
    double hours = (double)held.span_ms / 3600000.0;
    double grown = (double)held.per_hour * hours;
    if (grown < 1024 * 1024 || fabs((double)user.per_hour) * hours * 4 > grown) return report;
    report = sdscat(report, " * The allocator's fragmentation and dirty pages grow ");
    report = memprofCatDelta(report, held.per_hour);
    report = sdscat(report, "/h while the user data stays flat (");
    report = memprofCatDelta(report, user.per_hour);
    report = sdscatprintf(report,
                          "/h) over the last %d profiles: memory the allocator holds, not data, the leak that is "
                          "not a leak. MEMORY PURGE returns the dirty pages now; activedefrag yes moves live "
                          "allocations out of fragmented pages; a shorter decay (jemalloc's dirty_decay_ms and "
                          "muzzy_decay_ms, through MALLOC_CONF) returns freed pages sooner.\n",
                          held.profiles);
    return report;
}

/* MEMORY DOCTOR: the rate, the time until maxmemory and the pattern. */
sds memprofForecastDoctor(sds report) {
    const memprofSummary *latest = memprofLatestSummary();
    if (!latest) return report;
    memprofTrend used = memprofUsedMemoryTrend();
    report = sdscat(report, "\nForecast (least squares over the profiles of the last 6 hours):\n");
    if (!used.profiles) {
        return sdscatprintf(report,
                            " * Not enough history: it takes %d profiles spanning %d seconds "
                            "(memory-profile-interval takes them on a schedule; %zu kept now).\n",
                            MEMPROF_FORECAST_MIN_PROFILES, MEMPROF_FORECAST_MIN_SPAN_MS / 1000,
                            memprofHistoryLength());
    }
    report = sdscatprintf(report, " * From %d profiles over ", used.profiles);
    report = memprofCatDuration(report, used.span_ms / 1000);
    report = sdscat(report, ": used_memory ");
    if (!server.maxmemory || used.per_hour <= 0) {
        report = memprofCatDelta(report, used.per_hour);
        report = sdscat(report, used.per_hour <= 0 ? "/h, not growing" : "/h");
        report = sdscat(report, server.maxmemory ? ": maxmemory is not in sight.\n"
                                                 : "; maxmemory is not set, nothing bounds it but the machine.\n");
    } else {
        char what[96];
        char max[64];
        bytesToHuman(max, sizeof(max), server.maxmemory);
        snprintf(what, sizeof(what), "maxmemory (%s)", max);
        report = memprofCatForecast(
            report, what, &used,
            memprofForecastSeconds((long long)latest->used_memory, (long long)server.maxmemory, &used));
        report = sdscat(report, ".\n");
    }
    return memprofHeldPattern(report);
}
