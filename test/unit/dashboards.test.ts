import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { dashboards } from '../../src/metrics/dashboards.js';
import {
  DASHBOARD_DIR,
  expandClickHouseMacros,
  metricNames,
  panelQueries,
} from '../helpers/dashboards.js';

describe('Grafana dashboards', () => {
  it('the committed files are what src/metrics/dashboards.ts defines (npm run dashboards)', () => {
    for (const { file, json } of dashboards()) {
      const onDisk: unknown = JSON.parse(readFileSync(join(DASHBOARD_DIR, file), 'utf8'));
      expect(onDisk, file).toEqual(json);
    }
  });

  it('every panel names a provisioned data source by uid, and every query is non-empty', () => {
    const provisioned = parse(
      readFileSync(join('grafana', 'provisioning', 'datasources', 'chargestream.yaml'), 'utf8'),
    ) as { datasources: Array<{ uid: string; type: string }> };
    const byUid = new Map(provisioned.datasources.map((d) => [d.uid, d.type]));
    for (const { file, json } of dashboards()) {
      for (const panel of json['panels'] as Array<{
        title: string;
        datasource: { uid: string; type: string };
        targets: Array<{ datasource: { uid: string; type: string } }>;
      }>) {
        expect(byUid.get(panel.datasource.uid), `${file} / ${panel.title}`).toBe(
          panel.datasource.type,
        );
        for (const t of panel.targets) expect(t.datasource).toEqual(panel.datasource);
      }
    }
    const queries = panelQueries();
    expect(queries.filter((q) => q.query.trim() === '')).toEqual([]);
    expect(queries.filter((q) => q.kind === 'clickhouse').length).toBeGreaterThanOrEqual(8);
  });

  it('finds metric names in PromQL and expands the ClickHouse macros', () => {
    expect(
      metricNames(
        'histogram_quantile(0.99, sum by (le) (rate(chargestream_gateway_ack_latency_seconds_bucket[1m])))',
      ),
    ).toEqual(['chargestream_gateway_ack_latency_seconds_bucket']);
    expect(
      expandClickHouseMacros(
        'SELECT $__timeInterval(ts) AS t FROM x WHERE $__timeFilter(ts)',
        1000,
        5000,
      ),
    ).toBe(
      'SELECT toStartOfInterval(toDateTime(ts), INTERVAL 60 second) AS t FROM x WHERE ts >= toDateTime(1) AND ts <= toDateTime(5)',
    );
  });
});
