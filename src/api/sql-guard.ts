/**
 * A first gate for the analyst endpoint: exactly one statement, of a reading kind, that writes
 * no file. The main guarantee is ClickHouse's `readonly = 1` on the connection the statement
 * runs on (it refuses writes, settings changes and table functions such as file() and url());
 * this gate turns the obvious cases into a clear 400 first, and refuses what readonly does not
 * cover: `INTO OUTFILE`, which would let a reader write files on the engine's machine.
 */
const READING = new Set(['SELECT', 'WITH', 'SHOW', 'DESCRIBE', 'DESC', 'EXPLAIN', 'EXISTS']);

export type SqlVerdict =
  { readonly ok: true; readonly sql: string } | { readonly ok: false; readonly reason: string };

export function checkReadOnlySql(text: string): SqlVerdict {
  const sql = text.trim().replace(/;\s*$/, '');
  const code = codeOnly(sql);
  if (code.trim() === '') return { ok: false, reason: 'the body must hold one SQL statement' };
  if (code.includes(';')) return { ok: false, reason: 'only one statement is allowed' };
  const first = /^[\s(]*([A-Za-z]+)/.exec(code)?.[1]?.toUpperCase() ?? '';
  if (!READING.has(first)) {
    return {
      ok: false,
      reason: `only SELECT, WITH, SHOW, DESCRIBE and EXPLAIN are allowed, not ${first || 'this'}`,
    };
  }
  if (/\bINTO\s+OUTFILE\b/i.test(code))
    return { ok: false, reason: 'INTO OUTFILE is not allowed: results come back in the response' };
  return { ok: true, sql };
}

/**
 * The statement with string literals, quoted identifiers and comments blanked out, so that
 * keywords and semicolons are only found where ClickHouse would read them as such.
 */
function codeOnly(sql: string): string {
  let out = '';
  let i = 0;
  while (i < sql.length) {
    const c = sql[i]!;
    let end = i + 1;
    if (c === "'" || c === '"' || c === '`') end = closing(sql, i, c) + 1;
    else if ((c === '-' && sql[i + 1] === '-') || c === '#') end = lineEnd(sql, i);
    else if (c === '/' && sql[i + 1] === '*') {
      const close = sql.indexOf('*/', i + 2);
      end = close < 0 ? sql.length : close + 2;
    } else {
      out += c;
      i = end;
      continue;
    }
    out += ' ';
    i = end;
  }
  return out;
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

function lineEnd(sql: string, start: number): number {
  const end = sql.indexOf('\n', start);
  return end < 0 ? sql.length : end;
}
