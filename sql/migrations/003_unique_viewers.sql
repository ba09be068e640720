-- Distinct viewers of a stream, as the media plane reports them while live.
ALTER TABLE streams ADD COLUMN unique_viewers integer NOT NULL DEFAULT 0;
