/* libFuzzer driver for the kgs line protocol (lib/kgs_proto.c, linked alongside): each
 * side parses whatever the other might send, and what parses as TAKE formats back to the
 * very same line. */
#include "kgs_proto.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct kgs_request req;
    struct kgs_reply rep;
    char *line, buf[32];
    int len;

    /* Lines arrive NUL-terminated from sock_read_line, cut at KGS_LINE_MAX. */
    if (size >= KGS_LINE_MAX)
        size = KGS_LINE_MAX - 1;
    line = malloc(size + 1);
    if (!line)
        return 0;
    memcpy(line, data, size);
    line[size] = '\0';

    if (kgs_parse_request(line, &req) == 0 && req.op == KGS_OP_TAKE) {
        if (req.count < 1 || req.count > KGS_MAX_TAKE)
            __builtin_trap();
        len = kgs_format_take(buf, sizeof(buf), req.count);
        if (len < 2 || buf[len - 1] != '\n')
            __builtin_trap();
        buf[len - 1] = '\0';
        if (strcmp(buf, line) != 0)
            __builtin_trap();
    }
    if (kgs_parse_reply(line, &rep) == 0) {
        if (rep.kind == KGS_REPLY_KEYS && (rep.count < 1 || rep.count > KGS_MAX_TAKE))
            __builtin_trap();
        if (memchr(rep.error, '\0', sizeof(rep.error)) == NULL)
            __builtin_trap();
    }
    free(line);
    return 0;
}
