/*
 * dispatch.h: the command table (generated from commands.def) and the dispatcher that
 * applies its rules before any handler runs.
 */
#ifndef FERRY_SERVER_DISPATCH_H
#define FERRY_SERVER_DISPATCH_H

#include <stdbool.h>

#include "common/buf.h"

struct session;

enum command_flags {
	NEED_LOGIN = 1 << 0,
	ARG_NONE = 1 << 1,
	ARG_REQUIRED = 1 << 2,
	ARG_OPTIONAL = 1 << 3,
	DURING_XFER = 1 << 4,
	NOT_AFTER_EPSV_ALL = 1 << 5,
	FEAT_HIDDEN = 1 << 6,
	OPENS_DATA = 1 << 7,
};

typedef void command_handler(struct session *s, const char *arg);

struct command {
	const char *verb;
	command_handler *handler;
	unsigned flags;
	const char *help;
};

#define FTP_COMMAND(verb, handler, flags, help) command_handler handler;
#include "server/commands.def"
#undef FTP_COMMAND

/* The command with this (upper-case) verb, or NULL. */
const struct command *command_find(const char *verb);
/* All commands, for HELP; *n gets the count. */
const struct command *command_all(unsigned *n);

/*
 * Whether a line may be handled while a transfer runs (ABOR, STAT, NOOP, QUIT).  Lines that
 * may not wait in the parser until the transfer ends.
 */
bool dispatch_during_transfer(const char *line, size_t len);

/* Run one complete command line: table rules, then the handler. */
void dispatch_line(struct session *s, const char *line, size_t len);

#endif
