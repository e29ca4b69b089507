/*
 * Copyright (c) Valkey Contributors
 * All rights reserved.
 * SPDX-License-Identifier: BSD-3-Clause
 */

/* Fuzz target: valkey-cli's JSON string of a key name (mpJsonStr()), on
 * arbitrary bytes.
 *
 * With --json the output must be one JSON string in valid UTF-8 whose code
 * points are the name's valid UTF-8 sequences as they are, and each other
 * byte as the code point of its value. With --quoted-json it must be ASCII,
 * and taking each code point as one byte must give back the exact name.
 * The expected code points come from a UTF-8 reading of our own here. */

#include "fuzz_cli.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    return 0;
}

/* The code point of the valid UTF-8 sequence at p, its length in *n; 0 in
 * *n when the byte at p does not start one. */
static unsigned utf8At(const uint8_t *p, size_t len, size_t *n) {
    jsonCursor c = {p, p + len, 0};
    unsigned cp;
    *n = 0;
    if (!jsonUtf8(&c, &cp)) return 0;
    *n = (size_t)(c.p - p);
    return cp;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    unsigned *cps = malloc(sizeof(unsigned) * (size + 1));
    FUZZ_CHECK(cps);
    for (int mode = MEMPROF_CLI_JSON; mode <= MEMPROF_CLI_QUOTED_JSON; mode++) {
        sds js = mpJsonStr(sdsempty(), (const char *)data, size, mode);
        jsonCursor c = {(const unsigned char *)js, (const unsigned char *)js + sdslen(js), 0};
        size_t n = 0;
        FUZZ_CHECK(jsonString(&c, cps, size + 1, &n));
        FUZZ_CHECK(c.p == c.end);
        FUZZ_CHECK(n <= size);
        if (mode == MEMPROF_CLI_QUOTED_JSON) {
            for (size_t i = 0; i < sdslen(js); i++) FUZZ_CHECK(js[i] >= 0x20 && js[i] < 0x7f);
            FUZZ_CHECK(n == size);
            for (size_t i = 0; i < size; i++) FUZZ_CHECK(cps[i] == data[i]);
        } else {
            size_t k = 0;
            for (size_t i = 0; i < size; k++) {
                size_t len;
                unsigned cp = utf8At(data + i, size - i, &len);
                FUZZ_CHECK(k < n);
                if (len) {
                    FUZZ_CHECK(cps[k] == cp);
                    i += len;
                } else {
                    FUZZ_CHECK(cps[k] == data[i]);
                    i++;
                }
            }
            FUZZ_CHECK(k == n);
        }
        sdsfree(js);
    }
    free(cps);
    return 0;
}
