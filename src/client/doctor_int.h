/*
 * doctor_int.h: the inside of `ferry doctor`, shared by its files only; main.c sees
 * cmd_doctor() in commands.h and nothing of this.
 *
 *   doctor.c           the command: arguments, the address families, the order of the
 *                      checks once per family, the exit status
 *   doctor_report.c    the record of each check (verdict, explanation, fix, details) and
 *                      the text report, a line per check as it is made
 *   doctor_json.c      the report as one JSON document (--json)
 *   doctor_probe.c     sessions and probes: a session with the URL's credentials, one
 *                      data connection made one way, a new session when one is lost
 *   doctor_control.c   the control connection: connect, greeting, FEAT, login
 *   doctor_passive.c   PASV and EPSV: their verdicts and fixes
 *   doctor_active.c    EPRT and PORT: their verdicts and fixes
 *   doctor_transfer.c  a listing and a small download in each mode that works
 *   doctor_tls.c       TLS: the certificate, the versions, session resumption
 *
 * No file of the doctor touches a socket (ftp.h does it all).  Ownership: struct doctor
 * and struct fam are calloc'ed and freed by doctor.c; the checks array belongs to
 * struct doctor; sessions are closed by whoever opened them.
 */
#ifndef FERRY_CLIENT_DOCTOR_INT_H
#define FERRY_CLIENT_DOCTOR_INT_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "client/ftp.h"
#include "common/url.h"

#define PROBE_MS 5000              /* each probe's connects and replies, without --timeout */
#define SMALL_FILE (1024 * 1024)   /* the largest file the download check fetches */
#define CERT_DAYS_WARN 14          /* a certificate closer to its end is a warning */
#define DETAILS_MAX 16
#define ADDRS_MAX 4                /* addresses of one family shown in the report */
#define N_KINDS 4                  /* enum data_kind */

enum verdict { V_PASS, V_WARN, V_FAIL, V_SKIP };

/* ---- checks and the report ---- */

enum dtype { D_STR, D_INT, D_REAL, D_BOOL };

struct detail {
	const char *key;           /* a literal */
	enum dtype type;
	char s[256];
	long long i;
	double r;
};

struct check {
	const char *name;          /* for programs: "connect", "pasv", "list", ... (a literal) */
	char label[32];            /* for people: "connect", "PASV", "list (EPSV)", ... */
	const char *mode;          /* the data connection mode a check is about, or NULL */
	int family;
	enum verdict v;
	char why[768];
	char fix[512];
	struct detail d[DETAILS_MAX];
	size_t nd;
};

struct family_seen {
	int family;
	char addrs[ADDRS_MAX][INET6_ADDRSTRLEN];
	size_t n;
};

struct doctor {
	struct ftp_options o;      /* every session's: the user's, the probe time-out, the log */
	struct ftp_url u;          /* with the password: copied into each ftp_open, wiped at the end */
	char shown[1200];          /* the URL with the password masked */
	bool json, verbose;
	int probe_ms;
	FILE *sink;                /* the engine's notes and warnings, without -v */
	char *sink_text;
	size_t sink_len;
	struct check cur;          /* the check being made */
	struct check *checks;      /* the ones made (for --json) */
	size_t n, cap;
	size_t count[4];           /* by verdict, even when the array could not grow */
	struct family_seen fams[2];
	size_t nfams;
};

/* One probe: a data connection made one way, and what the engine saw. */
struct probe {
	bool ran;                  /* false: there was no session to run it on */
	bool lost;                 /* the control connection broke during it */
	double seconds;            /* the whole probe */
	struct ftp_data_probe p;
};

/* What one family's checks share. */
struct fam {
	int family;
	struct ftp_options o;      /* what opened the main session (after any fall-back) */
	struct ftp *f;             /* the main session; NULL once lost for good */
	struct ftp_session_info si;
	double open_seconds;
	char tls_error[600];       /* TLS as asked failed: why ("" when it did not) */
	bool tls_gave_up;          /* ... and the session went on in the clear */
	struct probe pr[N_KINDS];  /* NLST, by enum data_kind */
	char dir[VPATH_MAX];       /* what to list */
	char file[VPATH_MAX];      /* what to download ("" for nothing) */
	uint64_t file_size;
	char file_note[600];       /* why there is nothing to download */
};

/* A case-insensitive search, for replies and error texts whose wording varies. */
static inline bool text_has(const char *text, const char *word)
{
	return strcasestr(text, word) != NULL;
}

/* ---- doctor_report.c ---- */

/* "PASS", "WARN", "FAIL", "SKIP", by enum verdict. */
extern const char *const verdict_names[4];

/* A new check as dr->cur (name and mode: literals), to be ended with check_end(). */
struct check *check_begin(struct doctor *dr, int family, const char *name, const char *label,
			  const char *mode);
/* Append to the explanation, or to the fix (cut short where it does not fit). */
void check_why(struct check *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void check_fix(struct check *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Details for --json; past DETAILS_MAX they are dropped. */
void detail_str(struct check *c, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void detail_int(struct check *c, const char *key, long long v);
void detail_real(struct check *c, const char *key, double v);
void detail_bool(struct check *c, const char *key, bool v);
void detail_addr(struct check *c, const char *key, const struct sockaddr_storage *ss);
/* dr->cur gets its verdict, is kept and counted, and (without --json) printed. */
void check_end(struct doctor *dr, enum verdict v);
/* dr->cur explained as fmt and ended as SKIP. */
void check_skip(struct doctor *dr, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A note on stderr under -v, beside the engine's dialogue. */
void doctor_note(struct doctor *dr, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* An address as text ("?" for one that is not IPv4 or IPv6). */
void doctor_addr(const struct sockaddr_storage *ss, char *out, size_t outsz);

/* The text report's first line, a family's heading and the summary (none with --json). */
void report_start(const struct doctor *dr);
void report_family(const struct doctor *dr, const struct family_seen *fs);
void report_end(const struct doctor *dr, int status);

/* ---- doctor_json.c ---- */

/* The whole report on stdout as one JSON document (RFC 8259). */
void json_report(const struct doctor *dr, int status);

/* ---- doctor_probe.c ---- */

/* "EPSV", "PASV", "EPRT", "PORT", by enum data_kind. */
extern const char *const kind_names[N_KINDS];

/* ftp_open with the URL's credentials (copied, then wiped); *seconds: how long it took. */
struct ftp *session_open(struct doctor *dr, const struct ftp_options *o, int *rc, char *err,
			 size_t errsz, double *seconds);
/* fm's session again, after a probe lost it (fm->f NULL when that fails too). */
void session_reopen(struct doctor *dr, struct fam *fm);
/* One data connection made the way k says, for command; a lost session is made again. */
void probe_run(struct doctor *dr, struct fam *fm, struct probe *pr, enum data_kind k,
	       const char *command);
/* The probe did not run (no session): dr->cur ended as SKIP, and true. */
bool probe_skipped(struct doctor *dr, const struct probe *pr);
/* The details every data connection check carries. */
void probe_details(struct check *c, const struct probe *pr);
/*
 * The start of a mode's check (PASV, EPSV, EPRT, PORT): SKIP and false where the family
 * has no such mode (ipv4_only: why, or NULL for a mode of both) or the probe did not run;
 * else the probe's details, and true.
 */
bool probe_checkable(struct doctor *dr, const struct fam *fm, struct check *c,
		     const struct probe *pr, const char *ipv4_only);
/* No reply to the setup command (the control connection was lost): c ended as FAIL, and true. */
bool probe_unanswered(struct doctor *dr, struct check *c, const struct ftp_data_probe *p,
		      const char *cmd);
/* The probe made its data connection. */
bool probe_connected(const struct probe *pr);
/* The mode made a data connection and the listing over it ended well. */
bool mode_works(const struct fam *fm, enum data_kind k);

/* ---- doctor_control.c ---- */

/* The main session, as asked; when TLS fails, without verification, then in the clear. */
bool control_open(struct doctor *dr, struct fam *fm, int *rc, char *err, size_t errsz);
/* There is no session: the checks that say why (connect, or login, or TLS). */
void control_failed(struct doctor *dr, struct fam *fm, int rc, const char *err);
void check_connect(struct doctor *dr, struct fam *fm);
void check_features(struct doctor *dr, struct fam *fm);
void check_login(struct doctor *dr, struct fam *fm);

/* ---- doctor_passive.c, doctor_active.c ---- */

void check_pasv(struct doctor *dr, struct fam *fm);
void check_epsv(struct doctor *dr, struct fam *fm);
/* k: DK_EPRT or DK_PORT. */
void check_active(struct doctor *dr, struct fam *fm, enum data_kind k);

/* ---- doctor_transfer.c ---- */

/* What to list and what to download: the URL's directory, or its file and the file's. */
void choose_paths(struct doctor *dr, struct fam *fm);
/* The listing each working mode carried (cmd: the probes' NLST). */
void check_listings(struct doctor *dr, struct fam *fm, const char *cmd);
/* A small file downloaded in each mode that works (found by a listing if the URL names none). */
void check_downloads(struct doctor *dr, struct fam *fm);

/* ---- doctor_tls.c ---- */

/* The TLS checks, on the main session or one of their own (cmd: for the resumption probes). */
void check_tls(struct doctor *dr, struct fam *fm, const char *cmd);
/* TLS as asked did not work: a FAIL with the error's fix. */
void tls_failed_check(struct doctor *dr, struct fam *fm, const char *error);

#endif
