/* cores.c: how many cores -t 0 means. */
#include <sched.h>
#include <unistd.h>

#include "cli.h"

/* The CPUs this process may run on (its affinity mask: taskset, a cgroup's
 * cpuset), else the online ones; at least 1. */
int cli_cores(void)
{
    int n = 0;
#ifdef __linux__
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof(set), &set) == 0)
        n = CPU_COUNT(&set);
#endif
    if (n <= 0) {
        long on = sysconf(_SC_NPROCESSORS_ONLN);
        n = on > 0 ? (int)on : 1;
    }
    return n;
}
