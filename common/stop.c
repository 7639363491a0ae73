#include "common/stop.h"

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "common/banned.h"

/*
** Set by a signal handler, read by every stage's thread: a lock-free atomic,
** which C11 allows in a handler; volatile sig_atomic_t is only for one thread.
*/
static atomic_int stop_flag;
static int stop_efd = -1;

static void on_signal(int sig)
{
    (void)sig;
    int saved = errno;
    atomic_store(&stop_flag, 1);
    if (stop_efd >= 0) {
        uint64_t one = 1;
        ssize_t w = write(stop_efd, &one, sizeof one);
        (void)w;
    }
    errno = saved;
}

int mdw_stop_install(void)
{
    if (stop_efd < 0)
        stop_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGINT, &sa, NULL) || sigaction(SIGTERM, &sa, NULL))
        return -errno;
    signal(SIGPIPE, SIG_IGN);
    return 0;
}

int mdw_stop_requested(void)
{
    return atomic_load_explicit(&stop_flag, memory_order_relaxed) != 0;
}

int mdw_stop_fd(void)
{
    return stop_efd;
}
