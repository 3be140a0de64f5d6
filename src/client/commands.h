/*
 * commands.h: the subcommands of ferry(1) that live in files of their own, and the
 * helpers every subcommand uses to turn its URL argument into a session.
 *
 * A subcommand gets argv[0] = its own name ("mirror") and argv[1..argc-1] = the words
 * that followed it on the command line, less the global options main.c took (the
 * options of ftp_options, -v, --quiet, ...); options main.c does not know (mirror's
 * --reverse, doctor's --json) are left in place, and so is a "--".  It returns the exit
 * status of the process (ftpc_exit_status() of a failure class; 2 for bad usage), and
 * prints its errors itself as one line, "ferry: <sentence>" (cli_error()).
 */
#ifndef FERRY_CLIENT_COMMANDS_H
#define FERRY_CLIENT_COMMANDS_H

#include "client/ftp.h"
#include "common/url.h"

/* ferry mirror URL DIR, ferry mirror --reverse DIR URL (mirror.c) */
int cmd_mirror(int argc, char **argv, const struct ftp_options *o);
/* ferry shell URL (shell.c) */
int cmd_shell(int argc, char **argv, const struct ftp_options *o);
/* ferry doctor URL [--json] (doctor.c) */
int cmd_doctor(int argc, char **argv, const struct ftp_options *o);

/* "ferry: <sentence>" and a newline on stderr. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * Parse a URL argument and complete its credentials from the netrc file when it names no
 * user (or a user without a password): o->netrc_file or ~/.netrc, unless o->no_netrc.  A
 * netrc file that others may read gives no password (refused with a message, as ftp(1)
 * does).  Returns 0, or the exit status after printing why (2: bad URL; 9: netrc unusable).
 */
int cli_url(const char *arg, const struct ftp_options *o, struct ftp_url *u);
/*
 * ftp_open() with the error printed: NULL and *status set to the exit status on failure.
 * The password in u is wiped either way.
 */
struct ftp *cli_connect(struct ftp_url *u, const struct ftp_options *o, int *status);

#endif
