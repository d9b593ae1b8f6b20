/* The HTTP API of API.md: routing and one handler per endpoint. */
#ifndef SHORTENER_API_H
#define SHORTENER_API_H

struct http_request;

/* Answers one complete request (its body, if any, collected). Returns 0 or -errno when no
 * response could be queued. */
int api_handle(struct http_request *r);

#endif
