// Calls of Neon's official TypeScript client, as an application makes them, one after another.
//
//   node api_client_calls.mjs '[["createProject", {"project": {"name": "x"}}], ...]'
//
// NEON_CLIENTS is the directory the pinned clients are installed in, NEON_API_HOST the API base
// URL, NEON_API_KEY the key. An argument "$N.path.to.value" stands for that value of the N-th
// call's response data. After each call that returns operations, the script polls them until they
// end, as an application must before its next change. It prints the response data of every call
// as a JSON list; a failed call prints its status and Neon's message on stderr and exits 1.
import { createRequire } from 'node:module';

const require = createRequire(`${process.env.NEON_CLIENTS}/`);
const { createApiClient } = require('@neondatabase/api-client');

const api = createApiClient({ apiKey: process.env.NEON_API_KEY, baseURL: process.env.NEON_API_HOST });
const results = [];

function resolve(value) {
  if (typeof value === 'string' && value.startsWith('$')) {
    const [index, ...path] = value.slice(1).split('.');
    return path.reduce((found, key) => found[key], results[Number(index)]);
  }
  if (Array.isArray(value)) return value.map(resolve);
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, resolve(item)]));
  }
  return value;
}

async function settle(operations) {
  for (const operation of operations ?? []) {
    for (;;) {
      const { data } = await api.getProjectOperation(operation.project_id, operation.id);
      if (['finished', 'skipped', 'cancelled'].includes(data.operation.status)) break;
      if (data.operation.status === 'error') throw new Error(`operation ${operation.action} failed`);
      await new Promise((done) => setTimeout(done, 10));
    }
  }
}

for (const [method, ...args] of JSON.parse(process.argv[2])) {
  try {
    const { data } = await api[method](...resolve(args));
    results.push(data ?? null);
    await settle(data?.operations);
  } catch (error) {
    const status = error.response?.status ?? '';
    process.stderr.write(`${method}: ${status} ${error.response?.data?.message ?? error.message}\n`);
    process.exit(1);
  }
}
process.stdout.write(JSON.stringify(results));
