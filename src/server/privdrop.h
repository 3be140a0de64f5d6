/*
 * privdrop.h: the master's privilege drop, and the one privilege it keeps for reloads.
 *
 * Started as root, the master becomes `user` and keeps only CAP_DAC_READ_SEARCH, in its
 * permitted set, never effective but while a reload (SIGHUP) reads the configuration,
 * the users file and the TLS files: what start-up could read, a reload can read too,
 * however those files are owned (`ferryd passwd` makes the users file root's, 0600).
 * The capability cannot write, and is lost at the workers' execve.
 */
#ifndef FERRY_SERVER_PRIVDROP_H
#define FERRY_SERVER_PRIVDROP_H

#include <stdbool.h>
#include <stdio.h>

#include "server/config.h"

/*
 * Become user (setgroups, setresgid, setresuid), keeping CAP_DAC_READ_SEARCH permitted
 * when keep_read.  Checks that root cannot be regained.  Returns 0 or -1 (logged).
 */
int privdrop_to_user(const char *user, bool keep_read);

/* Raise (on) or lower the kept CAP_DAC_READ_SEARCH.  Returns 0 or -errno. */
int privdrop_read_privilege(bool on);

/*
 * --check-config as root: whether a reload will read every file cfg names, as `user` with
 * the kept privilege, in a child process.  Prints each failure on out; returns how many.
 */
int privdrop_check_reload(const struct config *cfg, FILE *out);

#endif
