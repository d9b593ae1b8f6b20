/* The HTTP API of API.md: routing and one handler per endpoint. */
#ifndef SHORTENER_API_H
#define SHORTENER_API_H

#include "http.h"

/* Answers one complete request (its body, if any, collected), or parks it to answer later;
 * called again each time a parked request is resumed. */
enum http_step api_handle(struct http_request *r);

/* Called when a request's headers have arrived, before any of its body is read: refuses
 * (401) a request that needs an API key and carries none that could be one. HTTP_GO_ON when
 * the request may send its body. */
enum http_step api_check_early(struct http_request *r);

/* Answers a request whose body is over its limit: 413, with the CORS fields of the API, and
 * for a create, bulk or edit after authenticating the caller (401 first), with the RateLimit
 * fields of its key (the refusal costs none of it). */
enum http_step api_refuse_too_large(struct http_request *r);

#endif
