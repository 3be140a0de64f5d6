/*
 * usercmd.h: "ferryd user": add, change, remove and list the virtual users of either
 * store, the users file or PostgreSQL (users_pg), with the same checks for both.
 *
 *   ferryd user [--config FILE] [--users-file FILE | --users-pg CONNINFO] [OPTION...] \
 *         add NAME --home DIR [--permissions LIST] [--settings TEXT] [--disabled]
 *       | passwd NAME
 *       | set NAME [--home DIR] [--permissions LIST] [--settings TEXT] [--disabled|--enabled]
 *       | del NAME
 *       | list
 *
 * Passwords come from stdin (twice without echo on a terminal) and are stored hashed.
 * Exit status: 0 done, 1 refused (bad input, no such user, user exists), 2 the store
 * failed (unreachable database, unwritable file).
 */
#ifndef FERRY_SERVER_USERCMD_H
#define FERRY_SERVER_USERCMD_H

/* argv[0] is "user"; returns the exit status. */
int usercmd_main(int argc, char **argv);

#endif
