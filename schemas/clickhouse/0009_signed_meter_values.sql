-- R5.2: signed meter values (OCMF in OCPP 1.6 SignedData, OCPP 2.0.1 signedMeterValue) kept
-- byte for byte with the reading they sign; a CDR carries its session's first and last signed
-- records, so a customer can verify the bill with the meter's public key.
ALTER TABLE meter_readings ADD COLUMN IF NOT EXISTS signed_data String DEFAULT '' CODEC(ZSTD(3)) AFTER reject_reason;
ALTER TABLE meter_readings ADD COLUMN IF NOT EXISTS signing_method LowCardinality(String) DEFAULT '' AFTER signed_data;
ALTER TABLE meter_readings ADD COLUMN IF NOT EXISTS encoding_method LowCardinality(String) DEFAULT '' AFTER signing_method;
ALTER TABLE meter_readings ADD COLUMN IF NOT EXISTS public_key String DEFAULT '' CODEC(ZSTD(3)) AFTER encoding_method;
-- Each a JSON object {ts, data, signingMethod, encodingMethod, publicKey}, or '' without one.
ALTER TABLE cdrs ADD COLUMN IF NOT EXISTS signed_start String DEFAULT '' CODEC(ZSTD(3)) AFTER description;
ALTER TABLE cdrs ADD COLUMN IF NOT EXISTS signed_end String DEFAULT '' CODEC(ZSTD(3)) AFTER signed_start;
