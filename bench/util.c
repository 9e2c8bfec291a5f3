// SPDX-License-Identifier: MIT
#include <dirent.h>
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

long bench_daemon_rss_kib(pid_t pid)
{
	char path[64], line[256];
	long kib = -ENOENT;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

int bench_pin(pid_t pid, int cpu)
{
	char path[64];
	struct dirent *d;
	cpu_set_t set;
	int ret = 0;
	DIR *dir;

	CPU_ZERO(&set);
	if (cpu >= 0)
		CPU_SET(cpu, &set);
	else
		for (long i = 0; i < sysconf(_SC_NPROCESSORS_CONF) && i < CPU_SETSIZE; i++)
			CPU_SET(i, &set);
	snprintf(path, sizeof(path), "/proc/%d/task", pid ? (int)pid : (int)getpid());
	dir = opendir(path);
	if (!dir)
		return -errno;
	while ((d = readdir(dir)))
		if (d->d_name[0] != '.' &&
		    sched_setaffinity((pid_t)atoi(d->d_name), sizeof(set), &set) < 0 && !ret)
			ret = -errno;
	closedir(dir);
	return ret;
}

pid_t bench_daemon_pid(struct um_client *c)
{
	struct um_status st = UM_STATUS_INIT;
	int ret = um_status(c, &st);

	return ret < 0 ? ret : st.daemon_pid;
}
