/* libFuzzer driver for request.c: any bytes, read as a JSON body and as a form body, must
 * either parse into a consistent request or fail with -EINVAL, a printable sentence and
 * nothing left allocated. */
#include "request.c"

#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_err(const char *err)
{
    if (err[0] == '\0')
        __builtin_trap();
    for (const char *p = err; *p; p++)
        if (*p < 0x20 || *p > 0x7e)
            __builtin_trap();
}

static void run(enum body_type type, const char *body, size_t len)
{
    struct create_request req;
    char err[256];
    int64_t exp;
    int rc;

    err[0] = '\0';
    rc = request_parse_create(type, body, len, &req, err, sizeof(err));
    if (rc != 0) {
        if (rc != -EINVAL || req.url || req.alias || req.has_ttl || req.has_expires_at)
            __builtin_trap();
        check_err(err);
        return;
    }
    if (req.url && strlen(req.url) != req.url_len)
        __builtin_trap();
    if (req.has_ttl && (req.ttl <= 0 || req.ttl > TTL_MAX))
        __builtin_trap();
    if (req.has_ttl && req.has_expires_at)
        __builtin_trap();
    if (req.alias) {
        err[0] = '\0';
        rc = request_check_alias(req.alias, err, sizeof(err));
        if (rc == 0 && !request_is_key(req.alias, strlen(req.alias)))
            __builtin_trap();
        if (rc != 0)
            check_err(err);
    }
    err[0] = '\0';
    if (request_resolve_expiry(&req, 1795441637, 3600, &exp, err, sizeof(err)) == 0) {
        if (exp <= 1795441637)
            __builtin_trap();
    } else {
        check_err(err);
    }
    create_request_release(&req);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char ctype[128];
    size_t n = size < sizeof(ctype) - 1 ? size : sizeof(ctype) - 1;

    run(BODY_JSON, (const char *)data, size);
    run(BODY_FORM, (const char *)data, size);
    memcpy(ctype, data, n);
    ctype[n] = '\0';
    (void)request_body_type(ctype);
    (void)request_is_key((const char *)data, size);
    return 0;
}
