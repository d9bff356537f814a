/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * replay.c - runs every file of the given corpus directories (or files)
 * through the vent model, without libFuzzer. Part of the normal suite: the
 * committed corpus, including every input that once found a bug, must stay
 * clean.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vent-model.h"

static int run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		perror(path);
		return -1;
	}
	static unsigned char buf[1 << 16];
	size_t n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	fprintf(stderr, "replay %s (%zu bytes)\n", path, n);
	vm_run_buffer(buf, n, NULL);
	return 0;
}


static int run_path(const char *path, int *count)
{
	struct stat st;
	if (stat(path, &st) < 0) {
		perror(path);
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		(*count)++;
		return run_file(path);
	}
	struct dirent **list;
	int n = scandir(path, &list, NULL, alphasort);
	if (n < 0) {
		perror(path);
		return -1;
	}
	int rc = 0;
	for (int i = 0; i < n; i++) {
		if (list[i]->d_name[0] != '.') {
			char full[4096];
			snprintf(full, sizeof(full), "%s/%s", path, list[i]->d_name);
			if (run_path(full, count) < 0)
				rc = -1;
		}
		free(list[i]);
	}
	free(list);
	return rc;
}

int main(int argc, char **argv)
{
	int count = 0, rc = 0;
	alarm(240);
	for (int i = 1; i < argc; i++)
		if (run_path(argv[i], &count) < 0)
			rc = 1;
	printf("%d inputs replayed clean\n", count);
	if (count == 0)
		return 1;
	return rc;
}
