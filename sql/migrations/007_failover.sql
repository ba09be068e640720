-- Failover and drain (docs/architecture.md, "Failover and drain").

-- Billing starts at the first frame the stream's pipeline processed, not at
-- POST /api/streams: billed_until is NULL until its worker reports that
-- frame (and again after the stream was re-placed because its worker died,
-- until the new worker's first frame), so a streamer fumbling with OBS, or
-- waiting for a dead worker to be replaced, pays nothing for it.
ALTER TABLE streams ALTER COLUMN billed_until DROP NOT NULL;
ALTER TABLE streams ALTER COLUMN billed_until DROP DEFAULT;

-- Whether the worker holding the stream has its pipeline built (a draining
-- worker hands its stream over once the new worker's is).
ALTER TABLE stream_runtime ADD COLUMN ready boolean NOT NULL DEFAULT false;
