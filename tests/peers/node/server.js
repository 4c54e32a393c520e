'use strict';
// A feed server on the npm package `soupbintcp` (node-soupbintcp), as an application would
// write one: 20 messages, replay from the requested sequence number (0: new messages only),
// credentials user/secret (case-insensitive, as the spec says), session NODESESS. Prints "listening PORT" once it listens.
const soupbintcp = require('soupbintcp');

const SESSION = 'NODESESS';
const history = Array.from({ length: 20 }, (_, i) => Buffer.from(`m${i + 1}`));

const server = new soupbintcp.Server({ host: '127.0.0.1', port: Number(process.argv[2] || 0) }, () => {
  console.log(`listening ${server.address().port}`);
});

server.on('session', (session) => {
  session.on('login', (request) => {
    if (request.username.trim().toLowerCase() !== 'user' || request.password.trim().toLowerCase() !== 'secret') {
      session.reject({ rejectReasonCode: 'A' });
      session.end();
      return;
    }
    const asked = request.requestedSession.trim();
    if (asked !== '' && asked !== SESSION) {
      session.reject({ rejectReasonCode: 'S' });
      session.end();
      return;
    }
    let next = Number.isNaN(request.requestedSequenceNumber) ? 1 : request.requestedSequenceNumber;
    if (next === 0 || next > history.length + 1) next = history.length + 1;
    session.accept({ session: SESSION, sequenceNumber: next });
    for (const message of history.slice(next - 1)) session.send(message);
  });
  session.on('logout', () => session.end());
  session.on('error', () => session.end());
});

process.on('SIGTERM', () => process.exit(0));
