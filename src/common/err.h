/*
 * err.h: the one error idiom of ferry.
 *
 * Functions return 0 (or a count) on success and one of these negative values on failure.
 * FERR_AGAIN means "would block / need more input", never a failure.  A failure caused by
 * the outside world becomes an FTP reply; a broken invariant calls ferr_bug(), which aborts.
 */
#ifndef FERRY_COMMON_ERR_H
#define FERRY_COMMON_ERR_H

enum ferr {
	FERR_OK = 0,
	FERR_AGAIN = -1,   /* need more input, or would block */
	FERR_INVALID = -2, /* malformed input */
	FERR_TOOBIG = -3,  /* would exceed a bound */
	FERR_NOMEM = -4,   /* allocation failed */
	FERR_RANGE = -5,   /* number out of range */
	FERR_SYS = -6,     /* system call failed; errno holds why */
};

/* A short English name for an error code, for logs.  Never NULL. */
const char *ferr_str(int err);

/* Abort loudly on a broken invariant: never for input from the network. */
_Noreturn void ferr_bug(const char *file, int line, const char *what);
#define FERR_BUG(what) ferr_bug(__FILE__, __LINE__, (what))
#define FERR_ASSERT(cond)                                                                          \
	do {                                                                                       \
		if (!(cond))                                                                       \
			FERR_BUG(#cond);                                                           \
	} while (0)

#endif
