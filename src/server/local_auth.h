/*
 * local_auth.h: local system users through PAM (local_auth.c): the privileged helper,
 * and what the master and the workers' password threads call.
 */
#ifndef FERRY_SERVER_LOCAL_AUTH_H
#define FERRY_SERVER_LOCAL_AUTH_H

#include <sys/types.h>

#include "server/channel.h"
#include "server/config.h"

/* Fork the helper (as root, before the master drops privileges); *ctl: its channel. */
pid_t local_auth_start(const struct config *cfg, int *ctl);
/*
 * A worker's password thread: check name and password, with PAM (LOCAL_SOURCE_PAM) or as
 * a directory user with its own ids (LOCAL_SOURCE_LDAP, ldap_own_ids).  Returns 0 with rep->status 1
 * (logged in: *conn is a connection to the user's file helper, rep the user's ids, name
 * and root), 0 (refused) or -1 (the check could not be made); or -errno when the helper
 * did not answer (-ETIMEDOUT after 30 s).
 */
int local_auth_login(int chan, unsigned source, const char *name, const char *password,
		     struct msg_local_reply *rep, int *conn);

#endif
