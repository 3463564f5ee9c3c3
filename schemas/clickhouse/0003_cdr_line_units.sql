-- The unit of each invoice line's quantity (Wh, s, session, 15min), now that lines come from
-- the OCPI tariff engine and not only ENERGY in kWh.
ALTER TABLE cdrs ADD COLUMN IF NOT EXISTS `lines.unit` Array(LowCardinality(String)) AFTER `lines.quantity`;
