/*
 * passwd.h: "ferryd passwd FILE NAME [--home DIR] [--permissions LIST]": add a virtual
 * user or change one's password, reading the password without echo.
 */
#ifndef FERRY_SERVER_PASSWD_H
#define FERRY_SERVER_PASSWD_H

int passwd_main(int argc, char **argv);

#endif
