/*
 * data_refusal.h: the reasons a data connection is refused, one row each.  They are what
 * an administrator needs to tell a firewall or NAT problem from a TLS one: each is counted
 * by the master (the status line of SIGUSR1, and the metrics) under the row's name.
 */
#ifndef FERRY_SERVER_DATA_REFUSAL_H
#define FERRY_SERVER_DATA_REFUSAL_H

#define DATA_REFUSALS(X)                                                                      \
	/* a passive port was reached from an address no session waits from */                 \
	X(FOREIGN_ADDRESS, "foreign_address")                                                   \
	/* a transfer in the clear where tls_data = required */                                 \
	X(PROT_P_REQUIRED, "prot_p_required")                                                   \
	/* a protected data connection that offered no TLS session to resume */                 \
	X(TLS_NEW_SESSION, "tls_new_session")                                                   \
	/* ... that offered the session of another control connection */                       \
	X(TLS_OTHER_SESSION, "tls_other_session")                                               \
	/* ... that offered a session this worker no longer knows (expired, restarted) */       \
	X(TLS_UNKNOWN_SESSION, "tls_unknown_session")                                           \
	/* ... whose TLS handshake failed */                                                    \
	X(TLS_HANDSHAKE, "tls_handshake_failed")

enum data_refusal {
#define X(name, text) DR_##name,
	DATA_REFUSALS(X)
#undef X
	DR_COUNT
};

static inline const char *data_refusal_name(enum data_refusal r)
{
	static const char *const names[] = {
#define X(name, text) text,
		DATA_REFUSALS(X)
#undef X
	};
	return (unsigned)r < DR_COUNT ? names[r] : "unknown";
}

#endif
