/* libFuzzer driver for the JSON bodies request.c reads besides a single create (fuzz_request):
 * a PATCH body, the items of a bulk create and any object in edit mode. Each must parse into a
 * consistent request or fail with -EINVAL, a printable sentence and nothing left allocated. */
#include "request.c"

#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_err(int rc, const struct create_request *req, const char *err)
{
    if (rc != -EINVAL || req->url || req->alias || req->password)
        __builtin_trap();
    if (err[0] == '\0')
        __builtin_trap();
    for (const char *p = err; *p; p++)
        if (*p < 0x20 || *p > 0x7e)
            __builtin_trap();
}

static void check_ok(const struct create_request *req, bool edit)
{
    /* An empty url parses; urlcheck refuses it later (test_bad_input). */
    if (req->url && strlen(req->url) != req->url_len)
        __builtin_trap();
    if (edit && req->alias)
        __builtin_trap(); /* a link's key never changes */
    if (req->has_ttl && (req->ttl <= 0 || req->ttl > TTL_MAX))
        __builtin_trap();
    if (req->has_redirect_status && req->redirect_status != 301 && req->redirect_status != 302 &&
        req->redirect_status != 307 && req->redirect_status != 308)
        __builtin_trap();
    if (req->has_max_visits && req->max_visits <= 0)
        __builtin_trap();
    if (req->password && (strlen(req->password) != req->password_len))
        __builtin_trap();
    if (req->ntags < 0 || req->ntags > REQUEST_TAGS_MAX)
        __builtin_trap();
    for (int i = 0; i < req->ntags; i++) {
        if (!request_is_tag(req->tags[i], strlen(req->tags[i])))
            __builtin_trap();
        for (int j = 0; j < i; j++)
            if (strcmp(req->tags[i], req->tags[j]) == 0)
                __builtin_trap(); /* distinct */
    }
}

static void one_object(const json_t *obj, enum request_mode mode)
{
    struct create_request req;
    char err[256] = "";
    int rc = request_parse_object(obj, mode, &req, err, sizeof(err));

    if (rc == -ENOMEM)
        return;
    if (rc != 0) {
        check_err(rc, &req, err);
        return;
    }
    check_ok(&req, mode == REQUEST_EDIT);
    create_request_release(&req);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct create_request req;
    char err[256] = "";
    json_error_t jerr;
    json_t *doc;
    int rc;

    rc = request_parse_edit((const char *)data, size, &req, err, sizeof(err));
    if (rc == 0) {
        check_ok(&req, true);
        create_request_release(&req);
    } else if (rc != -ENOMEM) {
        check_err(rc, &req, err);
    }
    doc = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &jerr);
    if (!doc)
        return 0;
    if (json_is_array(doc)) {
        for (size_t i = 0; i < json_array_size(doc) && i < 64; i++)
            one_object(json_array_get(doc, i), REQUEST_CREATE);
    } else {
        one_object(doc, REQUEST_CREATE);
        one_object(doc, REQUEST_EDIT);
    }
    json_decref(doc);
    return 0;
}
