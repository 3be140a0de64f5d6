// basic_ftp_client.js: basic-ftp (npm) as an FTPS client of ferryd, for test_ftps_interop.py.
//
//   node basic_ftp_client.js PORT CAFILE TLSVERSION OP...     (TLSVERSION: 1.2 or 1.3)
//   OP: get:REMOTE:LOCAL | put:LOCAL:REMOTE
//
// Explicit FTPS (secure: true, AUTH TLS) to 127.0.0.1 as anonymous, every OP in one
// control connection, in the order given; basic-ftp offers the control connection's
// newest TLS session on each data connection itself.  The test finds basic-ftp through
// NODE_PATH.  Prints "basic-ftp VERSION" first, then one line per transfer:
// "get|put NAME SIZE", and the negotiated protocol of the control connection last.
// Exits 1 at the first failed transfer (basic-ftp's error on stderr), 2 on a usage error.
"use strict";

const fs = require("fs");
const path = require("path");
const ftp = require("basic-ftp");

async function main(argv) {
	if (argv.length < 4 || !["1.2", "1.3"].includes(argv[2])) {
		console.error("usage: basic_ftp_client.js PORT CAFILE 1.2|1.3 get:REMOTE:LOCAL|put:LOCAL:REMOTE...");
		return 2;
	}
	const pkg = path.join(path.dirname(require.resolve("basic-ftp")), "..", "package.json");
	console.log(`basic-ftp ${JSON.parse(fs.readFileSync(pkg, "utf8")).version}`);
	const version = `TLSv${argv[2]}`;
	const client = new ftp.Client(20000);
	try {
		await client.access({
			host: "127.0.0.1",
			port: Number(argv[0]),
			user: "anonymous",
			password: "basic-ftp@example.org",
			secure: true,
			secureOptions: { ca: fs.readFileSync(argv[1]), minVersion: version, maxVersion: version },
		});
		for (const op of argv.slice(3)) {
			const [verb, from, to] = op.split(":");
			if (verb === "get") {
				await client.downloadTo(to, from);
				console.log(`get ${from} ${fs.statSync(to).size}`);
			} else if (verb === "put") {
				await client.uploadFrom(from, to);
				console.log(`put ${to} ${await client.size(to)}`);
			} else {
				console.error(`unknown operation ${op}`);
				return 2;
			}
		}
		console.log(client.ftp.socket.getProtocol());
		return 0;
	} catch (err) {
		console.error(`basic-ftp: ${err.message}`);
		return 1;
	} finally {
		client.close();
	}
}

main(process.argv.slice(2)).then((code) => { process.exitCode = code; });
