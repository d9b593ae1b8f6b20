/* Telling systemd (Type=notify units) how a program is doing, through sd_notify(3). Without
 * NOTIFY_SOCKET in the environment (not started by systemd) every call does nothing. */
#ifndef SHORTENER_SDNOTIFY_H
#define SHORTENER_SDNOTIFY_H

/* READY=1 with a status line: call once the program actually serves. */
void sdnotify_ready(const char *status);

/* STOPPING=1: call when a stop signal arrived, before the (possibly slow) shutdown. */
void sdnotify_stopping(void);

#endif
