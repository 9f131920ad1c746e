#!/usr/bin/env node
// Trims GitHub's OpenAPI description to the endpoints the client and simulator use
// (runners; the repository reads of the policy checks), keeping every component those paths reference (transitively), so Prism starts
// in a second instead of parsing 13 MB.
// Usage: trim-openapi.js IN.json OUT.json
//        trim-openapi.js --check OUT.json   (exit 1 if OUT lacks a path kept below)
'use strict';
const fs = require('fs');

const KEEP = [
  '/orgs/{org}/actions/runners',
  '/orgs/{org}/actions/runners/{runner_id}',
  '/orgs/{org}/actions/runners/downloads',
  '/orgs/{org}/actions/runners/registration-token',
  '/orgs/{org}/actions/runners/remove-token',
  '/orgs/{org}/actions/runners/generate-jitconfig',
  '/orgs/{org}/actions/runner-groups',
  '/repos/{owner}/{repo}/actions/runners',
  '/repos/{owner}/{repo}/actions/runners/{runner_id}',
  '/repos/{owner}/{repo}/actions/runners/downloads',
  '/repos/{owner}/{repo}/actions/runners/registration-token',
  '/repos/{owner}/{repo}/actions/runners/remove-token',
  '/repos/{owner}/{repo}/actions/runners/generate-jitconfig',
  // The policy checks' repository reads.
  '/repos/{owner}/{repo}',
  '/repos/{owner}/{repo}/branches/{branch}',
  '/repos/{owner}/{repo}/branches/{branch}/protection',
  '/repos/{owner}/{repo}/branches/{branch}/protection/required_pull_request_reviews',
  '/repos/{owner}/{repo}/collaborators',
  '/repos/{owner}/{repo}/collaborators/{username}/permission',
  '/repos/{owner}/{repo}/pulls',
  '/repos/{owner}/{repo}/issues/{issue_number}/comments',
  '/rate_limit',
];

// A cache shared by several checkouts may hold a spec trimmed by an older list: the
// setup script asks, and trims again when a path is missing.
if (process.argv[2] === '--check') {
  const have = JSON.parse(fs.readFileSync(process.argv[3], 'utf8')).paths;
  const missing = KEEP.filter((p) => !have[p]);
  if (missing.length) console.error(`missing: ${missing.join(' ')}`);
  process.exit(missing.length ? 1 : 0);
}

const [input, output] = process.argv.slice(2);
if (!input || !output) {
  console.error('usage: trim-openapi.js IN.json OUT.json');
  process.exit(2);
}
const spec = JSON.parse(fs.readFileSync(input, 'utf8'));

const paths = {};
for (const p of KEEP) {
  if (!spec.paths[p]) throw new Error(`path missing from the description: ${p}`);
  // Only the methods we call: the repository paths also carry writes we never make.
  paths[p] = p.startsWith('/repos/{owner}/{repo}/actions') || p.startsWith('/orgs/')
    ? spec.paths[p]
    : { parameters: spec.paths[p].parameters, get: spec.paths[p].get };
}

// Collect '#/components/KIND/NAME' references, following them transitively.
const wanted = new Set();
function walk(node) {
  if (Array.isArray(node)) return node.forEach(walk);
  if (node === null || typeof node !== 'object') return;
  for (const [key, value] of Object.entries(node)) {
    if (key === '$ref' && typeof value === 'string' && value.startsWith('#/components/')) {
      if (!wanted.has(value)) {
        wanted.add(value);
        const [, , kind, name] = value.split('/');
        const target = spec.components[kind] && spec.components[kind][name];
        if (!target) throw new Error(`dangling reference ${value}`);
        walk(target);
      }
    } else {
      walk(value);
    }
  }
}
walk(paths);

const components = {};
for (const ref of wanted) {
  const [, , kind, name] = ref.split('/');
  components[kind] = components[kind] || {};
  components[kind][name] = spec.components[kind][name];
}

const trimmed = { ...spec, paths, components };
delete trimmed.webhooks;
delete trimmed['x-webhooks'];
fs.writeFileSync(output, JSON.stringify(trimmed));
console.error(`kept ${KEEP.length} paths and ${wanted.size} components`);
