/*
 * cli.h: ferry's command line: the table of global options (cli.c), parsed into the
 * engine's options and the few that only the commands of main.c use.
 */
#ifndef FERRY_CLIENT_CLI_H
#define FERRY_CLIENT_CLI_H

#include <stdbool.h>
#include <stdio.h>

#include "client/ftp.h"

struct cli {
	struct ftp_options o;
	const char *output;      /* -o FILE (get) */
	bool resume;             /* --continue (get, put) */
	bool help, version;
	int argc;                /* what is left: the command and its words (NULL-ended) */
	char **argv;             /* owned: free() */
};

/*
 * Take the global options out of argv, wherever they stand before a "--"; what is left
 * (the command, its words, options unknown here) goes to c->argv in order.  Returns 0, or
 * 2 after printing why.
 */
int cli_parse(int argc, char **argv, struct cli *c);
/* The options part of --help, from the table. */
void cli_options_help(FILE *out);

#endif
