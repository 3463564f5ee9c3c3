/**
 * The Grafana dashboards of grafana/dashboards/, as data: `npm run dashboards` writes them,
 * and a test checks that the committed files are what this produces, that every metric a
 * panel uses is exported, and (against a real Prometheus and the store) that every panel
 * shows data.
 */

export const PROMETHEUS_UID = 'chargestream-prometheus';
export const CLICKHOUSE_UID = 'chargestream-clickhouse';

const PROMETHEUS = { type: 'prometheus', uid: PROMETHEUS_UID } as const;
const CLICKHOUSE = { type: 'grafana-clickhouse-datasource', uid: CLICKHOUSE_UID } as const;

/** A Prometheus query and its legend. */
interface Prom {
  readonly expr: string;
  readonly legend?: string;
}

interface PanelSpec {
  readonly title: string;
  readonly unit: string;
  readonly description?: string;
  readonly type?: 'timeseries' | 'stat' | 'table' | 'barchart';
  /** Prometheus queries, or one ClickHouse SQL query (Grafana macros $__timeFilter …). */
  readonly prom?: readonly Prom[];
  readonly sql?: string;
  readonly width?: number;
}

const rate = (metric: string, by?: string) =>
  by === undefined
    ? `sum(rate(${metric}[$__rate_interval]))`
    : `sum by (${by}) (rate(${metric}[$__rate_interval]))`;

const quantile = (q: number, histogram: string, by?: string) =>
  `histogram_quantile(${q}, sum by (le${by === undefined ? '' : `, ${by}`}) (rate(${histogram}_bucket[$__rate_interval])))`;

const GATEWAY: readonly PanelSpec[] = [
  {
    title: 'Connections by protocol and state',
    unit: 'short',
    prom: [
      {
        expr: 'sum by (protocol, state) (chargestream_gateway_connections)',
        legend: '{{protocol}} {{state}}',
      },
    ],
  },
  {
    title: 'Connections opened',
    unit: 'cps',
    prom: [{ expr: rate('chargestream_gateway_connections_opened_total'), legend: 'opened/s' }],
  },
  {
    title: 'Frames in by action',
    unit: 'reqps',
    prom: [
      {
        expr: rate('chargestream_gateway_frames_total{direction="in"}', 'action'),
        legend: '{{action}}',
      },
    ],
  },
  {
    title: 'Frames out by action',
    unit: 'reqps',
    prom: [
      {
        expr: rate('chargestream_gateway_frames_total{direction="out"}', 'action'),
        legend: '{{action}}',
      },
    ],
  },
  {
    title: 'Ack latency (arrival to CALLRESULT, durable in between)',
    unit: 's',
    prom: [
      { expr: quantile(0.5, 'chargestream_gateway_ack_latency_seconds'), legend: 'p50' },
      { expr: quantile(0.99, 'chargestream_gateway_ack_latency_seconds'), legend: 'p99' },
    ],
  },
  {
    title: 'Embedded log write (one group commit)',
    unit: 's',
    description:
      'The synchronous write an acknowledgement waits for (embedded deployment; empty on Kafka). A p99 that rises with the ack latency points at the disk.',
    prom: [
      { expr: quantile(0.5, 'chargestream_bus_log_write_duration_seconds'), legend: 'p50' },
      { expr: quantile(0.99, 'chargestream_bus_log_write_duration_seconds'), legend: 'p99' },
    ],
  },
  {
    title: 'Acknowledged transaction messages',
    unit: 'reqps',
    prom: [{ expr: rate('chargestream_gateway_acks_total'), legend: 'acks/s' }],
  },
  {
    title: 'CALLERRORs by code',
    unit: 'reqps',
    prom: [{ expr: rate('chargestream_gateway_callerrors_total', 'code'), legend: '{{code}}' }],
  },
  {
    title: 'Upgrades refused by reason',
    unit: 'reqps',
    prom: [
      {
        expr: rate('chargestream_gateway_upgrade_refusals_total', 'reason'),
        legend: '{{reason}}',
      },
    ],
  },
  {
    title: 'Send backpressure, drops, rate limits',
    unit: 'reqps',
    prom: [
      { expr: rate('chargestream_gateway_send_backpressure_total'), legend: 'queued behind' },
      { expr: rate('chargestream_gateway_sends_dropped_total'), legend: 'dropped' },
      { expr: rate('chargestream_gateway_rate_limited_total'), legend: 'rate limited' },
    ],
  },
  {
    title: 'Largest send buffer of a slow reader',
    unit: 'bytes',
    prom: [{ expr: 'max(chargestream_gateway_send_buffer_peak_bytes)', legend: 'peak' }],
  },
  {
    title: 'CPU by process',
    unit: 'percentunit',
    prom: [
      {
        expr: 'sum by (instance) (rate(chargestream_process_cpu_seconds_total[$__rate_interval]))',
        legend: '{{instance}}',
      },
    ],
  },
  {
    title: 'Memory by process',
    unit: 'bytes',
    prom: [
      { expr: 'chargestream_process_resident_memory_bytes', legend: '{{instance}} resident' },
      { expr: 'chargestream_nodejs_heap_size_used_bytes', legend: '{{instance}} heap used' },
    ],
  },
  {
    title: 'Event loop lag p99',
    unit: 's',
    prom: [{ expr: 'chargestream_nodejs_eventloop_lag_p99_seconds', legend: '{{instance}}' }],
  },
  {
    title: 'Open file descriptors (sockets)',
    unit: 'short',
    prom: [
      { expr: 'chargestream_process_open_fds', legend: '{{instance}} open' },
      { expr: 'chargestream_process_max_fds', legend: '{{instance}} limit' },
    ],
  },
];

const PIPELINE: readonly PanelSpec[] = [
  {
    title: 'Bus: events produced and consumed',
    unit: 'reqps',
    prom: [
      { expr: rate('chargestream_bus_produced_events_total', 'bus'), legend: 'produced {{bus}}' },
      { expr: rate('chargestream_bus_consumed_events_total', 'bus'), legend: 'consumed {{bus}}' },
    ],
  },
  {
    title: 'Consumer lag by partition',
    unit: 'short',
    prom: [
      {
        expr: 'sum by (partition) (chargestream_bus_consumer_lag_messages)',
        legend: 'partition {{partition}}',
      },
    ],
  },
  {
    title: 'Events waiting on the bus',
    unit: 'short',
    prom: [{ expr: 'sum(chargestream_bus_unacknowledged_events)', legend: 'unacknowledged' }],
  },
  {
    title: 'Batch size (events per worker task)',
    unit: 'short',
    prom: [
      { expr: quantile(0.5, 'chargestream_bus_batch_size_events'), legend: 'p50' },
      { expr: quantile(0.99, 'chargestream_bus_batch_size_events'), legend: 'p99' },
    ],
  },
  {
    title: 'Worker pool: queue depth and utilization',
    unit: 'short',
    prom: [
      { expr: 'sum(chargestream_worker_queue_depth_tasks)', legend: 'queued tasks' },
      {
        expr: `${rate('chargestream_worker_busy_seconds_total')} / sum(chargestream_worker_threads)`,
        legend: 'utilization (0–1)',
      },
      { expr: 'sum(chargestream_worker_threads)', legend: 'threads' },
    ],
  },
  {
    title: 'Session states brought to the workers: kept on the thread or parsed',
    unit: 'reqps',
    prom: [{ expr: rate('chargestream_worker_states_total', 'source'), legend: '{{source}}' }],
  },
  {
    title: 'Worker task duration (queue wait included)',
    unit: 's',
    prom: [
      { expr: quantile(0.5, 'chargestream_worker_task_duration_seconds'), legend: 'p50' },
      { expr: quantile(0.99, 'chargestream_worker_task_duration_seconds'), legend: 'p99' },
    ],
  },
  {
    title: 'Readings by validity',
    unit: 'reqps',
    prom: [{ expr: rate('chargestream_readings_total', 'validity'), legend: '{{validity}}' }],
  },
  {
    title: 'Rejected readings by reason',
    unit: 'reqps',
    prom: [
      {
        expr: rate('chargestream_readings_total{validity="rejected"}', 'reason'),
        legend: '{{reason}}',
      },
    ],
  },
  {
    title: 'Rating: readings rated and time per reading',
    unit: 's',
    prom: [
      {
        expr: `${rate('chargestream_rating_seconds_total')} / ${rate('chargestream_rating_readings_total')}`,
        legend: 'seconds per reading',
      },
    ],
  },
  {
    title: 'Session transitions by status',
    unit: 'reqps',
    prom: [
      { expr: rate('chargestream_sessions_transitions_total', 'status'), legend: '{{status}}' },
    ],
  },
  {
    title: 'Open sessions and expirations',
    unit: 'short',
    prom: [
      { expr: 'sum(chargestream_sessions_open)', legend: 'open' },
      {
        expr: 'sum(increase(chargestream_sessions_expired_total[$__rate_interval]))',
        legend: 'expired',
      },
    ],
  },
  {
    title: 'Notifications sent and failed',
    unit: 'reqps',
    prom: [
      { expr: rate('chargestream_notifications_sent_total', 'event'), legend: 'sent {{event}}' },
      {
        expr: rate('chargestream_notifications_failed_total', 'publisher'),
        legend: 'failed {{publisher}}',
      },
    ],
  },
  {
    title: 'Webhook notifications',
    unit: 'reqps',
    prom: [
      { expr: rate('chargestream_webhook_deliveries_total', 'outcome'), legend: '{{outcome}}' },
      { expr: rate('chargestream_webhook_attempts_total'), legend: 'attempts' },
    ],
  },
  {
    title: 'Store insert latency by table (p99)',
    unit: 's',
    prom: [
      {
        expr: quantile(0.99, 'chargestream_store_insert_duration_seconds', 'table'),
        legend: '{{table}}',
      },
    ],
  },
  {
    title: 'Store rows by table',
    unit: 'short',
    prom: [{ expr: rate('chargestream_store_rows_total', 'table'), legend: '{{table}}' }],
  },
  {
    title: 'Store retries and failures',
    unit: 'reqps',
    prom: [
      { expr: rate('chargestream_store_retries_total'), legend: 'retries' },
      { expr: rate('chargestream_store_failures_total', 'table'), legend: 'failed {{table}}' },
    ],
  },
  {
    title: 'Store write buffer',
    unit: 'short',
    prom: [
      { expr: 'sum(chargestream_store_buffer_batches)', legend: 'batches' },
      { expr: 'sum(chargestream_store_buffer_rows)', legend: 'rows' },
    ],
  },
];

const BUSINESS: readonly PanelSpec[] = [
  {
    title: 'Sessions started by status',
    unit: 'short',
    sql: `SELECT $__timeInterval(started_at) AS time, status, count() AS sessions
FROM sessions WHERE $__timeFilter(started_at)
GROUP BY time, status ORDER BY time`,
  },
  {
    title: 'Energy delivered (kWh)',
    unit: 'kwatth',
    sql: `SELECT $__timeInterval(started_at) AS time, sum(energy_wh) / 1000 AS kWh
FROM sessions WHERE $__timeFilter(started_at) AND status IN ('ended', 'rated')
GROUP BY time ORDER BY time`,
  },
  {
    title: 'Revenue incl. VAT by currency',
    unit: 'short',
    sql: `SELECT $__timeInterval(created_at) AS time, currency, sum(total_incl_vat) AS revenue
FROM cdrs WHERE $__timeFilter(created_at)
GROUP BY time, currency ORDER BY time`,
  },
  {
    title: 'Totals in the period',
    unit: 'short',
    type: 'table',
    sql: `SELECT currency, count() AS cdrs, sum(energy_wh) / 1000 AS kWh,
       sum(total_excl_vat) AS excl_vat, sum(total_vat) AS vat, sum(total_incl_vat) AS incl_vat
FROM cdrs WHERE $__timeFilter(created_at)
GROUP BY currency ORDER BY currency`,
  },
  {
    title: 'Rejected readings by reason',
    unit: 'short',
    type: 'barchart',
    sql: `SELECT reject_reason AS reason, count() AS readings
FROM meter_readings WHERE $__timeFilter(ts) AND NOT valid
GROUP BY reason ORDER BY readings DESC`,
  },
  {
    title: 'Sessions by flag',
    unit: 'short',
    type: 'barchart',
    sql: `SELECT arrayJoin(if(empty(flags), ['none'], flags)) AS flag, count() AS sessions
FROM sessions WHERE $__timeFilter(started_at)
GROUP BY flag ORDER BY sessions DESC`,
  },
  {
    title: 'Malfunctions: connector faults by error code',
    unit: 'short',
    type: 'table',
    sql: `SELECT charger_id, connector_id, status, error_code, count() AS reports, max(ts) AS last_seen
FROM connector_status WHERE $__timeFilter(ts) AND (status = 'Faulted' OR error_code NOT IN ('', 'NoError'))
GROUP BY charger_id, connector_id, status, error_code ORDER BY reports DESC LIMIT 50`,
  },
  {
    title: 'Top chargers by energy',
    unit: 'short',
    type: 'table',
    sql: `SELECT charger_id, count() AS sessions, sum(energy_wh) / 1000 AS kWh,
       sum(charging_s) / 3600 AS charging_h, sum(parking_s) / 3600 AS parking_h
FROM sessions WHERE $__timeFilter(started_at)
GROUP BY charger_id ORDER BY kWh DESC LIMIT 20`,
  },
];

export interface Dashboard {
  readonly file: string;
  readonly json: Record<string, unknown>;
}

function panel(spec: PanelSpec, id: number): Record<string, unknown> {
  const width = spec.width ?? 12;
  const x = ((id - 1) % 2) * 12;
  const y = Math.floor((id - 1) / 2) * 8;
  const type = spec.type ?? 'timeseries';
  const common = {
    id,
    type,
    title: spec.title,
    gridPos: { h: 8, w: width, x, y },
    fieldConfig: { defaults: { unit: spec.unit }, overrides: [] },
    options: {},
    ...(spec.description === undefined ? {} : { description: spec.description }),
  };
  if (spec.sql !== undefined) {
    return {
      ...common,
      datasource: CLICKHOUSE,
      targets: [
        {
          refId: 'A',
          datasource: CLICKHOUSE,
          editorType: 'sql',
          // The plugin's formats: 0 time series, 1 table.
          format: type === 'timeseries' ? 0 : 1,
          queryType: type === 'timeseries' ? 'timeseries' : 'table',
          rawSql: spec.sql,
        },
      ],
    };
  }
  return {
    ...common,
    datasource: PROMETHEUS,
    targets: (spec.prom ?? []).map((q, i) => ({
      refId: String.fromCharCode(65 + i),
      datasource: PROMETHEUS,
      expr: q.expr,
      legendFormat: q.legend ?? '__auto',
      range: true,
    })),
  };
}

function dashboard(uid: string, title: string, specs: readonly PanelSpec[]) {
  return {
    uid,
    title,
    tags: ['chargestream'],
    timezone: 'utc',
    schemaVersion: 39,
    version: 1,
    editable: true,
    refresh: '10s',
    time: { from: 'now-1h', to: 'now' },
    panels: specs.map((spec, i) => panel(spec, i + 1)),
  };
}

export function dashboards(): Dashboard[] {
  return [
    {
      file: 'gateway.json',
      json: dashboard('chargestream-gateway', 'chargestream — gateway', GATEWAY),
    },
    {
      file: 'pipeline.json',
      json: dashboard('chargestream-pipeline', 'chargestream — pipeline', PIPELINE),
    },
    {
      file: 'business.json',
      json: dashboard('chargestream-business', 'chargestream — business', BUSINESS),
    },
  ];
}
