#include "common/stop.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "common/banned.h"

static volatile sig_atomic_t stop_flag;
static int stop_efd = -1;

static void on_signal(int sig)
{
    (void)sig;
    int saved = errno;
    stop_flag = 1;
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
    return stop_flag != 0;
}

int mdw_stop_fd(void)
{
    return stop_efd;
}
