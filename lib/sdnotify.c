/* sd_notify(3) for the Type=notify units in deploy/. */
#include "sdnotify.h"

#include <stdio.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "log.h"

void sdnotify_ready(const char *status)
{
    /* MAINPID too: the unit knows the pid anyway, but a wrapper script would hide it. */
    int rc = sd_notifyf(0, "READY=1\nSTATUS=%s\nMAINPID=%ld", status, (long)getpid());
    if (rc < 0)
        log_warn("cannot tell systemd we are ready: sd_notify: error %d", rc);
}

void sdnotify_stopping(void)
{
    sd_notify(0, "STOPPING=1\nSTATUS=stopping");
}
