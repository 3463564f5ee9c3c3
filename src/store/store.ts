/**
 * The store: ClickHouse, embedded (chDB) or a server over HTTP, behind one interface; the
 * same SQL runs on both.
 */
export interface Store {
  /** Applies the migrations not applied yet; returns how many ran. */
  migrate(): Promise<number>;
  /**
   * Inserts JSONEachRow rows as one block. `token` deduplicates a retried insert of the same
   * rows; the insert is atomic (one block).
   */
  insert(table: string, rows: string, token: string): Promise<void>;
  /** The engine's own queries, rows parsed from JSONEachRow. */
  rows<T>(sql: string): Promise<T[]>;
  /** An analyst's statement, run read-only (ClickHouse's readonly=1) in the given output format. */
  analystQuery(sql: string, format: string): Promise<string>;
  close(): Promise<void>;
}

/** Limits on analyst queries, set on the read-only connection. */
export const ANALYST_LIMITS = {
  max_execution_time: 30,
  max_result_rows: 1_000_000,
  result_overflow_mode: 'throw',
  max_memory_usage: 4_000_000_000,
} as const;

export function parseJsonEachRow<T>(text: string): T[] {
  const rows: T[] = [];
  for (const line of text.split('\n')) if (line.length > 0) rows.push(JSON.parse(line) as T);
  return rows;
}
