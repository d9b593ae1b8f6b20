/* Creating links: one struct create per create request, from its arrival to its answer.
 *
 * A create is validated on the request thread, then parked (libmicrohttpd suspend) while two
 * other threads work on it: the admission thread counts it against the caller's rate limit
 * together with every other create queued meanwhile (admission.h), and a link writer stores
 * its links in a commit shared with other creates (linkwriter.h). The object embeds what each
 * of them needs (the caller with its admission job, one link job per link), their callbacks
 * get back to it with container_of, every change of stage happens in one function, and the
 * request owns it (http_request.state) and frees it when libmicrohttpd is done with the
 * request.
 *
 *   request thread      admission thread           writer thread          request thread
 *   validate, park  ->  COUNTING -> count   ->  WRITING -> commit  ->  WRITTEN: answer
 *                                    \-> COUNTED (refused, or the key to look at again):
 *                                        request thread decides, then WRITING or answer
 *
 * A create holds one or more links, so that a bulk create is the same object with more of
 * them rather than a second state machine. */
#ifndef SHORTENER_CREATE_H
#define SHORTENER_CREATE_H

#include <stdbool.h>

#include "http.h"

/* A bulk create: at most this many links, in a body of at most this many bytes. */
#define CREATE_BULK_MAX      1000
#define CREATE_BULK_MAX_BODY (1024 * 1024)

/* Handles POST /api/v1/urls (bulk false) and POST /api/v1/urls/bulk: called when the request
 * is complete, and again each time the parked request is resumed. */
enum http_step create_handle(struct http_request *r, bool bulk);

#endif
