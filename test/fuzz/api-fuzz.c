/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * api-fuzz.c - libFuzzer target: the input is a program for the vent model
 * (vent-model.c). Build with -Dfuzzer=true and CC=clang; see
 * .ci/run-fuzz.sh.
 */
#include <stddef.h>
#include <stdint.h>

#include "vent-model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* Long inputs only make each run slower, not the search better. */
	if (size > 2048)
		return 0;
	vm_run_buffer(data, size, NULL);
	return 0;
}
