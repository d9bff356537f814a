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
