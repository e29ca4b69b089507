/*
 * Copyright (c) Valkey Contributors
 * All rights reserved.
 * SPDX-License-Identifier: BSD-3-Clause
 */

/* valkey-cli --cluster memprofile.
 *
 * The profile of memprofile_cli.c runs on every primary, or on one replica
 * of each shard, and the reports merge: counters, histograms and per-slot
 * figures add, the top keys are the largest of all nodes, and the
 * Space-Saving prefix summaries add their rows and their error bounds. From
 * the per-slot bytes we compute the skew between primaries and propose slot
 * moves that would bring every primary within 5% of the mean; nothing is
 * moved. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/time.h>

#include "memprofile_cli_internal.h"

#define MP_REPLY_TIMEOUT_SEC 30   /* A node that does not answer a command in this long has failed. */
#define MP_BALANCE_THRESHOLD 0.05 /* Every primary within 5% of the mean. */

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
    m->used_memory = mpAdd(m->used_memory, r->used_memory);
    m->keys = mpAdd(m->keys, r->keys);
    m->bytes = mpAdd(m->bytes, r->bytes);
    const mpCounts *from[] = {&r->types, &r->encodings, &r->dbs, &r->groups, &r->ttl, &r->breakdown};
    mpCounts *to[] = {&m->types, &m->encodings, &m->dbs, &m->groups, &m->ttl, &m->breakdown};
    for (int j = 0; j < 6; j++) {
        for (size_t i = 0; i < from[j]->n; i++) {
            mpCount *c = mpCountsGet(to[j], from[j]->v[i].name, sdslen(from[j]->v[i].name));
            c->keys = mpAdd(c->keys, from[j]->v[i].keys);
            c->bytes = mpAdd(c->bytes, from[j]->v[i].bytes);
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
        m->hist[j].keys = mpAdd(m->hist[j].keys, r->hist[i].keys);
        m->hist[j].bytes = mpAdd(m->hist[j].bytes, r->hist[i].bytes);
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
        m->floor_total[d] = mpAdd(m->floor_total[d], floor[d]);
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
        slot_keys[r->slots[i].slot] = mpAdd(slot_keys[r->slots[i].slot], r->slots[i].keys);
        slot_bytes[r->slots[i].slot] = mpAdd(slot_bytes[r->slots[i].slot], r->slots[i].bytes);
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
            q->keys = mpAdd(q->keys, p->keys);
            q->bytes = mpAdd(q->bytes, p->bytes);
            q->error_bytes = mpAdd(q->error_bytes, p->error_bytes);
            q->floor = mpAdd(q->floor, p->floor);
            sdsfree(p->prefix);
        } else {
            m->prefixes[out++] = *p;
        }
    }
    m->nprefixes = out;
    for (size_t i = 0; i < out; i++) {
        mpPrefix *p = &m->prefixes[i];
        long long missing = mpSub(m->floor_total[p->depth], p->floor);
        p->bytes = mpAdd(p->bytes, missing);
        p->error_bytes = mpAdd(p->error_bytes, missing);
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
        if (owner[s] >= 0) b[owner[s]] = mpAdd(b[owner[s]], slot_bytes[s]);
    for (int i = 0; i < nshards; i++) sum = mpAdd(sum, b[i]);
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
        b[h] = mpSub(b[h], slot_bytes[best]);
        b[l] = mpAdd(b[l], slot_bytes[best]);
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
        sum = mpAdd(sum, b[i]);
        if (b[i] > max) max = b[i];
    }
    double mean = n ? (double)sum / n : 0;
    if (mean_out) *mean_out = mean;
    return mean > 0 ? (double)max / mean : 1.0;
}

/* Everything one --cluster memprofile run holds, step to step. */
typedef struct mpCluster {
    mpShard *shards;
    int nshards;
    mpRun *runs;
    int nruns;
    int covered; /* Shards whose report was merged. */
    int *owner;  /* Slot -> shard index, -1 when unowned. */
    mpReport merged;
    long long *slot_keys; /* Per slot, over every merged report. */
    long long *slot_bytes;
    char **names; /* Run labels, by run index. */
    mpMove *moves;
    size_t nmoves;
    double skew, mean, skew_after;
} mpCluster;

/* Discover: the shards (primaries that own slots, sorted), the slot owners,
 * and the node profiled for each shard: the primary, or with
 * --cluster-from-replicas its first reachable replica in sync. */
static void mpClusterDiscover(mpCluster *c, memprofCliNode *nodes, int count) {
    c->runs = zcalloc(sizeof(mpRun) * (count + 1));
    c->owner = zmalloc(sizeof(int) * MP_SLOTS);
    for (int i = 0; i < count; i++) {
        memprofCliNode *n = &nodes[i];
        if (n->primary) continue;
        int owns = 0;
        for (int s = 0; s < MP_SLOTS && !owns; s++) owns = n->slots[s];
        if (!owns) continue;
        mpShard sh = {n, NULL, -1, NULL, 0, 0};
        sh.label = zmalloc(strlen(n->ip) + 16);
        sprintf(sh.label, "%s:%d", n->ip, n->port);
        MP_PUSH(c->shards, c->nshards, sh);
    }
    mpSort(c->shards, c->nshards, sizeof(mpShard), mpCmpShard);
    for (int s = 0; s < MP_SLOTS; s++) c->owner[s] = -1;
    for (int i = 0; i < c->nshards; i++)
        for (int s = 0; s < MP_SLOTS; s++)
            if (c->shards[i].primary->slots[s]) c->owner[s] = i;

    for (int i = 0; i < c->nshards; i++) {
        mpShard *sh = &c->shards[i];
        memprofCliNode *pick = NULL;
        if (!memprofCli.from_replicas) {
            pick = sh->primary;
        } else {
            int replicas = 0;
            for (int j = 0; j < count && !pick; j++) {
                memprofCliNode *n = &nodes[j];
                if (!n->primary || strcmp(n->primary, sh->primary->name)) continue;
                replicas++;
                if (!n->failed && n->context && mpReplicaInSync(n->context)) pick = n;
            }
            if (!pick) {
                sh->why = sdscatprintf(sdsempty(), "%s (with --cluster-from-replicas its primary is not profiled)",
                                       replicas ? "no reachable replica in sync with it" : "no reachable replica");
                continue;
            }
        }
        mpRun *r = &c->runs[c->nruns];
        r->node = pick;
        r->label = zmalloc(strlen(pick->ip) + 16);
        sprintf(r->label, "%s:%d", pick->ip, pick->port);
        r->shard = i;
        sh->run = c->nruns++;
    }
}

/* Ctrl-C while profiles run: cancel the ones this run started. */
static void mpClusterInterrupted(mpCluster *c) {
    mpProgressClear();
    for (int i = 0; i < c->nruns; i++)
        if (c->runs[i].state == MP_RUN_RUNNING && c->runs[i].started) mpCancel(c->runs[i].node->context, c->runs[i].label);
    exit(130);
}

/* Run: start every profile, then wait for all with one progress bar. The
 * SIGINT handler is in place before the first START, so that a Ctrl-C at any
 * point cancels what was started. */
static void mpClusterRun(mpCluster *c) {
    long long start = mpMstime();
    mpCatchSigint(1);
    for (int i = 0; i < c->nruns; i++) {
        mpRun *r = &c->runs[i];
        if (mpInterrupted) mpClusterInterrupted(c);
        r->state = MP_RUN_RUNNING;
        if (!r->node->context) {
            r->state = MP_RUN_FAILED;
            r->error = sdsnew("not connected");
            continue;
        }
        struct timeval tv = {MP_REPLY_TIMEOUT_SEC, 0};
        valkeySetTimeout(r->node->context, tv);
        if (!mpStart(r->node->context, &r->st, &r->reused, &r->started, &r->error))
            r->state = MP_RUN_FAILED;
        else if (r->reused || !r->st.in_progress)
            r->state = MP_RUN_DONE;
    }
    for (;;) {
        long long done = 0, total = 0;
        int running = 0;
        if (mpInterrupted) mpClusterInterrupted(c);
        for (int i = 0; i < c->nruns; i++) {
            mpRun *r = &c->runs[i];
            if (r->state == MP_RUN_FAILED) continue;
            if (r->state == MP_RUN_RUNNING) {
                if (!mpReadState(r->node->context, &r->st, &r->error)) {
                    r->state = MP_RUN_FAILED;
                    continue;
                }
                if (!r->st.in_progress) r->state = MP_RUN_DONE;
            }
            total = mpAdd(total, r->st.total_keys);
            done = mpAdd(done, r->state == MP_RUN_DONE ? r->st.total_keys : r->st.progress_keys);
            running += r->state == MP_RUN_RUNNING;
        }
        if (!running) break;
        char what[64];
        snprintf(what, sizeof(what), "%d of %d nodes running", running, c->nruns);
        mpProgress(done, total, start, what);
        usleep(MP_POLL_US);
    }
    mpCatchSigint(0);
    mpProgressClear();
}

/* Merge: read every finished node's report (all lists: COUNT 0) and add it
 * in; a shard whose node failed is not covered, and says why. */
static void mpClusterMerge(mpCluster *c) {
    mpReportInit(&c->merged);
    sdsfree(c->merged.status);
    sdsfree(c->merged.source);
    c->merged.status = sdsnew("ok");
    c->merged.source = sdsnew(memprofCli.save ? "bgsave" : "profile");
    c->slot_keys = zcalloc(sizeof(long long) * MP_SLOTS);
    c->slot_bytes = zcalloc(sizeof(long long) * MP_SLOTS);
    c->names = zmalloc(sizeof(char *) * (c->nruns + 1));
    for (int i = 0; i < c->nruns; i++) {
        mpRun *r = &c->runs[i];
        mpShard *sh = &c->shards[r->shard];
        c->names[i] = r->label;
        if (r->state == MP_RUN_DONE && !r->reused && !mpFinished(&r->st, &r->error)) r->state = MP_RUN_FAILED;
        if (r->state == MP_RUN_DONE && !mpReadReport(r->node->context, 0, &r->report, &r->error))
            r->state = MP_RUN_FAILED;
        if (r->state == MP_RUN_DONE && !mpFresh(&r->st, &r->report, &r->error)) r->state = MP_RUN_FAILED;
        if (r->state != MP_RUN_DONE) {
            sh->run = -1;
            sh->why = sdscatprintf(sdsempty(), "%s failed: %s", r->label, r->error);
            continue;
        }
        mpMerge(&c->merged, &r->report, i, c->slot_keys, c->slot_bytes);
        sh->bytes = r->report.bytes;
        sh->keys = r->report.keys;
        c->covered++;
    }
    mpMergeFinish(&c->merged, c->slot_keys, c->slot_bytes);
    if (c->covered < c->nshards) {
        sdsfree(c->merged.status);
        c->merged.status = sdsnew(c->covered ? "partial" : "err");
    }
}

/* Plan: the skew between the covered primaries, and the slot moves (only
 * when every shard is covered) with the skew they would leave. */
static void mpClusterPlan(mpCluster *c) {
    long long *sb = zmalloc(sizeof(long long) * (c->nshards + 1));
    int nsb = 0;
    for (int i = 0; i < c->nshards; i++)
        if (c->shards[i].run >= 0) sb[nsb++] = c->shards[i].bytes;
    c->skew = mpSkew(sb, nsb, &c->mean);
    zfree(sb);
    if (c->covered == c->nshards && c->nshards > 1)
        c->moves = mpPlan(c->nshards, c->owner, c->slot_keys, c->slot_bytes, &c->nmoves);
    long long *after = zcalloc(sizeof(long long) * (c->nshards + 1));
    for (int s = 0; s < MP_SLOTS; s++)
        if (c->owner[s] >= 0) after[c->owner[s]] = mpAdd(after[c->owner[s]], c->slot_bytes[s]);
    for (size_t i = 0; i < c->nmoves; i++) {
        after[c->moves[i].from] = mpSub(after[c->moves[i].from], c->moves[i].bytes);
        after[c->moves[i].to] = mpAdd(after[c->moves[i].to], c->moves[i].bytes);
    }
    c->skew_after = mpSkew(after, c->nshards, NULL);
    zfree(after);
}

static void mpClusterPrintJson(mpCluster *c, int output) {
    sds s = sdsnew("{");
    s = mpJsonReport(s, &c->merged, memprofCli.count, c->names, output);
    s = sdscat(s, ",\n \"nodes\": [");
    for (int i = 0; i < c->nshards; i++) {
        mpShard *sh = &c->shards[i];
        mpRun *r = sh->run >= 0 ? &c->runs[sh->run] : NULL;
        s = sdscat(s, i ? ",\n  {\"shard\": " : "\n  {\"shard\": ");
        s = mpJsonStr(s, sh->label, strlen(sh->label), output);
        s = sdscat(s, ", \"primary_id\": ");
        s = mpJsonStr(s, sh->primary->name, strlen(sh->primary->name), output);
        if (r) {
            s = sdscat(s, ", \"node\": ");
            s = mpJsonStr(s, r->label, strlen(r->label), output);
            s = sdscatprintf(s, ", \"role\": \"%s\", \"status\": \"ok\", \"reused\": %s, \"time\": %lld, "
                                "\"keys\": %lld, \"bytes\": %lld, \"used_memory\": %lld}",
                             r->node->primary ? "replica" : "primary", r->reused ? "true" : "false", r->report.time,
                             r->report.keys, r->report.bytes, r->report.used_memory);
        } else {
            s = sdscat(s, ", \"status\": \"err\", \"error\": ");
            s = mpJsonStr(s, sh->why, sdslen(sh->why), output);
            s = sdscat(s, "}");
        }
    }
    s = sdscatprintf(s, "],\n \"covered_shards\": %d, \"shards\": %d, \"skew\": %.4f, \"mean_bytes\": %.0f, "
                        "\"skew_after_moves\": %.4f,\n \"moves\": [",
                     c->covered, c->nshards, c->skew, c->mean, c->skew_after);
    for (size_t i = 0; i < c->nmoves; i++) {
        const mpMove *mv = &c->moves[i];
        s = sdscatprintf(s, "%s{\"slot\": %d, \"keys\": %lld, \"bytes\": %lld, \"from\": \"%s\", \"to\": \"%s\", "
                            "\"from_id\": \"%s\", \"to_id\": \"%s\"}",
                         i ? ",\n  " : "\n  ", mv->slot, mv->keys, mv->bytes, c->shards[mv->from].label,
                         c->shards[mv->to].label, c->shards[mv->from].primary->name, c->shards[mv->to].primary->name);
    }
    s = sdscat(s, "]}\n");
    fwrite(s, 1, sdslen(s), stdout);
    sdsfree(s);
}

/* The text's head: one line per shard, covered or not. */
static void mpClusterPrintShards(mpCluster *c) {
    char h1[32], h2[32];
    printf(">>> Memory profile of %d shard%s (%s): %d covered\n", c->nshards, c->nshards == 1 ? "" : "s",
           memprofCli.from_replicas ? "one replica each" : "primaries", c->covered);
    for (int i = 0; i < c->nshards; i++) {
        mpShard *sh = &c->shards[i];
        if (sh->run < 0) {
            printf("  %s (%.8s): NOT COVERED: %s\n", sh->label, sh->primary->name, sh->why);
            continue;
        }
        mpRun *r = &c->runs[sh->run];
        printf("  %s (%.8s): %lld keys, %lld bytes (%s) of user data, used_memory %s; profiled on %s%s%s\n",
               sh->label, sh->primary->name, r->report.keys, r->report.bytes, mpHuman(r->report.bytes, h1, 32),
               mpHuman(r->report.used_memory, h2, 32), r->label, r->node->primary ? " (replica)" : "",
               r->reused ? ", reused" : "");
    }
    if (c->covered < c->nshards)
        printf("The figures below cover %d of %d shards: the shards marked NOT COVERED are missing.\n", c->covered,
               c->nshards);
}

static void mpClusterPrintSlots(mpCluster *c) {
    char h1[32];
    const mpReport *m = &c->merged;
    printf("\n-------- memory by slot -------\n\n");
    printf("%zu slots hold keys", m->nslots);
    if (m->nslots)
        printf("; the largest:\n");
    else
        printf("\n");
    for (size_t i = 0; i < m->nslots && (memprofCli.count == 0 || (long)i < memprofCli.count); i++)
        printf("  slot %5lld: %lld keys, %lld bytes (%s)\n", m->slots[i].slot, m->slots[i].keys, m->slots[i].bytes,
               mpHuman(m->slots[i].bytes, h1, 32));
}

/* The proposed moves as a shell script to review (nothing is moved). */
static void mpClusterPrintScript(mpCluster *c) {
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
    for (size_t i = 0; i < c->nmoves; i++) {
        const mpMove *mv = &c->moves[i];
        memprofCliNode *f = c->shards[mv->from].primary, *t = c->shards[mv->to].primary;
        printf("move_slot %d %s %d %s %s %d %s  # %lld keys, %lld bytes\n", mv->slot, f->ip, f->port, f->name, t->ip,
               t->port, t->name, mv->keys, mv->bytes);
    }
}

static void mpClusterPrintBalance(mpCluster *c) {
    char h1[32];
    printf("\n-------- balance between primaries -------\n\n");
    printf("Skew (max/mean of user data): %.3f, mean %.0f bytes", c->skew, c->mean);
    if (c->covered < c->nshards) printf(" (over the %d covered shards only)", c->covered);
    printf("\n");
    if (c->covered < c->nshards) {
        printf("No slot moves proposed: not every shard was profiled.\n");
        return;
    }
    if (c->nmoves == 0) {
        printf("No slot moves needed: every primary is within %.0f%% of the mean, or no move helps.\n",
               MP_BALANCE_THRESHOLD * 100);
        return;
    }
    long long moved = 0;
    for (size_t i = 0; i < c->nmoves; i++) moved = mpAdd(moved, c->moves[i].bytes);
    printf("Proposed: %zu slot moves, %lld bytes, skew after them %.3f. Nothing was moved.\n", c->nmoves, moved,
           c->skew_after);
    for (int f = 0; f < c->nshards; f++) {
        for (int t = 0; t < c->nshards; t++) {
            int n = 0;
            long long bytes = 0;
            for (size_t i = 0; i < c->nmoves; i++)
                if (c->moves[i].from == f && c->moves[i].to == t) n++, bytes = mpAdd(bytes, c->moves[i].bytes);
            if (n)
                printf("  %s -> %s: %d slots, %lld bytes (%s)\n", c->shards[f].label, c->shards[t].label, n, bytes,
                       mpHuman(bytes, h1, 32));
        }
    }
    mpClusterPrintScript(c);
}

static void mpClusterFree(mpCluster *c) {
    for (int i = 0; i < c->nruns; i++) {
        mpReportFree(&c->runs[i].report);
        sdsfree(c->runs[i].error);
        zfree(c->runs[i].label);
    }
    for (int i = 0; i < c->nshards; i++) {
        sdsfree(c->shards[i].why);
        zfree(c->shards[i].label);
    }
    mpReportFree(&c->merged);
    zfree(c->runs);
    zfree(c->shards);
    zfree(c->owner);
    zfree(c->slot_keys);
    zfree(c->slot_bytes);
    zfree(c->names);
    zfree(c->moves);
}

/* valkey-cli --cluster memprofile: discover, run, merge, plan, print. */
int memprofCliCluster(memprofCliNode *nodes, int count, int output) {
    mpCluster c = {0};
    mpClusterDiscover(&c, nodes, count);
    mpClusterRun(&c);
    mpClusterMerge(&c);
    mpClusterPlan(&c);
    if (output != MEMPROF_CLI_TEXT) {
        mpClusterPrintJson(&c, output);
    } else {
        mpClusterPrintShards(&c);
        mpPrintReport(&c.merged, NULL, memprofCli.count, c.names);
        mpClusterPrintSlots(&c);
        mpClusterPrintBalance(&c);
    }
    int ok = c.covered == c.nshards && c.nshards > 0;
    mpClusterFree(&c);
    return ok;
}
