-- R2.3 of rating.md: a CDR's charging periods, as JSON — an array of { start, end (ISO-8601
-- UTC), state, energy_wh, duration_s, elements: { <dimension>: index of the pricing tariff
-- element, or null } }. Read with JSONExtract / arrayJoin(JSONExtractArrayRaw(…)).
ALTER TABLE cdrs ADD COLUMN IF NOT EXISTS charging_periods String DEFAULT '[]' CODEC(ZSTD(3)) AFTER signed_end;
