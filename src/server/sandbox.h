/*
 * sandbox.h: what each ferryd process may still do once its start-up is over (the layers
 * are described in docs/security.md).  There is no configuration key and no switch: every
 * layer the kernel offers is always applied.  A missing kernel feature (Landlock, seccomp)
 * is logged as a warning and the other layers still apply; any other failure is an error,
 * and the process must not go on.
 */
#ifndef FERRY_SERVER_SANDBOX_H
#define FERRY_SERVER_SANDBOX_H

struct server;

/*
 * The master, still with the privileges it was started with: empty the capability bounding
 * set (possible only while it holds CAP_SETPCAP, i.e. as root) so that no process it starts
 * can regain a capability, and set no_new_privs, which its children inherit.  Returns 0 or
 * -errno.
 */
int sandbox_master(void);

/*
 * A worker, once its configuration, users and event base are ready and before it starts
 * any thread (a thread started earlier would escape Landlock, which confines only the
 * calling thread and those it creates; the function refuses to run with more than one
 * thread).  No capability in any set, no_new_privs, not dumpable, Landlock on the data
 * roots (srv's anonymous root when anonymous logins are on, and the home of every user in
 * srv->users, each with the rights its permissions need), then the seccomp allow-list.
 * The caller keeps its descriptors.  Returns 0 or -errno (logged).
 */
int sandbox_worker(const struct server *srv);

/*
 * The port-20 helper, after its drop to the unprivileged user with CAP_NET_BIND_SERVICE
 * (kept; every other capability cleared), no_new_privs and not dumpable:
 * no file access at all, TCP bind only to port 20 and no connect (Landlock), and a seccomp
 * allow-list of the few calls it makes.  Returns 0 or -errno (logged).
 */
int sandbox_port20(void);

/*
 * A local user's file helper, already under the user's ids: no capability, no_new_privs,
 * not dumpable, Landlock to root (every file right; no TCP), and a seccomp allow-list of
 * the file calls it makes.  Returns 0 or -errno (logged).
 */
int sandbox_file_helper(int root);

#endif
