/*
 * err.c: names for ferry's error codes and the loud abort for broken invariants.
 *
 * ferr_bug() is for bugs in ferry only; input from the network must never reach it, or a
 * peer could stop the server at will.
 */
#include "err.h"

#include <stdio.h>
#include <stdlib.h>

const char *ferr_str(int err)
{
	switch (err) {
	case FERR_OK:
		return "ok";
	case FERR_AGAIN:
		return "again";
	case FERR_INVALID:
		return "invalid input";
	case FERR_TOOBIG:
		return "too big";
	case FERR_NOMEM:
		return "out of memory";
	case FERR_RANGE:
		return "out of range";
	case FERR_SYS:
		return "system error";
	default:
		return "unknown error";
	}
}

_Noreturn void ferr_bug(const char *file, int line, const char *what)
{
	fprintf(stderr, "ferry: BUG at %s:%d: %s\n", file ? file : "?", line, what ? what : "?");
	fflush(stderr);
	abort();
}
