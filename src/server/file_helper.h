/*
 * file_helper.h: a local user's file helper (file_helper.c), started by the local-auth
 * helper as `ferryd --file-helper CTL ROOT` with the user's ids already taken.
 */
#ifndef FERRY_SERVER_FILE_HELPER_H
#define FERRY_SERVER_FILE_HELPER_H

/* Serve until the last session has gone; the exit status. */
int file_helper_main(int ctl, int root);

#endif
