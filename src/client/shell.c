/*
 * shell.c: ferry shell URL, an interactive session on one connection: a table of commands
 * (ls, cd, get, put, ...; help is printed from it), read with libedit's line editing and
 * history when standard input is a terminal, and line by line without it otherwise, so
 * that scripts can pipe commands in.
 *
 * Each command's failure is one line, "ferry: <sentence>", and the session goes on; only
 * a control connection that is gone ends it.  From a pipe the exit status is that of the
 * last command that failed (0 if none did); on a terminal it is 0, or 3 for a lost
 * connection.
 *
 * History lives in ~/.ferry_history: at most SHELL_HISTORY_MAX lines, written mode 0600
 * without following a symbolic link, and never holding a "quote PASS ..." or "quote
 * ACCT ..." line.  Like every command of ferry this file talks to the server only through
 * the engine (ftp.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <histedit.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "client/commands.h"
#include "client/ftp.h"
#include "client/listing_out.h"
#include "client/progress.h"

#define SHELL_LINE_MAX 4096      /* one command line, as the control connection's */
#define SHELL_WORDS_MAX 8
#define SHELL_HISTORY_MAX 1000
#define SHELL_LIST_MAX 1000000   /* entries ls keeps to sort */

struct shell {
	struct ftp *f;
	struct ftp_options o;     /* verbose follows the "verbose" command */
	bool interactive;
	bool done;                /* quit, exit, end of input */
	bool gone;                /* the control connection broke */
	int last_failure;         /* exit status of the last command that failed */
	char prompt[512];         /* "ferry:/cwd> " */
	EditLine *el;
	History *hist;
	char history_path[4096];  /* "" for none */
};

/* A command's words: argv[0] is its name; rest is the raw text after the name (quote). */
struct words {
	int argc;
	char *argv[SHELL_WORDS_MAX + 1];
	const char *rest;
	char store[SHELL_LINE_MAX + 1];
};

typedef int shell_fn(struct shell *s, const struct words *w);

struct shell_cmd {
	const char *name;
	int min_args, max_args;   /* words after the name */
	shell_fn *run;
	const char *args;
	const char *doc;
};

/* ---- output ---- */


/* An engine failure: its sentence, and the exit status it means. */
static int failed(struct shell *s, int rc)
{
	cli_error("%s", ftp_error(s->f));
	if (rc == FTPC_ECONNECT)
		s->gone = true;
	return ftpc_exit_status(rc);
}

static int local_failure(const char *what, const char *name, int e)
{
	char b[512];

	cli_error("%s %s: %s", what, shown(name, strlen(name), b, sizeof(b)), strerror(e));
	return ftpc_exit_status(FTPC_ELOCAL);
}

/* PWD for the prompt (only a terminal shows one: a script's dialogue stays lean). */
static void update_prompt(struct shell *s)
{
	char cwd[1024], b[400];

	if (!s->interactive)
		return;
	if (ftp_pwd(s->f, cwd, sizeof(cwd)) != FTPC_OK)
		snprintf(cwd, sizeof(cwd), "?");
	snprintf(s->prompt, sizeof(s->prompt), "ferry:%s> ", shown(cwd, strlen(cwd), b, sizeof(b)));
}

/* The last component of a path ("" for "dir/"). */
static const char *base_name(const char *p)
{
	const char *slash = strrchr(p, '/');

	return slash != NULL ? slash + 1 : p;
}

static bool usable_name(const char *n)
{
	return n[0] != '\0' && strcmp(n, ".") != 0 && strcmp(n, "..") != 0;
}

/* ---- ls ---- */

static int sh_ls(struct shell *s, const struct words *w)
{
	struct ls_list l = { .max = SHELL_LIST_MAX };
	int rc = ftp_list(s->f, w->argc > 1 ? w->argv[1] : "", ls_collect, &l);
	int status = 0;

	if (rc != FTPC_OK) {
		status = failed(s, rc);
	} else if (l.oom) {
		cli_error("ls: out of memory, or more than %d entries", SHELL_LIST_MAX);
		status = ftpc_exit_status(FTPC_ELOCAL);
	} else if (ls_print_all(&l, stdout) < 0) {
		status = ftpc_exit_status(FTPC_ELOCAL);
	}
	ls_free(&l);
	return status;
}

/* ---- remote directories and files ---- */

static int sh_cd(struct shell *s, const struct words *w)
{
	int rc = ftp_cwd(s->f, w->argv[1]);

	if (rc != FTPC_OK)
		return failed(s, rc);
	update_prompt(s);
	return 0;
}

static int sh_pwd(struct shell *s, const struct words *w)
{
	char cwd[4096], b[4096];
	int rc = ftp_pwd(s->f, cwd, sizeof(cwd));

	if (rc != FTPC_OK)
		return failed(s, rc);
	printf("%s\n", shown(cwd, strlen(cwd), b, sizeof(b)));
	return 0;
}

/* One engine call on one path (rm, mkdir, rmdir). */
static int one_path(struct shell *s, const struct words *w, int (*op)(struct ftp *, const char *))
{
	int rc = op(s->f, w->argv[1]);

	return rc == FTPC_OK ? 0 : failed(s, rc);
}

static int sh_rm(struct shell *s, const struct words *w)
{
	return one_path(s, w, ftp_delete);
}

static int sh_mkdir(struct shell *s, const struct words *w)
{
	return one_path(s, w, ftp_mkdir);
}

static int sh_rmdir(struct shell *s, const struct words *w)
{
	return one_path(s, w, ftp_rmdir);
}

static int sh_mv(struct shell *s, const struct words *w)
{
	int rc = ftp_rename(s->f, w->argv[1], w->argv[2]);

	return rc == FTPC_OK ? 0 : failed(s, rc);
}

/* ---- transfers ---- */

static int sh_get(struct shell *s, const struct words *w)
{
	const char *remote = w->argv[1];
	const char *local = w->argc > 2 ? w->argv[2] : base_name(remote);
	char path[4096];
	struct stat st;

	if (!usable_name(local)) {
		cli_error("get: no local name for %s: give one", remote);
		return 2;
	}
	/* get file dir: into dir, under the remote file's name. */
	if (w->argc > 2 && stat(local, &st) == 0 && S_ISDIR(st.st_mode)) {
		if (!usable_name(base_name(remote))) {
			cli_error("get: no local name for %s: give one", remote);
			return 2;
		}
		snprintf(path, sizeof(path), "%s/%s", local, base_name(remote));
		local = path;
	}
	/* Not there: say so before a local file is created or cut. */
	uint64_t size;
	int rc = ftp_size(s->f, remote, &size);
	if (rc == FTPC_ENOTFOUND || rc == FTPC_ECONNECT || rc == FTPC_ELOGIN)
		return failed(s, rc);
	int fd = open(local, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
	if (fd < 0)
		return local_failure("cannot write", local, errno);
	struct progress *bar = progress_begin(base_name(remote), &s->o);
	rc = ftp_get(s->f, remote, fd, 0, bar != NULL ? progress_update : NULL, bar);
	progress_end(bar, rc == FTPC_OK);
	if (close(fd) != 0 && rc == FTPC_OK)
		return local_failure("cannot write", local, errno);
	return rc == FTPC_OK ? 0 : failed(s, rc);
}

static int sh_put(struct shell *s, const struct words *w)
{
	const char *local = w->argv[1];
	const char *remote = w->argc > 2 ? w->argv[2] : base_name(local);
	char path[SHELL_LINE_MAX + 256];
	struct stat st;

	/* put file dir/: into dir, under the local file's name. */
	size_t n = strlen(remote);
	if (n > 0 && remote[n - 1] == '/' && usable_name(base_name(local))) {
		snprintf(path, sizeof(path), "%s%s", remote, base_name(local));
		remote = path;
	}
	if (!usable_name(base_name(remote))) {
		cli_error("put: no remote name for %s: give one", local);
		return 2;
	}
	int fd = open(local, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return local_failure("cannot read", local, errno);
	if (fstat(fd, &st) != 0 || S_ISDIR(st.st_mode)) {
		close(fd);
		cli_error("put: %s is a directory (ferry mirror --reverse sends directories)", local);
		return ftpc_exit_status(FTPC_ELOCAL);
	}
	struct progress *bar = progress_begin(base_name(remote), &s->o);
	int rc = ftp_put(s->f, fd, remote, 0, bar != NULL ? progress_update : NULL, bar);
	progress_end(bar, rc == FTPC_OK);
	close(fd);
	return rc == FTPC_OK ? 0 : failed(s, rc);
}

/* ---- the local side ---- */

static int sh_lcd(struct shell *s, const struct words *w)
{
	const char *dir = w->argc > 1 ? w->argv[1] : getenv("HOME");

	if (dir == NULL || dir[0] == '\0') {
		cli_error("lcd: no directory given, and no HOME");
		return 2;
	}
	if (chdir(dir) != 0)
		return local_failure("lcd", dir, errno);
	return 0;
}

static int sh_lpwd(struct shell *s, const struct words *w)
{
	char cwd[4096], b[4096];

	if (getcwd(cwd, sizeof(cwd)) == NULL)
		return local_failure("lpwd:", "the local directory", errno);
	printf("%s\n", shown(cwd, strlen(cwd), b, sizeof(b)));
	return 0;
}

/* ---- the session ---- */

static int set_mode(struct shell *s, enum data_mode m, const char *name)
{
	ftp_set_mode(s->f, m);
	s->o.mode = m;
	printf("data connections: %s\n", name);
	return 0;
}

static int sh_passive(struct shell *s, const struct words *w)
{
	return set_mode(s, DATA_PASSIVE, "passive");
}

static int sh_active(struct shell *s, const struct words *w)
{
	return set_mode(s, DATA_ACTIVE, "active");
}

static int sh_auto(struct shell *s, const struct words *w)
{
	return set_mode(s, DATA_AUTO, "auto (passive, falling back to active)");
}

/* pasvaddress [control|reply]: --pasv-address-from-reply for what follows; alone, shows it. */
static int sh_pasvaddress(struct shell *s, const struct words *w)
{
	if (w->argc > 1) {
		bool reply = strcmp(w->argv[1], "reply") == 0;
		if (!reply && strcmp(w->argv[1], "control") != 0) {
			char b[SHELL_LINE_MAX];
			cli_error("pasvaddress: expected control or reply, not '%s'",
				  shown(w->argv[1], strlen(w->argv[1]), b, sizeof(b)));
			return 2;
		}
		s->o.pasv_address_from_reply = reply;
		ftp_set_pasv_address_from_reply(s->f, reply);
	}
	printf("PASV data connections: %s\n", s->o.pasv_address_from_reply ?
	       "to the address in the reply" : "to the control connection's address");
	return 0;
}

static int sh_verbose(struct shell *s, const struct words *w)
{
	s->o.verbose = !s->o.verbose;
	ftp_set_verbose(s->f, s->o.verbose);
	printf("verbose %s\n", s->o.verbose ? "on" : "off");
	return 0;
}

/* The reply as the server sent it: "CODE-first", the lines between, "CODE last". */
static void print_reply(int code, const char *text)
{
	char b[SHELL_LINE_MAX];
	const char *nl = strchr(text, '\n');

	if (nl == NULL) {
		printf("%d %s\n", code, shown(text, strlen(text), b, sizeof(b)));
		return;
	}
	printf("%d-%s\n", code, shown(text, (size_t)(nl - text), b, sizeof(b)));
	for (text = nl + 1; (nl = strchr(text, '\n')) != NULL; text = nl + 1)
		printf(" %s\n", shown(text, (size_t)(nl - text), b, sizeof(b)));
	printf("%d %s\n", code, shown(text, strlen(text), b, sizeof(b)));
}

static int sh_quote(struct shell *s, const struct words *w)
{
	char *text = malloc(65536);

	if (text == NULL) {
		cli_error("quote: out of memory");
		return ftpc_exit_status(FTPC_ELOCAL);
	}
	int code = ftp_command(s->f, text, 65536, "%s", w->rest);
	if (code >= 0)
		print_reply(code, text);
	free(text);
	if (code < 0)
		return failed(s, code);
	update_prompt(s);   /* it may have been a CWD */
	/* A refusal is the answer quote asked for; it still counts as a failure for scripts. */
	return code >= 400 ? ftpc_exit_status(FTPC_EREMOTE) : 0;
}

static int sh_quit(struct shell *s, const struct words *w)
{
	s->done = true;
	return 0;
}

static int sh_help(struct shell *s, const struct words *w);

static const struct shell_cmd commands[] = {
	{ "ls", 0, 1, sh_ls, "[PATH]", "list a directory (the current one)" },
	{ "cd", 1, 1, sh_cd, "PATH", "change the remote directory" },
	{ "pwd", 0, 0, sh_pwd, "", "show the remote directory" },
	{ "get", 1, 2, sh_get, "REMOTE [LOCAL]", "download a file (LOCAL may be a directory)" },
	{ "put", 1, 2, sh_put, "LOCAL [REMOTE]", "upload a file (REMOTE may end in '/')" },
	{ "rm", 1, 1, sh_rm, "PATH", "delete a remote file" },
	{ "mkdir", 1, 1, sh_mkdir, "PATH", "make a remote directory" },
	{ "rmdir", 1, 1, sh_rmdir, "PATH", "remove an empty remote directory" },
	{ "mv", 2, 2, sh_mv, "FROM TO", "rename a remote file or directory" },
	{ "lcd", 0, 1, sh_lcd, "[DIR]", "change the local directory (HOME)" },
	{ "lpwd", 0, 0, sh_lpwd, "", "show the local directory" },
	{ "passive", 0, 0, sh_passive, "", "passive data connections from now on" },
	{ "active", 0, 0, sh_active, "", "active data connections from now on" },
	{ "auto", 0, 0, sh_auto, "", "passive, falling back to active, from now on" },
	{ "pasvaddress", 0, 1, sh_pasvaddress, "[control|reply]",
	  "PASV to the control connection's address, or the 227's" },
	{ "quote", 1, 1, sh_quote, "COMMAND...", "send a raw command, show the reply" },
	{ "verbose", 0, 0, sh_verbose, "", "show the control dialogue, or stop" },
	{ "help", 0, 1, sh_help, "[COMMAND]", "this list" },
	{ "quit", 0, 0, sh_quit, "", "end the session (also exit, Ctrl-D)" },
	{ "exit", 0, 0, sh_quit, "", "end the session" },
};
#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static const struct shell_cmd *find_command(const char *name)
{
	for (size_t i = 0; i < N_COMMANDS; i++) {
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	}
	return NULL;
}

static int sh_help(struct shell *s, const struct words *w)
{
	for (size_t i = 0; i < N_COMMANDS; i++) {
		const struct shell_cmd *c = &commands[i];
		char head[64];
		if (w->argc > 1 && strcmp(w->argv[1], c->name) != 0)
			continue;
		snprintf(head, sizeof(head), "%s %s", c->name, c->args);
		printf("  %-24s %s\n", head, c->doc);
	}
	return 0;
}

/* ---- reading commands ---- */

/*
 * Split line into words: blanks separate them, '...' is literal, "..." and a backslash
 * outside quotes escape one character.  Returns 0, or -1 after saying why (unless quiet);
 * either way argv[0] and rest are set when the line has a first word, which is all quote
 * needs.
 */
static int split(const char *line, struct words *w, bool quiet)
{
	const char *p = line;
	char *out = w->store;
	char *end = w->store + sizeof(w->store) - 1;   /* the last byte, kept for a NUL */
	const char *why = NULL;

	w->argc = 0;
	w->rest = "";
	for (;;) {
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '\0')
			break;
		if (w->argc == 1)
			w->rest = p;
		if (w->argc == SHELL_WORDS_MAX) {
			why = "too many words";
			break;
		}
		char *word = out;
		char quote = 0;
		for (; *p != '\0' && (quote != 0 || (*p != ' ' && *p != '\t')); p++) {
			char c = *p;
			if (quote == 0 && (c == '\'' || c == '"')) {
				quote = c;
				continue;
			}
			if (quote != 0 && c == quote) {
				quote = 0;
				continue;
			}
			if (c == '\\' && quote != '\'' && p[1] != '\0')
				c = *++p;
			if (out >= end)
				break;
			*out++ = c;
		}
		if (out >= end) {
			why = "the line is too long";
			break;
		}
		*out++ = '\0';
		w->argv[w->argc++] = word;
		if (quote != 0) {
			why = quote == '"' ? "unterminated \" quote" : "unterminated ' quote";
			break;
		}
	}
	w->argv[w->argc] = NULL;
	if (why != NULL && !quiet)
		cli_error("%s", why);
	return why != NULL ? -1 : 0;
}

/* quote sends the rest of the line as it stands, whatever its words look like. */
static bool is_quote(const struct words *w)
{
	return w->argc > 0 && strcmp(w->argv[0], "quote") == 0;
}

/* One line: its command run, the exit status it gave (0 for an empty line). */
static int run_line(struct shell *s, const char *line)
{
	struct words *w = malloc(sizeof(*w));
	int status = 2;
	char b[256];

	if (w == NULL) {
		cli_error("out of memory");
		return ftpc_exit_status(FTPC_ELOCAL);
	}
	if (split(line, w, true) != 0 && !is_quote(w)) {
		(void)split(line, w, false);   /* again, to say why */
		goto out;
	}
	status = 0;
	if (w->argc == 0 || w->argv[0][0] == '#')
		goto out;
	status = 2;
	const struct shell_cmd *c = find_command(w->argv[0]);
	int nargs = is_quote(w) ? w->rest[0] != '\0' : w->argc - 1;
	if (c == NULL) {
		cli_error("unknown command '%s' (try help)",
			  shown(w->argv[0], strlen(w->argv[0]), b, sizeof(b)));
	} else if (nargs < c->min_args) {
		cli_error("%s: missing argument (usage: %s %s)", c->name, c->name, c->args);
	} else if (nargs > c->max_args) {
		cli_error("%s: too many arguments (usage: %s %s)", c->name, c->name, c->args);
	} else {
		status = c->run(s, w);
	}
out:
	free(w);
	fflush(stdout);
	return status;
}

/* Lines that would put a secret in the history file. */
static bool secret_line(const char *line)
{
	char verb[8], arg[8];

	if (sscanf(line, " %7s %7s", verb, arg) != 2 || strcmp(verb, "quote") != 0)
		return false;
	return strcasecmp(arg, "PASS") == 0 || strcasecmp(arg, "ACCT") == 0;
}

static char *prompt_of(EditLine *el)
{
	struct shell *s = NULL;

	el_get(el, EL_CLIENTDATA, &s);
	return s->prompt;
}

static void history_open(struct shell *s)
{
	HistEvent ev;
	const char *home = getenv("HOME");

	s->hist = history_init();
	if (s->hist == NULL)
		return;
	history(s->hist, &ev, H_SETSIZE, SHELL_HISTORY_MAX);
	history(s->hist, &ev, H_SETUNIQUE, 1);
	if (home == NULL || home[0] == '\0' ||
	    snprintf(s->history_path, sizeof(s->history_path), "%s/.ferry_history", home) >=
		    (int)sizeof(s->history_path)) {
		s->history_path[0] = '\0';
		return;
	}
	(void)history(s->hist, &ev, H_LOAD, s->history_path);   /* none yet: fine */
}

/* Written afresh, mode 0600, never through a symbolic link. */
static void history_save(struct shell *s)
{
	HistEvent ev;

	if (s->hist == NULL || s->history_path[0] == '\0')
		return;
	int fd = open(s->history_path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	FILE *fp = fd >= 0 && fchmod(fd, 0600) == 0 ? fdopen(fd, "w") : NULL;
	if (fp == NULL) {
		cli_error("warning: cannot write the history file %s: %s", s->history_path,
			  strerror(errno));
		if (fd >= 0)
			close(fd);
		return;
	}
	if (history(s->hist, &ev, H_SAVE_FP, fp) < 0 || fclose(fp) != 0)
		cli_error("warning: cannot write the history file %s", s->history_path);
}

static int editline_open(struct shell *s, const char *prog)
{
	s->el = el_init(prog, stdin, stdout, stderr);
	if (s->el == NULL) {
		cli_error("shell: cannot set up line editing on this terminal");
		return -1;
	}
	history_open(s);
	el_set(s->el, EL_CLIENTDATA, s);
	el_set(s->el, EL_PROMPT, prompt_of);
	el_set(s->el, EL_EDITOR, "emacs");
	el_set(s->el, EL_SIGNAL, 1);
	if (s->hist != NULL)
		el_set(s->el, EL_HIST, history, s->hist);
	(void)el_source(s->el, NULL);   /* ~/.editrc, as every libedit program */
	return 0;
}

static void editline_close(struct shell *s)
{
	history_save(s);
	if (s->hist != NULL)
		history_end(s->hist);
	if (s->el != NULL)
		el_end(s->el);
}

/* The next line into buf (without its newline); false at the end of input. */
static bool read_line(struct shell *s, char *buf, size_t bufsz)
{
	if (s->interactive) {
		int n;
		const char *l;
		do {
			l = el_gets(s->el, &n);
		} while (l == NULL && n < 0 && errno == EINTR);
		if (l == NULL || n <= 0) {
			putchar('\n');   /* Ctrl-D leaves the cursor after the prompt */
			return false;
		}
		snprintf(buf, bufsz, "%s", l);
	} else {
		if (fgets(buf, (int)bufsz, stdin) == NULL)
			return false;
		size_t n = strlen(buf);
		if (n == bufsz - 1 && buf[n - 1] != '\n') {
			int c;
			while ((c = getchar()) != EOF && c != '\n')
				;
			cli_error("a line longer than %d bytes: ignored", SHELL_LINE_MAX);
			buf[0] = '\0';
			s->last_failure = 2;
			return true;
		}
	}
	buf[strcspn(buf, "\r\n")] = '\0';
	return true;
}

static void loop(struct shell *s)
{
	char *line = malloc(SHELL_LINE_MAX + 2);
	HistEvent ev;

	if (line == NULL) {
		cli_error("out of memory");
		s->last_failure = ftpc_exit_status(FTPC_ELOCAL);
		return;
	}
	while (!s->done && !s->gone && read_line(s, line, SHELL_LINE_MAX + 2)) {
		if (s->interactive && s->hist != NULL && line[strspn(line, " \t")] != '\0' &&
		    !secret_line(line))
			history(s->hist, &ev, H_ENTER, line);
		int status = run_line(s, line);
		if (status != 0)
			s->last_failure = status;
	}
	free(line);
	if (s->gone)
		cli_error("the connection to the server is gone: the session ends");
}

int cmd_shell(int argc, char **argv, const struct ftp_options *o)
{
	struct ftp_url u;
	int status;
	const char *url = NULL;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0 && url == NULL && i + 1 < argc) {
			url = argv[++i];
		} else if (argv[i][0] == '-' || url != NULL) {
			cli_error("shell: usage: ferry shell URL");
			return 2;
		} else {
			url = argv[i];
		}
	}
	if (url == NULL) {
		cli_error("shell: usage: ferry shell URL");
		return 2;
	}
	status = cli_url(url, o, &u);
	if (status != 0)
		return status;
	struct shell *s = calloc(1, sizeof(*s));
	if (s == NULL) {
		cli_error("out of memory");
		return ftpc_exit_status(FTPC_ELOCAL);
	}
	s->o = *o;
	s->interactive = isatty(STDIN_FILENO);
	s->f = cli_connect(&u, o, &status);
	if (s->f == NULL) {
		free(s);
		return status;
	}
	if (u.path[0] != '\0') {
		int rc = ftp_cwd(s->f, u.path);
		if (rc != FTPC_OK)
			s->last_failure = failed(s, rc);
	}
	update_prompt(s);
	if (!s->interactive || editline_open(s, argv[0]) == 0) {
		loop(s);
	} else {
		s->last_failure = 2;
	}
	if (s->interactive)
		editline_close(s);
	ftp_close(s->f);
	status = s->gone ? ftpc_exit_status(FTPC_ECONNECT) : s->interactive ? 0 : s->last_failure;
	free(s);
	return status;
}
