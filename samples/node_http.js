// A Node.js HTTP server on 127.0.0.1 whose requests burn CPU in two JavaScript functions, for checking that
// samples in JIT code are named (run it with `node --perf-basic-prof`, which writes /tmp/perf-PID.map).
//
//   node --perf-basic-prof node_http.js PORT   (PORT 0 picks a free port; prints "listening PORT")
//
//   GET /burn?n=N   N rounds (default 20) of: burnSlow (3 units of work, ≈ 75 %), burnFast (1 unit, ≈ 25 %)
//
// Each unit mixes an array of numbers in a loop (optimized JIT code), then builds a string and Buffers
// (allocation and copies in V8's runtime, Node's C++ and libc: some samples' leaves are native, under the JS
// frames).
'use strict';
const http = require('http');

const data = Array.from({ length: 2048 }, (_, i) => (i * 2654435761) >>> 0);

// The loops are in the two functions themselves, so that V8 optimizes each of them (on-stack replacement,
// then TurboFan): an interpreted function has no frame of its own to name, only the interpreter's. The
// request handler calls each once and stays unoptimized, so TurboFan never inlines them into it.
function burnSlow(seed, rounds) {
  let acc = seed | 0;
  for (let round = 0; round < rounds * 72; round++) {
    for (let i = 0; i < data.length; i++) {
      acc = (acc ^ data[i]) | 0;
      acc = (acc ^ (acc << 13)) | 0;
      acc = (acc ^ (acc >>> 17)) | 0;
      acc = (acc ^ (acc << 5)) | 0;
    }
    if (round % 24 === 23) acc = churn(acc);
  }
  return acc;
}

function burnFast(seed, rounds) {
  let acc = seed | 0;
  for (let round = 0; round < rounds * 24; round++) {
    for (let i = 0; i < data.length; i++) {
      acc = (acc ^ data[i]) | 0;
      acc = (acc ^ (acc << 13)) | 0;
      acc = (acc ^ (acc >>> 17)) | 0;
      acc = (acc ^ (acc << 5)) | 0;
    }
    if (round % 24 === 23) acc = churn(acc);
  }
  return acc;
}

// Native work under the JS frames: a string built and copied, Buffers filled, concatenated and read.
function churn(acc) {
  const text = (acc >>> 0).toString(16).repeat(256);
  const buffer = Buffer.alloc(16384, text);
  return (acc ^ buffer.readUInt32LE(acc & 1023) ^ Buffer.concat([buffer, buffer]).length) | 0;
}

const server = http.createServer((request, response) => {
  const match = /[?&]n=(\d+)/.exec(request.url);
  const rounds = match ? Number(match[1]) : 20;
  const acc = burnFast(burnSlow(1, rounds), rounds);
  response.end((acc >>> 0).toString(16) + '\n');
});

server.listen(Number(process.argv[2] || 0), '127.0.0.1', () => {
  console.log(`listening ${server.address().port}`);
});
