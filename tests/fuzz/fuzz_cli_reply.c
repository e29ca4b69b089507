/*
 * Copyright (c) Valkey Contributors
 * All rights reserved.
 * SPDX-License-Identifier: BSD-3-Clause
 */

/* Fuzz target: valkey-cli's reading of a MEMORY PROFILE REPORT reply, on
 * arbitrary RESP2 and RESP3 bytes, and everything it then does with the
 * report: the JSON (--json and --quoted-json, which must parse as JSON),
 * the text summary, and a merge of the report with itself as
 * --cluster memprofile merges nodes.
 *
 * Input: byte 0 chooses the output (bits 0-1: text, --json,
 * --quoted-json) and the list length (bits 2-7); the rest is what the
 * server sent, parsed by the client library's own reader. */

#include "fuzz_cli.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    fuzzQuiet();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    int output = data[0] & 3;
    if (output == 3) output = MEMPROF_CLI_QUOTED_JSON;
    long count = data[0] >> 2;

    valkeyReader *reader = valkeyReaderCreate();
    FUZZ_CHECK(reader);
    /* The client library's reader allocates an aggregate's element array
     * as announced (up to 2^32 - 1 elements by default): a hostile server
     * can make any client of the library allocate that much, which is the
     * library's limit to set, not our parser's. Ours is fuzzed below it. */
    reader->maxelements = 65536;
    void *reply = NULL;
    if (valkeyReaderFeed(reader, (const char *)data + 1, size - 1) != VALKEY_OK ||
        valkeyReaderGetReply(reader, &reply) != VALKEY_OK || !reply) {
        valkeyReaderFree(reader);
        return 0;
    }
    valkeyReaderFree(reader);

    mpReport rep;
    if (mpParseReport(reply, &rep)) {
        for (int mode = MEMPROF_CLI_JSON; mode <= MEMPROF_CLI_QUOTED_JSON; mode++) {
            sds js = sdsnew("{");
            js = mpJsonReport(js, &rep, count, NULL, mode);
            js = sdscat(js, "}");
            if (!jsonDocument(js, sdslen(js))) {
                fprintf(stderr, "fuzz: not JSON: %s\n", js);
                FUZZ_CHECK(0);
            }
            sdsfree(js);
        }
        if (output == MEMPROF_CLI_TEXT) mpPrintReport(&rep, NULL, count, NULL);

        /* Two nodes with this report, merged. */
        mpReport m;
        mpReportInit(&m);
        long long *slot_keys = zcalloc(sizeof(long long) * MP_SLOTS);
        long long *slot_bytes = zcalloc(sizeof(long long) * MP_SLOTS);
        mpMerge(&m, &rep, 0, slot_keys, slot_bytes);
        mpMerge(&m, &rep, 1, slot_keys, slot_bytes);
        mpMergeFinish(&m, slot_keys, slot_bytes);
        char *names[] = {"a:1", "b:2", NULL};
        sds js = sdsnew("{");
        js = mpJsonReport(js, &m, count, names, output ? output : MEMPROF_CLI_JSON);
        js = sdscat(js, "}");
        FUZZ_CHECK(jsonDocument(js, sdslen(js)));
        sdsfree(js);
        if (output == MEMPROF_CLI_TEXT) mpPrintReport(&m, &rep, count, names);
        zfree(slot_keys);
        zfree(slot_bytes);
        mpReportFree(&m);
    }
    mpReportFree(&rep);
    freeReplyObject(reply);
    return 0;
}
