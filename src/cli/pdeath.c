/* pdeath.c: --die-with-parent.  A volley started by a job runner (a Dask
 * worker, volley-dask's task) must not outlive it: the runner's death means
 * the work is retried elsewhere, and an orphan would fetch the same URLs a
 * second time.  Linux only (opts.c refuses the option elsewhere). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include "cli.h"

int cli_die_with_parent(pid_t parent, char *err, size_t errlen)
{
#ifdef __linux__
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0) {
        snprintf(err, errlen, "--die-with-parent: prctl(PR_SET_PDEATHSIG): %s", strerror(errno));
        return -1;
    }
    /* The parent may have died before the prctl: then no signal will come,
     * and we have been re-parented (to init or a subreaper). */
    if (getppid() != parent) {
        snprintf(err, errlen, "--die-with-parent: the parent (pid %ld) is already gone",
                 (long)parent);
        return -1;
    }
    return 0;
#else
    (void)parent;
    snprintf(err, errlen, "--die-with-parent needs Linux (prctl PR_SET_PDEATHSIG)");
    return -1;
#endif
}
