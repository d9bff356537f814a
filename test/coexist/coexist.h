/* SPDX-License-Identifier: GPL-2.0-or-later */
/* coexist.h - the halves of coexist-test; each prints TAP lines, returns failures. */
#ifndef COEXIST_H
#define COEXIST_H

int vent_part(void);
int libevent_part(void);

#endif
