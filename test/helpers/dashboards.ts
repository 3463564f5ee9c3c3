import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export const DASHBOARD_DIR = join('grafana', 'dashboards');

export interface PanelQuery {
  readonly dashboard: string;
  readonly panel: string;
  readonly kind: 'prometheus' | 'clickhouse';
  readonly query: string;
}

interface Target {
  readonly expr?: string;
  readonly rawSql?: string;
  readonly datasource: { readonly type: string };
}

/** Every query of every panel of the dashboard files Grafana loads. */
export function panelQueries(): PanelQuery[] {
  const queries: PanelQuery[] = [];
  for (const file of readdirSync(DASHBOARD_DIR).filter((f) => f.endsWith('.json'))) {
    const dashboard = JSON.parse(readFileSync(join(DASHBOARD_DIR, file), 'utf8')) as {
      panels: Array<{ title: string; targets: Target[] }>;
    };
    for (const panel of dashboard.panels) {
      for (const target of panel.targets) {
        const prometheus = target.datasource.type === 'prometheus';
        queries.push({
          dashboard: file,
          panel: panel.title,
          kind: prometheus ? 'prometheus' : 'clickhouse',
          query: (prometheus ? target.expr : target.rawSql) ?? '',
        });
      }
    }
  }
  return queries;
}

/** The engine's metric names in a PromQL expression (histogram series keep their suffix). */
export function metricNames(expr: string): string[] {
  return [...expr.matchAll(/\bchargestream_[a-z0-9_]+/g)].map((m) => m[0]);
}

/**
 * The ClickHouse data source plugin's macros as it expands them: `$__timeFilter(col)` to a
 * range of the dashboard's time, `$__timeInterval(col)` to buckets of the panel's interval.
 */
export function expandClickHouseMacros(sql: string, fromMs: number, toMs: number): string {
  const from = Math.floor(fromMs / 1000);
  const to = Math.ceil(toMs / 1000);
  return sql
    .replace(
      /\$__timeFilter\(([^)]+)\)/g,
      (_, col: string) => `${col} >= toDateTime(${from}) AND ${col} <= toDateTime(${to})`,
    )
    .replace(
      /\$__timeInterval\(([^)]+)\)/g,
      (_, col: string) => `toStartOfInterval(toDateTime(${col}), INTERVAL 60 second)`,
    );
}
