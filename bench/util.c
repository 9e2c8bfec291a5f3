// SPDX-License-Identifier: MIT
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

long bench_proc_status_kib(pid_t pid, const char *field)
{
	char path[64], line[256];
	size_t len = strlen(field);
	long kib = -ENOENT;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, field, len) && line[len] == ':' &&
		    sscanf(line + len + 1, " %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

long bench_daemon_rss_kib(pid_t pid)
{
	return bench_proc_status_kib(pid, "VmRSS");
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

double bench_proc_cpu_s(pid_t pid)
{
	unsigned long long ut = 0, st = 0;
	char path[64], buf[1024], *p;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NAN;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return NAN;
	buf[n] = '\0';
	/* after "(comm)": state is field 3, utime 14, stime 15 */
	p = strrchr(buf, ')');
	if (!p ||
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
		return NAN;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

long bench_proc_ctxsw(pid_t pid)
{
	char path[64], line[256];
	long v, sum = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "voluntary_ctxt_switches: %ld", &v) == 1 ||
		    sscanf(line, "nonvoluntary_ctxt_switches: %ld", &v) == 1)
			sum += v;
	fclose(f);
	return sum;
}
