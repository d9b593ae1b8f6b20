/* container_of: from a member's address back to the object that embeds it, as the Linux
 * kernel spells it. Jobs handed to worker threads are embedded in the object they belong to
 * (a create, a caller), and their callbacks get back to it this way. */
#ifndef SHORTENER_CONTAINER_OF_H
#define SHORTENER_CONTAINER_OF_H

#include <stddef.h>

#define container_of(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

#endif
