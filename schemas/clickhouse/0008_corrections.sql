-- Corrections (domain C1–C3): credit CDRs written by the API. `correction` says why a credit
-- exists ('cancellation' or 'refund'; '' on debit CDRs), `request_id` makes a refund
-- idempotent (one CDR per session and request id, looked up before writing), `requested_by`
-- keeps the role and organization of the API key that asked for it.
ALTER TABLE cdrs ADD COLUMN IF NOT EXISTS correction LowCardinality(String) DEFAULT '' AFTER credit_reference_id;
ALTER TABLE cdrs ADD COLUMN IF NOT EXISTS request_id String DEFAULT '' AFTER correction;
ALTER TABLE cdrs ADD COLUMN IF NOT EXISTS requested_by String DEFAULT '' AFTER request_id;

-- A refund corrects an amount, not the session: it counts as no session in the aggregates
-- (a cancellation counts -1, as before). The views are recreated with that rule; the tables
-- they feed keep their rows. Migrations run before the processor writes anything.
DROP VIEW IF EXISTS energy_revenue_hourly_mv;
CREATE MATERIALIZED VIEW IF NOT EXISTS energy_revenue_hourly_mv TO energy_revenue_hourly AS
SELECT
    toStartOfHour(created_at) AS hour,
    operator_id,
    site_id,
    currency,
    sum(multiIf(kind = 'debit', 1, correction = 'refund', 0, -1)) AS sessions,
    sum(energy_wh) AS energy_wh,
    sum(total_excl_vat) AS total_excl_vat,
    sum(total_vat) AS total_vat,
    sum(total_incl_vat) AS total_incl_vat
FROM cdrs
GROUP BY hour, operator_id, site_id, currency;

DROP VIEW IF EXISTS energy_revenue_daily_mv;
CREATE MATERIALIZED VIEW IF NOT EXISTS energy_revenue_daily_mv TO energy_revenue_daily AS
SELECT
    toDate(created_at) AS day,
    operator_id,
    site_id,
    currency,
    sum(multiIf(kind = 'debit', 1, correction = 'refund', 0, -1)) AS sessions,
    sum(energy_wh) AS energy_wh,
    sum(total_excl_vat) AS total_excl_vat,
    sum(total_vat) AS total_vat,
    sum(total_incl_vat) AS total_incl_vat
FROM cdrs
GROUP BY day, operator_id, site_id, currency;

DROP VIEW IF EXISTS charger_usage_daily_mv;
CREATE MATERIALIZED VIEW IF NOT EXISTS charger_usage_daily_mv TO charger_usage_daily AS
SELECT
    toDate(started_at) AS day,
    operator_id,
    site_id,
    charger_id,
    connector_id,
    sum(multiIf(kind = 'debit', 1, correction = 'refund', 0, -1)) AS sessions,
    sum(energy_wh) AS energy_wh,
    sum(if(kind = 'credit', -toInt64(charging_s), toInt64(charging_s))) AS charging_s,
    sum(if(kind = 'credit', -toInt64(parking_s), toInt64(parking_s))) AS parking_s
FROM cdrs
GROUP BY day, operator_id, site_id, charger_id, connector_id;
