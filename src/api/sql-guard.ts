/**
 * A first, cheap gate for the analyst endpoint: exactly one statement, of a reading kind.
 * The real guarantee is ClickHouse's `readonly = 1` on the connection the statement runs on;
 * this gate turns the obvious cases into a clear 400 before ClickHouse sees them.
 */
const READING = new Set(['SELECT', 'WITH', 'SHOW', 'DESCRIBE', 'DESC', 'EXPLAIN', 'EXISTS']);

export type SqlVerdict =
  { readonly ok: true; readonly sql: string } | { readonly ok: false; readonly reason: string };

export function checkReadOnlySql(text: string): SqlVerdict {
  const sql = stripTrailingSemicolon(text.trim());
  if (sql === '') return { ok: false, reason: 'the body must hold one SQL statement' };
  if (hasSecondStatement(sql)) return { ok: false, reason: 'only one statement is allowed' };
  const first = /^[\s(]*([A-Za-z]+)/.exec(skipComments(sql))?.[1]?.toUpperCase() ?? '';
  if (!READING.has(first)) {
    return {
      ok: false,
      reason: `only SELECT, WITH, SHOW, DESCRIBE and EXPLAIN are allowed, not ${first || 'this'}`,
    };
  }
  return { ok: true, sql };
}

function stripTrailingSemicolon(sql: string): string {
  return sql.replace(/;\s*$/, '');
}

function skipComments(sql: string): string {
  return sql.replace(/^(\s*(--[^\n]*\n|#[^\n]*\n|\/\*[\s\S]*?\*\/))*/, '');
}

/** A ';' outside string literals, quoted identifiers and comments. */
function hasSecondStatement(sql: string): boolean {
  for (let i = 0; i < sql.length; i++) {
    const c = sql[i];
    if (c === "'" || c === '"' || c === '`') {
      i = closing(sql, i, c);
    } else if (c === '-' && sql[i + 1] === '-') {
      i = endOfLine(sql, i);
    } else if (c === '#') {
      i = endOfLine(sql, i);
    } else if (c === '/' && sql[i + 1] === '*') {
      const end = sql.indexOf('*/', i + 2);
      i = end < 0 ? sql.length : end + 1;
    } else if (c === ';') {
      return true;
    }
  }
  return false;
}

function closing(sql: string, start: number, quote: string): number {
  for (let i = start + 1; i < sql.length; i++) {
    if (sql[i] === '\\') i++;
    else if (sql[i] === quote) {
      if (sql[i + 1] === quote) i++;
      else return i;
    }
  }
  return sql.length;
}

function endOfLine(sql: string, start: number): number {
  const end = sql.indexOf('\n', start);
  return end < 0 ? sql.length : end;
}
