import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { projectRoot } from '../lib/paths.js';
import { dashboards } from './dashboards.js';

/** `npm run dashboards`: writes grafana/dashboards/*.json from src/metrics/dashboards.ts. */
const dir = join(projectRoot, 'grafana', 'dashboards');
mkdirSync(dir, { recursive: true });
for (const { file, json } of dashboards()) {
  writeFileSync(join(dir, file), JSON.stringify(json, null, 2) + '\n');
  process.stdout.write(`wrote grafana/dashboards/${file}\n`);
}
