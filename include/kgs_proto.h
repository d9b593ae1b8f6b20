/* The kgs wire protocol: newline-terminated ASCII over a Unix stream socket.
 *
 *   client: "TAKE <n>\n"   (1 <= n <= KGS_MAX_TAKE)
 *   server: "KEYS <n>\n" followed by exactly n lines "<7 base62 chars>\n"
 *        or "ERR <code> <text>\n" where code is "unavailable", "bad_request" or "forbidden"
 *   client: "PING\n"        server: "PONG\n"
 *
 * A connection carries any number of request/reply pairs in order. Every key in a KEYS reply
 * was durably marked taken before it was sent and is never sent again, by any kgs. */
#ifndef SHORTENER_KGS_PROTO_H
#define SHORTENER_KGS_PROTO_H

#include <stddef.h>

#include "keyspace.h"

#define KGS_LINE_MAX 256

enum kgs_op { KGS_OP_TAKE, KGS_OP_PING };

struct kgs_request {
    enum kgs_op op;
    unsigned count; /* for KGS_OP_TAKE */
};

enum kgs_reply_kind { KGS_REPLY_KEYS, KGS_REPLY_PONG, KGS_REPLY_ERR };

struct kgs_reply {
    enum kgs_reply_kind kind;
    unsigned count;  /* for KGS_REPLY_KEYS */
    char error[128]; /* for KGS_REPLY_ERR: "code text" */
};

/* Parses one request line (without its newline). Returns 0 or -EINVAL. */
int kgs_parse_request(const char *line, struct kgs_request *req);

/* Parses one reply header line (without its newline). Returns 0 or -EINVAL. */
int kgs_parse_reply(const char *line, struct kgs_reply *rep);

/* Formats "TAKE <n>\n" into buf. Returns the length or -EINVAL / -ENOSPC. */
int kgs_format_take(char *buf, size_t cap, unsigned n);

#endif
