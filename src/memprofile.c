/*
 * Copyright (c) Valkey Contributors
 * All rights reserved.
 * SPDX-License-Identifier: BSD-3-Clause
 */

/* Fork-based memory profiling: the parent's published state. See
 * memprofile.h for the overview and memprofile_internal.h for the other
 * files.
 *
 * What the surfaces read: the last published profile with its fork
 * instant, the status and the history of summaries. memprofile_run.c
 * publishes a profile here only when the child exited with success and its
 * report arrived and validated; a profile that could not be taken (not
 * mapped, not forked, failed, killed or cancelled) keeps the previous one
 * and sets the status to err, with the reason in the log. */

#include "memprofile_internal.h"

static struct {
    memprofPublished pub;
    list *history;          /* memprofSummary, newest first. */
    memprofSummary *latest; /* Of the published profile. */
    memprofProfile *last;   /* What pub.last points to. */
} mp;

const memprofPublished *memprofGetPublished(void) {
    return &mp.pub;
}

void memprofSetInProgress(int on) {
    mp.pub.in_progress = on;
}

/* ------------------------------------------------------------------------
 * History: summaries of the last published profiles, newest first.
 * --------------------------------------------------------------------- */

static void memprofSummaryFree(void *ptr) {
    memprofSummary *s = ptr;
    for (size_t i = 0; i < s->nprefixes; i++) sdsfree(s->prefixes[i].prefix);
    zfree(s->prefixes);
    for (size_t i = 0; i < s->ngroups; i++) sdsfree(s->groups[i].name);
    zfree(s->groups);
    zfree(s->dbs);
    zfree(s);
}

static memprofSummary *memprofSummarize(const memprofPublished *pub) {
    const memprofProfile *p = pub->last;
    memprofSummary *s = zcalloc(sizeof(*s));
    s->source = pub->source;
    s->time = pub->time;
    s->mstime = pub->mstime;
    memprofCategoryValues(pub, s->cat);
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
    s->ngroups = p->ngroups;
    s->groups = zmalloc(sizeof(memprofGroupCount) * (p->ngroups ? p->ngroups : 1));
    for (size_t i = 0; i < p->ngroups; i++) {
        s->groups[i] = p->groups[i];
        s->groups[i].name = sdsdup(p->groups[i].name);
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
    if (mp.latest) memprofSummaryFree(mp.latest);
    mp.latest = memprofSummarize(pub);
    if (server.memory_profile_history > 0) listAddNodeHead(mp.history, memprofSummarize(pub));
    memprofHistoryTrim();
}

const memprofSummary *memprofLatestSummary(void) {
    return mp.latest;
}

size_t memprofHistoryLength(void) {
    memprofHistoryTrim();
    return mp.history ? listLength(mp.history) : 0;
}

const memprofSummary *memprofHistoryGet(size_t i) {
    listNode *ln = mp.history ? listIndex(mp.history, (long)i) : NULL;
    return ln ? listNodeValue(ln) : NULL;
}

void memprofNotPublished(const char *why) {
    mp.pub.status = MEMPROF_STATUS_ERR;
    serverLog(LL_WARNING, "RDB memory profile not published: %s", why);
}

void memprofPublish(memprofProfile *p, const memprofForkInstant *at) {
    memprofProfileFree(mp.last);
    mp.last = p;
    mp.pub.last = p;
    mp.pub.status = MEMPROF_STATUS_OK;
    mp.pub.source = at->source;
    mp.pub.time = at->time;
    mp.pub.mstime = at->mstime;
    mp.pub.duration_ms = mstime() - at->mstime;
    mp.pub.used_memory = at->used_memory;
    mp.pub.mem = at->mem;
    memprofHistoryAdd(&mp.pub);
}
