// HTTPS request with a client certificate, the classic Node.js mTLS client:
//   node https_client.js URL CA CERT KEY
// Prints {"status": N, "body": "..."} and exits 0 when a response arrived, 1 otherwise.
"use strict";
const fs = require("fs");
const https = require("https");

const [url, ca, cert, key] = process.argv.slice(2);
const request = https.request(url, {
  method: "GET",
  ca: fs.readFileSync(ca),
  cert: fs.readFileSync(cert),
  key: fs.readFileSync(key),
  timeout: 10000,
}, (response) => {
  let body = "";
  response.setEncoding("utf8");
  response.on("data", (chunk) => { body += chunk; });
  response.on("end", () => {
    console.log(JSON.stringify({ status: response.statusCode, body }));
    process.exit(0);
  });
});
request.on("timeout", () => request.destroy(new Error("timed out")));
request.on("error", (error) => {
  console.log(JSON.stringify({ error: error.message }));
  process.exit(1);
});
request.end();
