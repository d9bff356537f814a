/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * defs.h - common definitions for the public vent headers.
 *
 * Included by every other vent header with a quoted include, so it is found
 * both as <vent/defs.h> and when a minivent program compiles with
 * "-I include/vent" and says #include "event.h".
 */
#ifndef VENT_DEFS_H
#define VENT_DEFS_H

/*
 * The headers use POSIX types (struct timespec, sigset_t, siginfo_t) and
 * clocks, which the C library hides in strict ISO C mode (-std=c99, -std=c11)
 * unless a feature macro asks for them. The macro must be defined before the
 * first system header, so a vent header cannot define it itself.
 */
#if defined(__STRICT_ANSI__) && !defined(__cplusplus) && !defined(_POSIX_C_SOURCE) && \
	!defined(_XOPEN_SOURCE) && !defined(_GNU_SOURCE) && !defined(_DEFAULT_SOURCE) && !defined(_BSD_SOURCE)
#error "vent headers need POSIX.1-2008: define _POSIX_C_SOURCE=200809L (or _GNU_SOURCE) before including any header, e.g. cc -std=c11 -D_POSIX_C_SOURCE=200809L"
#endif

/*
 * VENT_SYMBOL(sym) - the name the library exports for a declaration.
 *
 * libvent exports only vent_-prefixed names, so that it can share a process
 * with libevent (which exports event_add() too). minivent's names stay the
 * source API: the header declares event_add() with the assembler name
 * vent_event_add, so calls, function pointers and &event_add all reach
 * vent_event_add without a macro renaming anything in the program.
 *
 * Defining VENT_SYMBOL(sym) as nothing before the first vent header builds a
 * program against minivent's un-prefixed names, which only libminivent.so
 * (-Dminivent_compat=true) exports; the tests build minivent binaries so.
 */
#ifndef VENT_SYMBOL
#define VENT_SYMBOL(sym) __asm__(#sym)
#endif

#ifdef __cplusplus
/* Every vent entry point is noexcept: no C++ exception ever crosses the ABI. */
#define VENT_NOEXCEPT noexcept
#define VENT_BEGIN_DECLS extern "C" {
#define VENT_END_DECLS }
/* A cast in the inline helpers that C++ code with -Wold-style-cast accepts. */
#define VENT_CAST(type, expr) (static_cast<type>(expr))
/* A null pointer that C++ code with -Wzero-as-null-pointer-constant accepts. */
#define VENT_NULL nullptr
#else
#define VENT_NOEXCEPT
#define VENT_BEGIN_DECLS
#define VENT_END_DECLS
#define VENT_CAST(type, expr) ((type)(expr))
#define VENT_NULL ((void *)0)
#endif

#endif /* VENT_DEFS_H */
