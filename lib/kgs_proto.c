/* Parsing and formatting of kgs protocol lines; strict, since either side may be buggy. */
#include "kgs_proto.h"

#include "numparse.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* Parses a decimal count in [1, KGS_MAX_TAKE] with no sign, spaces or leading zeros: a line
 * has one spelling, so what parses formats back to the same line. */
static int parse_count(const char *s, unsigned *out)
{
    long long v;
    if (numparse_ll(s, 1, KGS_MAX_TAKE, NUMPARSE_CANONICAL, &v) < 0)
        return -EINVAL;
    *out = (unsigned)v;
    return 0;
}

int kgs_parse_request(const char *line, struct kgs_request *req)
{
    if (strcmp(line, "PING") == 0) {
        req->op = KGS_OP_PING;
        req->count = 0;
        return 0;
    }
    if (strncmp(line, "TAKE ", 5) == 0) {
        req->op = KGS_OP_TAKE;
        return parse_count(line + 5, &req->count);
    }
    return -EINVAL;
}

int kgs_parse_reply(const char *line, struct kgs_reply *rep)
{
    rep->count = 0;
    rep->error[0] = '\0';
    if (strcmp(line, "PONG") == 0) {
        rep->kind = KGS_REPLY_PONG;
        return 0;
    }
    if (strncmp(line, "KEYS ", 5) == 0) {
        rep->kind = KGS_REPLY_KEYS;
        return parse_count(line + 5, &rep->count);
    }
    if (strncmp(line, "ERR ", 4) == 0 && line[4] != '\0') {
        rep->kind = KGS_REPLY_ERR;
        snprintf(rep->error, sizeof(rep->error), "%s", line + 4);
        return 0;
    }
    return -EINVAL;
}

int kgs_format_take(char *buf, size_t cap, unsigned n)
{
    int len;
    if (n < 1 || n > KGS_MAX_TAKE)
        return -EINVAL;
    len = snprintf(buf, cap, "TAKE %u\n", n);
    if (len < 0 || (size_t)len >= cap)
        return -ENOSPC;
    return len;
}
