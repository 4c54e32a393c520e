'use strict';
// A client on the npm package `soupbintcp` (node-soupbintcp), as an application would write
// one: log in as user/secret at sequence 1 and print each message until the connection ends.
// Usage: node client.js HOST PORT
const soupbintcp = require('soupbintcp');

const client = new soupbintcp.Client({ host: process.argv[2], port: Number(process.argv[3]) }, () => {
  client.login({ username: 'user', password: 'secret', requestedSession: '', requestedSequenceNumber: 1 });
});

client.on('accept', (accepted) => console.log(`accepted ${accepted.session} ${accepted.sequenceNumber}`));
client.on('message', (message) => console.log(message.toString()));
client.on('reject', () => process.exit(2));
client.on('ending', () => client.end());
client.on('end', () => process.exit(0));
client.on('error', (err) => {
  console.error(err.message);
  process.exit(1);
});
process.on('SIGTERM', () => process.exit(0));
