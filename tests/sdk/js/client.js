// The AWS SDK for JavaScript v3 client of credfresh's SDK matrix (tests/e2e/sdk_matrix.rs);
// its packages are installed by scripts/ensure-sdk-js.sh, found through NODE_PATH.
//
//   node client.js once           one GetCallerIdentity from a fresh process
//   node client.js long SECONDS   one client, a call every 2 s for SECONDS
//
// Credentials come from the SDK's default chain (AWS_PROFILE with the shared files, or the
// container endpoint). STS is $AWS_ENDPOINT_URL_STS, passed explicitly. One JSON line per
// call: {"call", "ok", "arn", "key"} or {"call", "ok": false, "error"}; "key" is the access key
// ID that signed the request, read from its Authorization header. Secrets are never printed.
"use strict";
const { STSClient, GetCallerIdentityCommand } = require("@aws-sdk/client-sts");

async function main() {
  const [mode, seconds] = process.argv.slice(2);
  if (!(mode === "once" || (mode === "long" && Number(seconds) > 0))) {
    console.error("usage: client.js once | client.js long SECONDS");
    return 2;
  }
  const endpoint = process.env.AWS_ENDPOINT_URL_STS;
  if (!endpoint) {
    console.error("AWS_ENDPOINT_URL_STS is not set; refusing to talk to the real AWS");
    return 2;
  }
  const client = new STSClient({ endpoint, maxAttempts: 1 });
  let signedBy = null;
  // The deserialize step runs after signing: it sees the request as sent.
  client.middlewareStack.add(
    (next) => async (args) => {
      const auth = args.request.headers.authorization || args.request.headers.Authorization || "";
      const m = /Credential=([A-Z0-9]+)\//.exec(auth);
      signedBy = m ? m[1] : null;
      return next(args);
    },
    { step: "deserialize", name: "captureSigner" },
  );
  const end = Date.now() + (mode === "long" ? Number(seconds) * 1000 : 0);
  for (let call = 1; ; call++) {
    signedBy = null;
    try {
      const out = await client.send(new GetCallerIdentityCommand({}));
      console.log(JSON.stringify({ call, ok: true, arn: out.Arn, key: signedBy }));
    } catch (e) {
      console.log(JSON.stringify({ call, ok: false, error: `${e.name}: ${e.message}` }));
    }
    if (Date.now() >= end) return 0;
    await new Promise((r) => setTimeout(r, 2000));
  }
}

main().then((code) => { process.exitCode = code; });
