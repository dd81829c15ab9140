-- Bars without a volume: Twelve Data sends none for forex and crypto (nor
-- for pre/post-market bars). Such a bar keeps volume NULL rather than a
-- made-up 0, and an hour made only of them has a NULL volume in gold
-- (sum() skips NULLs; VWAP already counts only bars with both vwap and
-- volume).
ALTER TABLE silver.bars ALTER COLUMN volume DROP NOT NULL;
ALTER TABLE gold.bars_hourly ALTER COLUMN volume DROP NOT NULL;
