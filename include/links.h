/* The owner's side of existing links (API.md: read, list, edit, delete), each for the API key
 * that made the link (any link for an admin key; the list is always the caller's own). A
 * change reaches every server's caches: this one's at once, the others' through Redis. */
#ifndef SHORTENER_LINKS_H
#define SHORTENER_LINKS_H

#include "http.h"

/* GET /api/v1/urls/{key} */
enum http_step links_read(struct http_request *r, const char *key);

/* GET /api/v1/urls: ?limit=, ?cursor=, ?tag=, ?q=; newest first, by keyset. */
enum http_step links_list(struct http_request *r);

/* PATCH /api/v1/urls/{key}: a new password is hashed off the request thread, so this parks
 * the request and is called again when it is resumed. */
enum http_step links_edit(struct http_request *r, const char *key);

/* DELETE /api/v1/urls/{key} */
enum http_step links_delete(struct http_request *r, const char *key);

#endif
