/* The create-link request body, from JSON or an HTML-style form, turned into one struct with
 * every field type-checked, so the handler deals only with meaning (is the URL acceptable,
 * is the alias free). Error sentences go to clients verbatim inside problem+json, so they
 * never echo unchecked input and are always printable ASCII. */
#include "request.h"

#include "linkkey.h"
#include "numparse.h"
#include "timefmt.h"

#include <curl/curl.h>
#include <sodium.h>
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Julian years, so that any reasonable reckoning of "10 years" in seconds is accepted. */
#define YEAR_SECONDS    31557600LL
#define TTL_MAX         (10 * YEAR_SECONDS)
#define EXPIRES_MAX_OUT (100 * YEAR_SECONDS)

static const char *const field_names[FIELD_COUNT] = {
    [FIELD_URL] = "url",
    [FIELD_ALIAS] = "alias",
    [FIELD_EXPIRES_AT] = "expires_at",
    [FIELD_TTL] = "ttl",
    [FIELD_REDIRECT_STATUS] = "redirect_status",
    [FIELD_MAX_VISITS] = "max_visits",
    [FIELD_VALID_FROM] = "valid_from",
    [FIELD_PASSWORD] = "password",
    [FIELD_TAGS] = "tags",
    [FIELD_PUBLIC_STATS] = "public_stats",
};

/* The largest max_visits: past any count a link could reach, and exact in a double (the
 * Lua that counts visits in Redis works in doubles). */
#define MAX_VISITS_MAX 1000000000000000LL

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (!err || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

enum body_type request_body_type(const char *content_type)
{
    static const struct {
        const char *name;
        enum body_type type;
    } types[] = {{"application/json", BODY_JSON}, {"application/x-www-form-urlencoded", BODY_FORM}};
    const char *p = content_type;
    size_t n;

    if (!p)
        return BODY_UNSUPPORTED;
    p += strspn(p, " \t");
    n = strcspn(p, " \t;");
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        if (strlen(types[i].name) == n && strncasecmp(p, types[i].name, n) == 0) {
            p += n;
            p += strspn(p, " \t");
            /* Parameters (charset and the like) change nothing for us. */
            return *p == '\0' || *p == ';' ? types[i].type : BODY_UNSUPPORTED;
        }
    }
    return BODY_UNSUPPORTED;
}

void create_request_release(struct create_request *req)
{
    free(req->url);
    free(req->alias);
    if (req->password)
        sodium_memzero(req->password, req->password_len);
    free(req->password);
    memset(req, 0, sizeof(*req));
}

static int dup_value(const char *v, size_t len, char **out)
{
    char *copy = malloc(len + 1);

    if (!copy)
        return -ENOMEM;
    memcpy(copy, v, len);
    copy[len] = '\0';
    *out = copy;
    return 0;
}

/* How many characters (code points) a UTF-8 string has; jansson and the form decoder hand
 * over valid UTF-8 or bytes, and a stray byte counts as one. */
static size_t utf8_chars(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += ((unsigned char)s[i] & 0xc0) != 0x80;
    return n;
}

bool request_is_tag(const char *s, size_t len)
{
    return linkkey_is_tag(s, len);
}

/* Adds one tag; shared by both body types. */
static int add_tag(struct create_request *out, const char *v, size_t len, char *err, size_t errlen)
{
    if (!linkkey_is_tag(v, len)) {
        set_err(err, errlen, "each tag must be 1 to %d of letters, digits, '_' and '-'",
                REQUEST_TAG_MAX_LEN);
        return -EINVAL;
    }
    for (int i = 0; i < out->ntags; i++)
        if (strlen(out->tags[i]) == len && memcmp(out->tags[i], v, len) == 0) {
            set_err(err, errlen, "tags must be distinct");
            return -EINVAL;
        }
    if (out->ntags >= REQUEST_TAGS_MAX) {
        set_err(err, errlen, "at most %d tags", REQUEST_TAGS_MAX);
        return -EINVAL;
    }
    memcpy(out->tags[out->ntags], v, len);
    out->tags[out->ntags][len] = '\0';
    out->ntags++;
    out->has_tags = true;
    return 0;
}

/* Stores one field given as text (every form field, and JSON strings); shared by both body
 * types so that they agree on meaning. */
static int set_field(struct create_request *out, enum request_field f, const char *v, size_t len,
                     char *err, size_t errlen)
{
    int rc = 0;

    if (memchr(v, '\0', len)) {
        set_err(err, errlen, "%s contains a NUL character", field_names[f]);
        return -EINVAL;
    }
    switch (f) {
    case FIELD_URL:
        rc = dup_value(v, len, &out->url);
        out->url_len = len;
        break;
    case FIELD_ALIAS:
        rc = dup_value(v, len, &out->alias);
        break;
    case FIELD_EXPIRES_AT:
    case FIELD_VALID_FROM: {
        int64_t *t = f == FIELD_EXPIRES_AT ? &out->expires_at : &out->valid_from;
        if (timefmt_parse(v, len, t) < 0) {
            set_err(err, errlen, "%s is not an RFC 3339 date-time such as 2030-01-31T12:00:00Z",
                    field_names[f]);
            return -EINVAL;
        }
        *(f == FIELD_EXPIRES_AT ? &out->has_expires_at : &out->has_valid_from) = true;
        break;
    }
    case FIELD_PASSWORD: {
        size_t chars = utf8_chars(v, len);
        if (chars < REQUEST_PASSWORD_MIN || chars > REQUEST_PASSWORD_MAX) {
            set_err(err, errlen, "password must be %d to %d characters long", REQUEST_PASSWORD_MIN,
                    REQUEST_PASSWORD_MAX);
            return -EINVAL;
        }
        rc = dup_value(v, len, &out->password);
        out->password_len = len;
        break;
    }
    case FIELD_TAGS:
        return add_tag(out, v, len, err, errlen);
    case FIELD_TTL:
    case FIELD_REDIRECT_STATUS:
    case FIELD_MAX_VISITS:
    case FIELD_PUBLIC_STATS:
    case FIELD_COUNT:
        return -EINVAL;
    }
    if (rc < 0)
        set_err(err, errlen, "out of memory");
    return rc;
}

static int set_ttl(struct create_request *out, long long ttl, char *err, size_t errlen)
{
    if (ttl <= 0) {
        set_err(err, errlen, "ttl must be a positive whole number of seconds");
        return -EINVAL;
    }
    if (ttl > TTL_MAX) {
        set_err(err, errlen, "ttl must be at most %lld seconds (10 years)", TTL_MAX);
        return -EINVAL;
    }
    out->ttl = ttl;
    out->has_ttl = true;
    return 0;
}

/* The whole-number fields other than ttl; ok false when the value was not a whole number. */
static int set_number(struct create_request *out, enum request_field f, bool ok, long long v,
                      char *err, size_t errlen)
{
    if (f == FIELD_TTL)
        return set_ttl(out, ok ? v : -1, err, errlen);
    if (f == FIELD_REDIRECT_STATUS) {
        if (!ok || (v != 301 && v != 302 && v != 307 && v != 308)) {
            set_err(err, errlen, "redirect_status must be 301, 302, 307 or 308");
            return -EINVAL;
        }
        out->redirect_status = (int)v;
        out->has_redirect_status = true;
        return 0;
    }
    if (!ok || v < 1 || v > MAX_VISITS_MAX) {
        set_err(err, errlen, "max_visits must be a whole number from 1 to %lld", MAX_VISITS_MAX);
        return -EINVAL;
    }
    out->max_visits = v;
    out->has_max_visits = true;
    return 0;
}

static bool is_number_field(enum request_field f)
{
    return f == FIELD_TTL || f == FIELD_REDIRECT_STATUS || f == FIELD_MAX_VISITS;
}

/* jansson's messages may quote the input; keep only what is safe to send back. */
static void make_printable(char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
            *s = '?';
}

static int json_field(struct create_request *out, enum request_field f, json_t *v, char *err,
                      size_t errlen)
{
    if (is_number_field(f)) {
        /* 1.5, "10" and true are not whole numbers, whatever they might be taken for. */
        bool ok = json_is_integer(v);
        return set_number(out, f, ok, ok ? json_integer_value(v) : 0, err, errlen);
    }
    if (f == FIELD_PUBLIC_STATS) {
        if (!json_is_boolean(v)) {
            set_err(err, errlen, "public_stats must be true or false");
            return -EINVAL;
        }
        out->public_stats = json_is_true(v);
        out->has_public_stats = true;
        return 0;
    }
    if (f == FIELD_TAGS) {
        size_t i;
        json_t *tag;
        if (!json_is_array(v)) {
            set_err(err, errlen, "tags must be an array of strings");
            return -EINVAL;
        }
        out->has_tags = true;
        json_array_foreach(v, i, tag)
        {
            int rc;
            if (!json_is_string(tag)) {
                set_err(err, errlen, "tags must be an array of strings");
                return -EINVAL;
            }
            rc = add_tag(out, json_string_value(tag), json_string_length(tag), err, errlen);
            if (rc < 0)
                return rc;
        }
        return 0;
    }
    if (!json_is_string(v)) {
        set_err(err, errlen, "%s must be a string", field_names[f]);
        return -EINVAL;
    }
    return set_field(out, f, json_string_value(v), json_string_length(v), err, errlen);
}

int request_parse_object(const struct json_t *obj, enum request_mode mode,
                         struct create_request *out, char *err, size_t errlen)
{
    json_t *root = (json_t *)obj;
    const char *name;
    json_t *v;
    int rc;

    memset(out, 0, sizeof(*out));
    if (!json_is_object(root)) {
        set_err(err, errlen, "the body must be a JSON object");
        return -EINVAL;
    }
    if (mode == REQUEST_EDIT) {
        if (json_object_size(root) == 0) {
            set_err(err, errlen, "name at least one field to change");
            return -EINVAL;
        }
        json_object_foreach(root, name, v)
        {
            int f = 0;
            while (f < FIELD_COUNT && strcmp(name, field_names[f]) != 0)
                f++;
            if (f == FIELD_ALIAS || strcmp(name, "key") == 0) {
                set_err(err, errlen, "the key of a link never changes");
                return -EINVAL;
            }
            if (f == FIELD_COUNT) {
                set_err(err, errlen, "a link has no field that can be changed by that name");
                return -EINVAL;
            }
        }
    }
    for (int f = 0; f < FIELD_COUNT; f++) {
        v = json_object_get(root, field_names[f]);
        if (!v)
            continue;
        if (json_is_null(v)) {
            out->nulls |= 1u << f;
            continue;
        }
        rc = json_field(out, (enum request_field)f, v, err, errlen);
        if (rc < 0) {
            create_request_release(out);
            return rc;
        }
    }
    return 0;
}

static int parse_json(const char *body, size_t len, enum request_mode mode,
                      struct create_request *out, char *err, size_t errlen)
{
    json_error_t jerr;
    json_t *root;
    int rc;

    root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        set_err(err, errlen, "malformed JSON at line %d, column %d: %s", jerr.line, jerr.column,
                jerr.text);
        if (err && errlen > 0)
            make_printable(err);
        return -EINVAL;
    }
    rc = request_parse_object((struct json_t *)root, mode, out, err, errlen);
    json_decref(root);
    return rc;
}

static bool is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* Decodes one form name or value: '+' is a space, %XX a byte. The caller has checked that
 * every '%' starts a valid escape. *out is malloc'd. */
static int form_decode(const char *s, size_t len, char **out, size_t *out_len)
{
    char *plus = NULL, *dec = NULL;
    int dlen = 0, rc = -ENOMEM;

    if (dup_value(s, len, &plus) < 0)
        goto out;
    for (size_t i = 0; i < len; i++)
        if (plus[i] == '+')
            plus[i] = ' ';
    dec = curl_easy_unescape(NULL, plus, (int)len, &dlen);
    if (!dec || dlen < 0)
        goto out;
    rc = dup_value(dec, (size_t)dlen, out);
    if (rc == 0)
        *out_len = (size_t)dlen;
out:
    curl_free(dec);
    free(plus);
    return rc;
}

/* A form number is plain decimal digits; anything else reads as not a number, and ttls past
 * TTL_MAX read as TTL_MAX + 1, so that set_ttl() names the bound rather than calling them
 * malformed. */
static int form_number(struct create_request *out, enum request_field f, const char *v, size_t len,
                       char *err, size_t errlen)
{
    long long n;
    int rc = numparse_ll_n(v, len, 0, f == FIELD_TTL ? TTL_MAX : MAX_VISITS_MAX, 0, &n);

    if (rc == -ERANGE && f == FIELD_TTL)
        return set_ttl(out, TTL_MAX + 1, err, errlen);
    return set_number(out, f, rc == 0, rc == 0 ? n : 0, err, errlen);
}

static int form_bool(struct create_request *out, const char *v, size_t len, char *err,
                     size_t errlen)
{
    static const char *const yes[] = {"true", "1", "on", "yes"}, *const no[] = {"false", "0", "off",
                                                                                "no"};
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (strlen(yes[i]) == len && strncasecmp(v, yes[i], len) == 0) {
            out->public_stats = out->has_public_stats = true;
            return 0;
        }
        if (strlen(no[i]) == len && strncasecmp(v, no[i], len) == 0) {
            out->public_stats = false;
            out->has_public_stats = true;
            return 0;
        }
    }
    set_err(err, errlen, "public_stats must be true or false");
    return -EINVAL;
}

static int parse_form(const char *body, size_t len, struct create_request *out, char *err,
                      size_t errlen)
{
    bool seen[FIELD_COUNT] = {false};
    char *name = NULL, *value = NULL;
    size_t pos = 0;
    int rc = -EINVAL;

    for (size_t i = 0; i < len; i++) {
        if (body[i] == '%' && (len - i < 3 || !is_hex(body[i + 1]) || !is_hex(body[i + 2]))) {
            set_err(err, errlen, "the form body has a malformed %%-escape");
            goto out;
        }
    }
    while (pos < len) {
        const char *seg = body + pos, *amp = memchr(seg, '&', len - pos), *eq;
        size_t seg_len = amp ? (size_t)(amp - seg) : len - pos, raw_name_len, name_len, value_len;
        int f;

        pos += seg_len + 1;
        if (seg_len == 0)
            continue; /* "a=1&&b=2" and a trailing '&' are harmless */
        eq = memchr(seg, '=', seg_len);
        raw_name_len = eq ? (size_t)(eq - seg) : seg_len;
        free(name);
        name = NULL;
        if (form_decode(seg, raw_name_len, &name, &name_len) < 0) {
            rc = -ENOMEM;
            set_err(err, errlen, "out of memory");
            goto out;
        }
        for (f = 0; f < FIELD_COUNT; f++)
            if (strlen(field_names[f]) == name_len && memcmp(name, field_names[f], name_len) == 0)
                break;
        if (f == FIELD_COUNT)
            continue; /* unknown fields are ignored, as in JSON */
        /* A form gives several tags as several tags fields, as a multiple select sends them. */
        if (seen[f] && f != FIELD_TAGS) {
            set_err(err, errlen, "the field %s is given more than once", field_names[f]);
            rc = -EINVAL;
            goto out;
        }
        seen[f] = true;
        free(value);
        value = NULL;
        /* A name without '=' has an empty value, as browsers read it. */
        if (form_decode(eq ? eq + 1 : seg + seg_len, eq ? seg_len - raw_name_len - 1 : 0, &value,
                        &value_len) < 0) {
            rc = -ENOMEM;
            set_err(err, errlen, "out of memory");
            goto out;
        }
        if (is_number_field((enum request_field)f))
            rc = form_number(out, (enum request_field)f, value, value_len, err, errlen);
        else if (f == FIELD_PUBLIC_STATS)
            rc = form_bool(out, value, value_len, err, errlen);
        else
            rc = set_field(out, (enum request_field)f, value, value_len, err, errlen);
        if (value && out->password != value)
            sodium_memzero(value, value_len);
        if (rc < 0)
            goto out;
    }
    rc = 0;
out:
    free(name);
    free(value);
    return rc;
}

static int check_combination(const struct create_request *req, char *err, size_t errlen)
{
    if (req->has_expires_at && req->has_ttl) {
        set_err(err, errlen, "expires_at and ttl are exclusive");
        return -EINVAL;
    }
    return 0;
}

int request_parse_create(enum body_type type, const char *body, size_t len,
                         struct create_request *out, char *err, size_t errlen)
{
    int rc = -EINVAL;

    memset(out, 0, sizeof(*out));
    if (!body && len > 0) {
        set_err(err, errlen, "the body is missing");
        goto out;
    }
    if (!body)
        body = "";
    if (len > REQUEST_MAX_BODY) {
        set_err(err, errlen, "the body is over %d bytes", REQUEST_MAX_BODY);
        goto out;
    }
    switch (type) {
    case BODY_JSON:
        rc = parse_json(body, len, REQUEST_CREATE, out, err, errlen);
        break;
    case BODY_FORM:
        rc = parse_form(body, len, out, err, errlen);
        break;
    case BODY_UNSUPPORTED:
        set_err(err, errlen, "the body is neither JSON nor a form");
        break;
    }
    if (rc == 0)
        rc = check_combination(out, err, errlen);
out:
    if (rc < 0)
        create_request_release(out);
    return rc;
}

int request_parse_edit(const char *body, size_t len, struct create_request *out, char *err,
                       size_t errlen)
{
    int rc;

    memset(out, 0, sizeof(*out));
    rc = parse_json(body ? body : "", body ? len : 0, REQUEST_EDIT, out, err, errlen);
    if (rc == 0)
        rc = check_combination(out, err, errlen);
    if (rc == 0 && (out->nulls & (1u << FIELD_URL))) {
        set_err(err, errlen, "url cannot be removed");
        rc = -EINVAL;
    }
    if (rc < 0)
        create_request_release(out);
    return rc;
}

int request_check_alias(const char *alias, char *err, size_t errlen)
{
    size_t len;

    if (!alias) {
        set_err(err, errlen, "the alias is missing");
        return -EINVAL;
    }
    len = strnlen(alias, ALIAS_MAX_LEN + 1);
    switch (linkkey_check_alias(alias, len)) {
    case LINKKEY_OK:
        return 0;
    case LINKKEY_BAD_LENGTH:
        set_err(err, errlen, "the alias must be %d to %d characters long", ALIAS_MIN_LEN,
                ALIAS_MAX_LEN);
        return -EINVAL;
    case LINKKEY_BAD_CHARS:
        set_err(err, errlen, "the alias may contain only letters, digits, '_' and '-'");
        return -EINVAL;
    case LINKKEY_RESERVED:
        /* Safe to quote: it has passed the character check. */
        set_err(err, errlen, "the alias '%s' is reserved", alias);
        return -EINVAL;
    }
    return -EINVAL;
}

int request_resolve_expiry(const struct create_request *req, int64_t now, int64_t default_ttl,
                           int64_t *expires_at, char *err, size_t errlen)
{
    if (req->has_expires_at) {
        if (req->expires_at <= now) {
            set_err(err, errlen, "expiry is in the past");
            return -EINVAL;
        }
        if (req->expires_at - now > EXPIRES_MAX_OUT) {
            set_err(err, errlen, "expires_at is more than 100 years away");
            return -EINVAL;
        }
        *expires_at = req->expires_at;
        return 0;
    }
    if (req->has_ttl) {
        /* request_parse_create bounds ttl; a hand-built request might not. */
        if (req->ttl <= 0 || req->ttl > TTL_MAX) {
            set_err(err, errlen, "ttl must be from 1 to %lld seconds", TTL_MAX);
            return -EINVAL;
        }
        *expires_at = now + req->ttl;
        return 0;
    }
    /* DEFAULT_TTL is bounded by the config table; a negative one means no expiry too. */
    *expires_at = default_ttl > 0 ? now + default_ttl : 0;
    return 0;
}

bool request_is_key(const char *s, size_t len)
{
    return linkkey_is_key(s, len);
}
