/*
 * num.h: checked number parsing for everything that arrives from the network or a
 * configuration file.  No atoi, no strtol without checks: REST offsets, ports and PORT
 * octets are parsed here and overflow is an error, never a wrap.
 */
#ifndef FERRY_COMMON_NUM_H
#define FERRY_COMMON_NUM_H

#include <stdint.h>

#include "buf.h"

/*
 * Parse decimal digits only (no sign, no spaces, no empty string, at most 20 digits;
 * leading zeros allowed).  Returns 0 with *out set, FERR_INVALID for anything but digits,
 * FERR_RANGE when the value exceeds max or there are more than 20 digits.
 */
int num_parse_u64(struct slice s, uint64_t max, uint64_t *out);
/* The same on a NUL-terminated string. */
int num_parse_u64_cstr(const char *s, uint64_t max, uint64_t *out);

#endif
