#!/usr/bin/env node
// Validates an AsyncAPI document with the AsyncAPI project's own parser (@asyncapi/parser, pinned
// in package.json / package-lock.json; `npm ci` here from `make install`).
//
//   node deploy/asyncapi-tools/validate.cjs docs/asyncapi/asyncapi.json
//
// Prints every diagnostic (the parser's JSON Schema validation of the document and its Spectral
// ruleset: broken references, duplicate ids, unused components, ...) and exits 1 on any of
// severity error or warning, so the catalogue stays clean; 0 otherwise. Offline: the document
// has no external $ref.
"use strict";
const fs = require("fs");
const path = require("path");
const { Parser, DiagnosticSeverity } = require("@asyncapi/parser");

async function main(file) {
  if (!file) {
    console.error("usage: validate.cjs <asyncapi.json>");
    return 2;
  }
  const text = fs.readFileSync(file, "utf8");
  const parser = new Parser();
  // One parse: the document's JSON Schema validation, its references, and the parser's ruleset.
  const { document, diagnostics } = await parser.parse(text, { source: path.resolve(file) });
  const names = { [DiagnosticSeverity.Error]: "error", [DiagnosticSeverity.Warning]: "warning",
                  [DiagnosticSeverity.Information]: "info", [DiagnosticSeverity.Hint]: "hint" };
  let failing = 0;
  for (const d of diagnostics) {
    const where = (d.path || []).join("/");
    console.log(`${file}: ${names[d.severity] || d.severity} ${d.code}: ${d.message} at /${where}`);
    if (d.severity === DiagnosticSeverity.Error || d.severity === DiagnosticSeverity.Warning) failing += 1;
  }
  if (failing || !document) {
    console.error(`${file}: ${failing} error(s)/warning(s) from @asyncapi/parser`);
    return 1;
  }
  console.log(`${file}: valid AsyncAPI ${document.version()} ` +
              `(${document.channels().length} channels, ${document.operations().length} operations, ` +
              `${document.messages().length} messages)`);
  return 0;
}

main(process.argv[2]).then((code) => process.exit(code), (error) => {
  console.error(error && error.stack || String(error));
  process.exit(1);
});
