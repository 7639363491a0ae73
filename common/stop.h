/*
** common/stop.h — process shutdown on SIGINT/SIGTERM.
**
** mdw_stop_install() sets handlers; every stage's loop checks
** mdw_stop_requested() and may poll mdw_stop_fd() (readable once a stop was
** requested) to wake from a blocking wait.
*/
#ifndef MDW_STOP_H
#define MDW_STOP_H

int mdw_stop_install(void);
int mdw_stop_requested(void);
/* An fd that becomes readable when stop is requested (-1 before install). */
int mdw_stop_fd(void);

#endif
