import { describe, expect, it } from 'vitest';
import { checkReadOnlySql } from '../../src/api/sql-guard.js';

describe('analyst SQL gate', () => {
  it('lets one reading statement through, trailing semicolon and comments included', () => {
    for (const sql of [
      'SELECT 1',
      'select 1;',
      'WITH x AS (SELECT 1) SELECT * FROM x',
      'SHOW TABLES',
      'DESCRIBE cdrs',
      'EXPLAIN SELECT 1',
      "-- note\nSELECT ';' AS semicolon",
      "SELECT 'it''s; fine'",
      '(SELECT 1)',
      "SELECT 'INTO OUTFILE' AS words",
    ]) {
      expect(checkReadOnlySql(sql).ok, sql).toBe(true);
    }
  });

  it('refuses writes and second statements', () => {
    for (const sql of [
      'INSERT INTO t VALUES (1)',
      'DROP TABLE cdrs',
      'SELECT 1; DROP TABLE cdrs',
      'ALTER TABLE x DELETE WHERE 1',
      'SYSTEM SHUTDOWN',
      'SET readonly = 0',
      '',
      '  ;  ',
      'SELECT 1 /* ; */ ; SELECT 2',
      "SELECT 'x' INTO OUTFILE '/tmp/x' TRUNCATE",
      "select 1 into   outfile 'f'",
    ]) {
      expect(checkReadOnlySql(sql).ok, sql).toBe(false);
    }
  });
});
