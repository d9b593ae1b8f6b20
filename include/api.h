/* The HTTP API of API.md: routing and one handler per endpoint. */
#ifndef SHORTENER_API_H
#define SHORTENER_API_H

#include "http.h"

/* Answers one complete request (its body, if any, collected), or parks it to answer later;
 * called again each time a parked request is resumed. */
enum http_step api_handle(struct http_request *r);

#endif
