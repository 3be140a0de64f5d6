/*
 * stubs.c: stand-ins for the parts of ferry that are built in files of their own
 * (mirror.c, shell.c, doctor.c, progress.c).  Each definition here is weak, so that the
 * real one wins at link time as soon as its file is added to meson.build; then its stub
 * here can go.
 */
#include <stdio.h>

#include "client/commands.h"
#include "client/progress.h"

static int not_built(const char *what)
{
	cli_error("%s: not built yet", what);
	return 2;
}

__attribute__((weak)) int cmd_mirror(int argc, char **argv, const struct ftp_options *o)
{
	return not_built("mirror");
}

__attribute__((weak)) int cmd_shell(int argc, char **argv, const struct ftp_options *o)
{
	return not_built("shell");
}

__attribute__((weak)) int cmd_doctor(int argc, char **argv, const struct ftp_options *o)
{
	return not_built("doctor");
}

/* No bar: the commands then pass no progress function at all. */
__attribute__((weak)) struct progress *progress_begin(const char *label, const struct ftp_options *o)
{
	return NULL;
}

__attribute__((weak)) void progress_update(void *ctx, const struct ftp_progress *p)
{
}

__attribute__((weak)) void progress_end(struct progress *bar, bool ok)
{
}
