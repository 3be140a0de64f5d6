/*
 * cmd_tls.h: the FTPS policy that other commands consult (RFC 4217).  The TLS commands
 * themselves (AUTH, PBSZ, PROT, CCC) are in the command table.
 */
#ifndef FERRY_SERVER_CMD_TLS_H
#define FERRY_SERVER_CMD_TLS_H

#include <stdbool.h>

struct session;

/*
 * USER: whether this kind of user (anonymous or from the users file) may log in over the
 * session's control connection as it is (tls, anon_tls).  Replies 530 saying what to do
 * when not.
 */
bool tls_login_allowed(struct session *s, bool anonymous);
/* A transfer: whether it may use a data connection under the current PROT (tls_data);
 * replies 521 saying what to do when not. */
bool tls_transfer_allowed(struct session *s);
/* PASS: whether a verified client certificate names s->username (tls_cert_login). */
bool tls_cert_names_user(const struct session *s);

#endif
